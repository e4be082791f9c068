"""Warming a spaCy pipeline's vocabulary with the ordinary words of requests.

Every message is tokenised inside ``nlp.memory_zone()`` so the string store cannot grow
without bound (spaCy #5083: account handles and IDs are new strings every time). Inside a
zone, though, every word gets a transient lexeme, so common words are rebuilt for every
message. Tokenising a shipped word list once, outside any zone, keeps those lexemes for
good; only a message's unusual strings stay transient.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from spacy.language import Language

WORDS = Path(__file__).resolve().parent.parent / "config" / "data" / "warm-vocabulary.txt"


@cache
def _words() -> str:
    try:
        return WORDS.read_text(encoding="utf-8").replace("\n", " ")
    except OSError:
        return ""


def warm(nlp: Language) -> None:
    words = _words()
    for start in range(0, len(words), 50_000):
        nlp.make_doc(words[start : start + 50_000])
