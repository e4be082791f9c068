"""Replay: every fixture against its sidecar, the report's shape, mbox and Maildir sources."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest
from click.testing import CliRunner

from config.settings import Settings
from ingest.replay_run import run_replay
from le_intake.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emails"
REPORT_KEYS = {
    "source", "message_id", "outcome", "reasons", "case_id", "emergency",
    "attachments_removed", "identifiers",
}  # fmt: skip
OUTCOMES = {"accepted", "confirmed", "followup", "held", "dropped", "duplicate", "failed"}
KINDS = {"username", "user_id", "status_id", "phone", "email", "sid", "ip", "url"}


def sidecar(source: str) -> dict[str, object]:
    path = Path(source)
    data: dict[str, object] = json.loads(path.with_name(path.stem + ".expected.json").read_text())
    return data


@pytest.fixture(scope="module")
def fixture_report(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    out = tmp_path_factory.mktemp("replay") / "report.jsonl"
    env = {"LE_INTAKE_OUTBOX__FOLDER": str(out.parent / "outbox"), "LE_INTAKE_LOG_LEVEL": "ERROR"}
    result = CliRunner().invoke(main, ["replay", str(FIXTURES), "--report-json", str(out)], env=env)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_there_are_enough_fixtures() -> None:
    assert len(list(FIXTURES.glob("*.eml"))) >= 30
    assert all(p.with_name(p.stem + ".expected.json").exists() for p in FIXTURES.glob("*.eml"))


def test_report_rows_have_exactly_the_contract_keys(
    fixture_report: list[dict[str, object]],
) -> None:
    assert len(fixture_report) == len(list(FIXTURES.glob("*.eml")))
    for row in fixture_report:
        assert set(row) == REPORT_KEYS
        assert row["outcome"] in OUTCOMES
        assert isinstance(row["reasons"], list)
        assert isinstance(row["identifiers"], list)
        for ident in row["identifiers"]:
            assert set(ident) == {"kind", "value", "role", "provenance"}
            assert ident["kind"] in KINDS
            assert ident["role"] in {"subject", "requester", "other"}
            provenance = ident["provenance"]
            assert set(provenance) == {"recognizer", "pattern", "span", "confidence"}
            start, end = provenance["span"]
            assert 0 <= start < end
            assert provenance["recognizer"]
            assert 0 < provenance["confidence"] <= 1


@pytest.mark.parametrize("eml", sorted(p.name for p in FIXTURES.glob("*.eml")))
def test_fixture_matches_its_sidecar(eml: str, fixture_report: list[dict[str, object]]) -> None:
    [row] = [r for r in fixture_report if Path(str(r["source"])).name == eml]
    expected = sidecar(str(row["source"]))
    assert row["outcome"] == expected["outcome"]
    assert row["emergency"] == expected["emergency"]
    assert row["attachments_removed"] == expected["attachments_removed"]
    assert set(expected["reasons"]) <= set(row["reasons"])  # type: ignore[call-overload]
    identifiers = row["identifiers"]
    assert isinstance(identifiers, list)
    got = sorted((i["kind"], i["value"]) for i in identifiers if i["role"] == "subject")
    subject_ids = expected["subject_identifiers"]
    assert isinstance(subject_ids, list)
    assert got == sorted((i["kind"], i["value"]) for i in subject_ids)
    if row["outcome"] in ("accepted", "followup"):
        assert row["case_id"]
    if row["outcome"] == "dropped":
        assert row["case_id"] is None
        assert row["identifiers"] == []


async def test_mbox_and_maildir_sources_are_numbered(tmp_path: Path, settings: Settings) -> None:
    emls = sorted(FIXTURES.glob("*.eml"))[:3]
    box = mailbox.mbox(tmp_path / "in.mbox")
    maildir = mailbox.Maildir(tmp_path / "md")
    for path in emls:
        box.add(mailbox.mboxMessage(path.read_bytes()))
        maildir.add(mailbox.MaildirMessage(path.read_bytes()))
    box.flush()
    box.close()
    rows = await run_replay(settings, [tmp_path / "in.mbox"], None)
    assert [r["source"] for r in rows] == [f"{tmp_path / 'in.mbox'}:{n}" for n in (1, 2, 3)]
    assert [r["outcome"] for r in rows] == ["accepted"] * 3
    rows = await run_replay(settings, [tmp_path / "md"], None)
    assert [r["source"] for r in rows] == [f"{tmp_path / 'md'}:{n}" for n in (1, 2, 3)]
    # Same store: the Maildir copies are the mbox's messages again.
    assert {r["outcome"] for r in rows} == {"duplicate"}


def test_unparseable_input_is_a_known_outcome_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "garbage.eml").write_bytes(b"\x00\xff" * 500 + b"\r\n\r\n\x00")
    (tmp_path / "empty.eml").write_bytes(b"")
    out = tmp_path / "r.jsonl"
    result = CliRunner().invoke(
        main, ["replay", str(tmp_path), "--report-json", str(out)],
        env={"LE_INTAKE_LOG_LEVEL": "ERROR"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["outcome"] for r in rows} == {"dropped"}
    assert all("no_from" in r["reasons"] for r in rows)


async def test_nested_folders_are_walked_and_notes_skipped(
    tmp_path: Path, settings: Settings
) -> None:
    emls = sorted(FIXTURES.glob("*.eml"))[:2]
    mail = tmp_path / "mail"
    (mail / "a" / "b").mkdir(parents=True)
    (mail / "a" / "one.eml").write_bytes(emls[0].read_bytes())
    (mail / "a" / "b" / "two").write_bytes(emls[1].read_bytes())
    (mail / "a" / "README.md").write_text("notes")
    (mail / "a" / "b" / "x.expected.json").write_text("{}")
    (mail / "LICENSE").write_text("licence")
    rows = await run_replay(settings, [mail], None)
    assert [Path(r["source"]).name for r in rows] == ["two", "one.eml"]
