"""The one spaCy pipeline every recognizer shares, with a tokenizer that remembers words.

Identifiers, facts and the emergency checks each tokenise the body. With a pipeline each,
a 4 KB request paid for three tokenisations of about 5 ms, and spaCy's own cache did not
help: it stores nothing inside ``memory_zone()`` (which every message is tokenised in, see
``classifiers.vocabulary``), and nothing in a document after the first special case
("U.S.", "Inc.", "a.m."), spaCy #1250. So almost every word of every message went through
the prefix, suffix and infix expressions again.

``CachingTokenizer`` asks spaCy's tokenizer once per whitespace-delimited chunk and keeps
the answer (token texts only, not lexemes) in a bounded dictionary of its own; the Doc is
then built from those words, inside the caller's memory zone as before. The tokens are
exactly spaCy's: tokenisation never crosses whitespace, and a chunk's special cases are
applied when the chunk is first tokenised (``tests/test_nlp.py`` compares the two on the
MIME corpus). Chunks with digits or an ``@`` are not kept: they are the phone numbers,
IDs and handles, rarely seen twice and not worth holding in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import spacy
from spacy import attrs
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from classifiers.vocabulary import warm
from ingest.context import MessageContext

# Recognizers read at most this much of a body: a request is a few pages, and a pathological
# body must not hold a worker for minutes.
MAX_EXTRACT_CHARS = 200_000
# A line break alone (not a paragraph break): mail is hard-wrapped.
_WRAP = re.compile(r"(?<!\n)\n(?!\n)")
# A run of non-space characters, or a run of whitespace.
_RUNS = re.compile(r"\S+|\s+")
# Chunks the cache does not keep: numbers, handles and addresses are one-offs.
_NOT_KEPT = re.compile(r"[0-9@]")
MAX_CACHED_CHUNKS = 100_000


class CachingTokenizer:
    """Wraps a spaCy ``Tokenizer``; tokens as it makes them, from a cache of chunks."""

    def __init__(self, inner: Callable[[str], Doc], vocab: Vocab) -> None:
        self.inner = inner
        self.vocab = vocab
        self.cache: dict[str, tuple[str, ...]] = {}

    def chunk(self, text: str) -> tuple[str, ...]:
        words = self.cache.get(text)
        if words is None:
            words = tuple(t.text for t in self.inner(text))
            if not _NOT_KEPT.search(text):
                if len(self.cache) >= MAX_CACHED_CHUNKS:
                    self.cache.clear()
                self.cache[text] = words
        return words

    def __call__(self, text: str) -> Doc:
        words: list[str] = []
        spaces: list[bool] = []
        for m in _RUNS.finditer(text):
            run = m.group()
            if not run[0].isspace():
                pieces = self.chunk(run)
                words.extend(pieces)
                spaces.extend([False] * len(pieces))
                continue
            # spaCy's whitespace rule: one ' ' after a token is that token's trailing
            # space; any other whitespace (the rest of the run, or a run that starts the
            # text or starts with a line break) is a token of its own.
            if words and run[0] == " ":
                spaces[-1] = True
                run = run[1:]
            if run:
                pieces = self.chunk(run)
                words.extend(pieces)
                spaces.extend([False] * len(pieces))
        return Doc(self.vocab, words=words, spaces=spaces)

    @contextmanager
    def memory_zone(self, mem: Any = None) -> Iterator[Any]:
        """spaCy's zone for the wrapped tokenizer too (``Language.memory_zone`` calls it)."""
        zone = getattr(self.inner, "memory_zone", None)
        if zone is None:
            yield mem
            return
        with zone(mem) as entered:
            yield entered


def unwrap(text: str) -> str:
    """The text the recognizers tokenise: a lone line break inside "serious physical\n
    injury" or "screen\nname" would be a token and break the pattern. Spaces keep every
    offset, and blank lines stay paragraph breaks."""
    return _WRAP.sub(" ", text)


@contextmanager
def body_doc(text: str, shared: Doc | None = None) -> Iterator[Doc]:
    """The Doc of a body (``text`` already cut to MAX_EXTRACT_CHARS): ``shared`` when the
    pipeline made one for the message (``message_doc``), else one made here, in a memory
    zone that ends with the block."""
    if shared is not None:
        yield shared
        return
    nlp = shared_nlp()
    with nlp.memory_zone():
        yield nlp.make_doc(unwrap(text))


def message_doc(ctx: MessageContext) -> Doc | None:
    """The body's Doc, made once per message and shared by every stage that reads tokens.

    It lives in a memory zone that ends with the message's analysis (``ctx.resources``,
    closed by ``ingest.pipeline.analyse``). A stage run on its own, with no resources,
    gets None and its recognizer tokenises the body itself."""
    if ctx.resources is None:
        return None
    doc = ctx.scratch.get("body_doc")
    if not isinstance(doc, Doc):
        nlp = shared_nlp()
        ctx.resources.enter_context(nlp.memory_zone())
        doc = nlp.make_doc(unwrap(ctx.body_text[:MAX_EXTRACT_CHARS]))
        ctx.scratch["body_doc"] = doc
    return doc


@cache
def shared_nlp() -> Language:
    """A blank English pipeline with the caching tokenizer and a warm vocabulary, built
    once per process. Every Matcher and PhraseMatcher must be built on its vocab."""
    nlp = spacy.blank("en")
    tokenizer: Any = nlp.tokenizer
    for form in ("id", "Id", "ID", "ids", "IDs", "Ids"):
        # English exceptions split "id" as "i'd"; in a request it is always "identifier".
        tokenizer.add_special_case(form, [{ORTH: form}])
    nlp.tokenizer = CachingTokenizer(tokenizer, nlp.vocab)
    warm(nlp)
    return nlp


# -- matching only where a pattern can match ----------------------------------------------

Match = tuple[int, int, int]
Element = dict[str, Any]
# Tokens an unbounded element ("*" or "+") may take in the window. Whitespace elements
# take one: a run of whitespace is always a single token.
_UNBOUNDED_WIDTH = 16
_STRING_ATTRS = {"LOWER": attrs.LOWER, "ORTH": attrs.ORTH, "TEXT": attrs.ORTH}


@dataclass
class _Anchor:
    """A way to recognise the tokens one pattern element matches."""

    attr: int | None = None  # with ``hashes``: the token's value for attr is one of them
    hashes: frozenset[int] = frozenset()
    flag: int | None = None  # a boolean attribute that must be true (LIKE_URL, IS_ALPHA…)
    regex: tuple[str, re.Pattern[str]] | None = None  # ("LOWER" or "TEXT", expression)

    @property
    def breadth(self) -> int:
        """How many words it admits: the fewer, the fewer windows (a flag or an
        expression admits any number)."""
        return len(self.hashes) if self.attr is not None else 1_000_000


class GatedMatcher:
    """A spaCy ``Matcher`` that runs only on the windows of a Doc where a match can be.

    spaCy's Matcher tries every pattern at every token, so its cost is tokens x patterns:
    4 ms for the 35 legal-process patterns on a 4 KB request, most of it on words no
    pattern contains. ``add`` picks one required element of each pattern as its anchor
    (the one admitting the fewest words: "warrant" rather than "the/a/this…" in "the
    warrant"). A call finds the tokens matching an anchor (hash comparisons on
    ``Doc.to_array``), takes the window of the longest pattern's width on both sides,
    merges overlapping windows and runs the Matcher on those spans only. Every match
    contains its anchor, so it lies whole in one merged window, and overlapping matches
    share one (greedy filtering sees them together): the result is the Matcher's own
    (``tests/test_nlp.py``). A pattern with no element to anchor on makes every call run
    on the whole Doc.
    """

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.matcher = Matcher(vocab)
        self.hashes: dict[int, set[int]] = {}  # attribute id -> anchor hashes
        self.flags: set[int] = set()  # boolean attribute ids that anchor a pattern
        self.regexes: list[tuple[str, re.Pattern[str]]] = []
        self.whole_doc = False
        self.width = 1
        self._wanted: dict[int, np.ndarray[Any, Any]] = {}
        self._regex_answers: dict[tuple[re.Pattern[str], int], bool] = {}

    def add(self, label: str, patterns: Sequence[list[Element]], greedy: str | None = None) -> None:
        for pattern in patterns:
            self.width = max(self.width, sum(_width(e) for e in pattern))
            anchors = [a for a in (_anchor(self.vocab, e) for e in pattern if _required(e)) if a]
            if not anchors:
                self.whole_doc = True
                continue
            anchor = min(reversed(anchors), key=lambda a: a.breadth)
            if anchor.attr is not None:
                self.hashes.setdefault(anchor.attr, set()).update(anchor.hashes)
            elif anchor.flag is not None:
                self.flags.add(anchor.flag)
            elif anchor.regex is not None:
                self.regexes.append(anchor.regex)
        self._wanted = {
            attr: np.fromiter(hashes, dtype=np.uint64) for attr, hashes in self.hashes.items()
        }
        self.matcher.add(label, list(patterns), greedy=greedy)

    def anchors(self, doc: Doc) -> list[int]:
        """Indices of the tokens that match some pattern's anchor."""
        columns: list[int | str] = [*self.hashes, *self.flags]
        found = np.zeros(len(doc), dtype=bool)
        if columns:
            array = doc.to_array(columns).reshape(len(doc), len(columns))
            for i, attr in enumerate(columns):
                if attr in self._wanted:
                    found |= np.isin(array[:, i], self._wanted[attr])
                else:
                    found |= array[:, i] != 0
        for which, rx in self.regexes:
            # the expression is tried once per distinct string, and its answer kept
            column = doc.to_array(attrs.LOWER if which == "LOWER" else attrs.ORTH)
            distinct, inverse = np.unique(column, return_inverse=True)
            answers = np.fromiter(
                (self._regex_answer(rx, int(h)) for h in distinct), dtype=bool, count=len(distinct)
            )
            found |= answers[inverse.reshape(-1)]
        return [int(i) for i in np.flatnonzero(found)]

    def _regex_answer(self, rx: re.Pattern[str], key: int) -> bool:
        answer = self._regex_answers.get((rx, key))
        if answer is None:
            answer = bool(rx.search(self.vocab.strings[key]))
            if len(self._regex_answers) >= MAX_CACHED_CHUNKS:
                self._regex_answers.clear()
            self._regex_answers[(rx, key)] = answer
        return answer

    def windows(self, doc: Doc) -> list[tuple[int, int]]:
        if self.whole_doc:
            return [(0, len(doc))]
        merged: list[tuple[int, int]] = []
        for index in self.anchors(doc):
            start, end = max(0, index - self.width + 1), min(len(doc), index + self.width)
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        return merged

    def __call__(self, doc: Doc) -> list[Match]:
        matches: list[Match] = []
        for start, end in self.windows(doc):
            if start == 0 and end == len(doc):
                matches.extend(self.matcher(doc))
            else:
                found = self.matcher(doc[start:end])
                matches.extend((m, s + start, e + start) for m, s, e in found)
        return matches

    def spans(self, doc: Doc) -> list[Span]:
        return [Span(doc, s, e, label=m) for m, s, e in self(doc)]


def _required(element: Element) -> bool:
    return element.get("OP") not in ("?", "*", "!")


def _width(element: Element) -> int:
    if element.get("OP") not in ("*", "+"):
        return 1
    return 1 if element.get("IS_SPACE") is True else _UNBOUNDED_WIDTH


def _anchor(vocab: Vocab, element: Element) -> _Anchor | None:
    """The narrowest way to recognise what ``element`` matches, or None."""
    best: _Anchor | None = None
    for key, value in element.items():
        anchor = None
        if key in _STRING_ATTRS:
            attr = _STRING_ATTRS[key]
            if isinstance(value, str):
                anchor = _Anchor(attr=attr, hashes=frozenset({vocab.strings.add(value)}))
            elif isinstance(value, dict) and set(value) == {"IN"}:
                hashes = frozenset(vocab.strings.add(v) for v in value["IN"])
                anchor = _Anchor(attr=attr, hashes=hashes)
            elif isinstance(value, dict) and set(value) == {"REGEX"}:
                which = "LOWER" if key == "LOWER" else "TEXT"
                anchor = _Anchor(regex=(which, re.compile(value["REGEX"])))
        elif value is True and key.startswith(("LIKE_", "IS_")) and hasattr(attrs, key):
            anchor = _Anchor(flag=getattr(attrs, key))
        if anchor and (best is None or anchor.breadth < best.breadth):
            best = anchor
    return best
