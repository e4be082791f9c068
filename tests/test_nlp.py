"""The shared spaCy pipeline: the caching tokenizer and the gated matcher give exactly
spaCy's own answers, the body is tokenised once per message, and nothing of a message
stays in the vocabulary afterwards."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import spacy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.tokens import Doc

from classifiers import completeness, facts, identifiers
from classifiers.nlp import (
    ID_FORMS,
    MAX_CACHED_CHUNKS,
    CachingTokenizer,
    GatedMatcher,
    shared_nlp,
    unwrap,
)
from config.settings import Settings
from ingest.pipeline import analyse, build_stages
from tests.conftest import ENVELOPE, make_settings, request_message

ROOT = Path(__file__).resolve().parent.parent


def _reference() -> Language:
    """spaCy's own tokenizer, with the same special cases as the shared pipeline."""
    nlp = spacy.blank("en")
    tokenizer: Any = nlp.tokenizer
    for form in ID_FORMS:
        tokenizer.add_special_case(form, [{ORTH: form}])
    return nlp


REFERENCE = _reference()


def _tokens(doc: Doc) -> list[tuple[str, str]]:
    return [(t.text, t.whitespace_) for t in doc]


def _texts() -> Iterator[str]:
    """Request bodies from the labelled sets, and the raw fixture and corpus messages
    (headers, base64, HTML: every shape of text the tokenizer meets)."""
    for name in ("requests.jsonl", "heldout.jsonl"):
        with (ROOT / "fixtures" / "extraction" / name).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield str(json.loads(line)["text"])
    paths = sorted((ROOT / "fixtures" / "emails").glob("*.eml"))
    paths += sorted(p for p in (ROOT / "tests" / "corpus").rglob("*") if p.is_file())
    for path in paths:
        yield path.read_bytes().decode("utf-8", "replace")[:8_000]


TEXTS = list(_texts())


def test_the_corpus_is_there() -> None:
    assert len(TEXTS) > 600


# -- the caching tokenizer -----------------------------------------------------------------


def test_tokens_are_spacys_on_every_corpus_text() -> None:
    nlp = shared_nlp()
    differing = [t[:80] for t in TEXTS if _tokens(nlp.make_doc(t)) != _tokens(REFERENCE(t))]
    assert differing == []


_PIECES = st.sampled_from(
    [
        " ",
        "  ",
        "\n",
        "\n\n",
        "\t",
        " \n ",
        "\r\n",
        "\u00a0",
        "\u2028",
        "U.S.",
        "Inc.",
        "a.m.",
        "can't",
        "(id)",
        "ID:",
        "IDs",
        "e-mail",
        "https://x.com/a_b",
        "@x_1",
        "12:30",
        "1st",
        "(312) 555-0100",
        "don’t",
        "“quoted”",
        "…",
        "--",
        "#",
        "1466120987345920001",
        "ACab12",
        "fbi.gov",
        "a@b.example",
        "Re:",
        "[1]",
        "x",
        "Q",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_PIECES, st.text(max_size=6)), max_size=40))
def test_tokens_are_spacys_on_arbitrary_text(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert _tokens(shared_nlp().make_doc(text)) == _tokens(REFERENCE(text))


def test_chunks_with_digits_or_at_signs_are_not_kept() -> None:
    tokenizer = CachingTokenizer(_reference().tokenizer, REFERENCE.vocab)
    tokenizer("Please preserve @target_1 and 555-0100 for the subscriber, thanks.")
    assert "subscriber," in tokenizer.cache
    assert "thanks." in tokenizer.cache
    assert not any("@" in chunk or any(c.isdigit() for c in chunk) for chunk in tokenizer.cache)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("classifiers.nlp.MAX_CACHED_CHUNKS", 50)
    tokenizer = CachingTokenizer(_reference().tokenizer, REFERENCE.vocab)
    tokenizer(" ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(200)))
    assert 0 < len(tokenizer.cache) <= 50
    assert MAX_CACHED_CHUNKS >= 10_000


# -- the gated matcher ---------------------------------------------------------------------


def _matchers() -> list[tuple[str, GatedMatcher]]:
    _, ids = identifiers._build_nlp()
    _, process, cues = facts._build_nlp()
    _, danger, _ = completeness._build_nlp()
    return [("identifiers", ids), ("process", process), ("cues", cues), ("danger", danger)]


MATCHERS = _matchers()


@pytest.fixture(scope="module")
def docs() -> list[Doc]:
    """Every corpus text as written and unwrapped (outside a memory zone: the test's
    vocabulary may grow)."""
    nlp = shared_nlp()
    return [nlp.make_doc(v) for text in TEXTS for v in (text, unwrap(text))]


@pytest.mark.parametrize(("name", "matcher"), MATCHERS, ids=[n for n, _ in MATCHERS])
def test_gated_matches_are_the_matchers_own(
    name: str, matcher: GatedMatcher, docs: list[Doc]
) -> None:
    assert not matcher.whole_doc, f"{name}: a pattern has nothing to anchor on"
    plain = matcher.plain()
    total = 0
    for doc in docs:
        gated = sorted(matcher(doc))
        assert gated == sorted(plain(doc)), doc.text[:200]
        total += len(gated)
    assert total > 50


def test_a_pattern_that_anchors_nowhere_runs_on_the_whole_doc() -> None:
    matcher = GatedMatcher(shared_nlp().vocab)
    matcher.add("ANY_WORD_THEN_WARRANT", [[{"IS_ALPHA": False, "OP": "?"}, {"OP": "?"}]])
    doc = shared_nlp().make_doc("a search warrant")
    assert matcher.whole_doc
    assert matcher.windows(doc) == [[(0, len(doc))]]
    assert sorted(matcher(doc)) == sorted(matcher.plain()(doc))


def test_the_anchor_is_the_narrowest_required_element() -> None:
    nlp = shared_nlp()
    matcher = GatedMatcher(nlp.vocab)
    matcher.add(
        "DETERMINED_WARRANT",
        [
            [
                {"LOWER": {"IN": ["the", "a", "this"]}},
                {"IS_SPACE": True, "OP": "*"},
                {"LOWER": "warrant"},
            ]
        ],
    )
    doc = nlp.make_doc("The officer read the file. Then the\nwarrant was served.")
    [windows] = matcher.windows(doc)
    assert len(windows) == 1  # around "warrant" only, not around every "the"
    assert [doc[s:e].text for _, s, e in matcher(doc)] == ["the\nwarrant"]


# -- one Doc per message, released with it ----------------------------------------------


@pytest.fixture(scope="module")
def stage_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("nlp"))


def test_the_body_is_tokenised_once_per_message(
    stage_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages = build_stages(stage_settings)
    body = (
        "Emergency disclosure request under 18 U.S.C. 2702(b)(8): a 14-year-old girl is "
        "missing and in imminent danger of death or serious physical injury. Please "
        "disclose subscriber information for @target_account (User ID: 12345) for the "
        "period from 1 October 2026 to 2 November 2026.\n\nSpecial Agent Jane Smith\n"
    )
    raw = request_message(subject="Emergency Disclosure Request", body=body)
    calls: list[str] = []
    real = CachingTokenizer.__call__

    def counting(self: CachingTokenizer, text: str) -> Doc:
        calls.append(text)
        return real(self, text)

    monkeypatch.setattr(CachingTokenizer, "__call__", counting)
    ctx = analyse(raw, ENVELOPE, stages)
    assert ctx.emergency
    assert ctx.completeness
    assert {i.value for i in ctx.identifiers if i.role == "subject"} >= {"target_account"}
    assert len(calls) == 1
    assert ctx.scratch == {}
    assert ctx.resources is None
    pickle.dumps(ctx)  # what goes back from a worker holds no Doc


def test_nothing_of_a_message_stays_in_the_vocabulary(stage_settings: Settings) -> None:
    stages = build_stages(stage_settings)
    nlp = shared_nlp()

    def one(n: int) -> None:
        body = f"Please produce records for @suspect_{n:05d} (User ID: 98{n:07d}), xq{n:05d}zz.\n"
        analyse(request_message(body=body, message_id=f"<m{n}@fbi.gov>"), ENVELOPE, stages)

    one(0)
    before = len(nlp.vocab.strings)
    for n in range(1, 40):
        one(n)
    assert len(nlp.vocab.strings) == before
    assert "xq00039zz" not in nlp.vocab.strings
