"""Every real-world and malformed message of the external corpus ends in a known outcome.

Replayed twice: with the demo policy (most are dropped as non-LE, so the stages that run
after a drop are exercised) and with a policy that lets every domain through, so parsing,
stripping and extraction all run on every message.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ingest.replay import iter_sources
from ingest.replay_run import run_replay
from tests.conftest import make_settings

CORPUS = Path(__file__).resolve().parent / "corpus" / "mime"
ALL_DOMAINS = [
    "com",
    "org",
    "net",
    "edu",
    "gov",
    "mil",
    "uk",
    "de",
    "fr",
    "jp",
    "pl",
    "ru",
    "ca",
    "au",
    "cz",
    "nl",
    "it",
    "br",
    "ch",
    "se",
    "at",
    "be",
    "dk",
    "es",
    "local",
    "example",
    "test",
    "invalid",
    "localdomain",
    "io",
    "us",
    "cn",
    "tw",
    "kr",
    "il",
    "hu",
    "fi",
    "no",
    "info",
    "biz",
    "in",
    "mx",
    "ar",
    "nz",
    "za",
    "gr",
    "pt",
    "ro",
]


def test_corpus_is_present() -> None:
    assert len(list(iter_sources([CORPUS]))) >= 500


@pytest.mark.parametrize("policy", ["demo", "allow_all"])
async def test_no_corpus_message_fails(tmp_path: Path, policy: str) -> None:
    overrides: dict[str, object] = {}
    if policy == "allow_all":
        overrides["le_policy"] = {"allowed_suffixes": ALL_DOMAINS}
        # nothing in the corpus authenticates against our (static, empty) DNS
        overrides["auth"] = {
            "on_fail": "continue",
            "on_none": "continue",
            "on_temperror": "continue",
        }
    settings = make_settings(tmp_path, **overrides)
    rows = await run_replay(settings, [CORPUS], None)
    outcomes = Counter(r["outcome"] for r in rows)
    failed = [(r["source"], r["reasons"]) for r in rows if r["outcome"] == "failed"]
    assert failed == []
    assert len(rows) >= 500
    if policy == "allow_all":
        assert outcomes["accepted"] > 250  # the stages after the gate really ran
