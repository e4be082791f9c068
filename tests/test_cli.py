"""The operator's commands, run through click with a config on temporary paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from le_intake.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emails"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "LE_INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cases.db",
        "LE_INTAKE_DATA_DIR": str(tmp_path),
        "LE_INTAKE_SPOOL_DIR": str(tmp_path / "spool"),
        "LE_INTAKE_OUTBOX__FOLDER": str(tmp_path / "outbox"),
        "LE_INTAKE_LOG_LEVEL": "ERROR",
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_help_lists_the_commands(env: dict[str, str]) -> None:
    code, out = run(env, "--help")
    assert code == 0
    for command in ("serve", "replay", "db", "cases", "domains"):
        assert command in out


@pytest.mark.parametrize(
    ("address", "allowed", "code"),
    [
        ("agent@cyber.fbi.gov", True, "le_domain"),
        ("officer@met.police.uk", True, "le_domain"),
        ("x@gmail.com", False, "non_le_domain"),
        ("x@fbl.gov", False, "lookalike_domain"),
        ("x@fbi.gov.example.com", False, "lookalike_domain"),
    ],
)
def test_domains_check_explains(
    env: dict[str, str], address: str, allowed: bool, code: str
) -> None:
    exit_code, out = run(env, "domains", "check", address, "--json")
    data = json.loads(out)
    assert exit_code == (0 if allowed else 1)
    assert data["law_enforcement"] is allowed
    assert code in [v["code"] for v in data["verdicts"]]


def test_domains_check_names_the_agency(env: dict[str, str]) -> None:
    code, out = run(env, "domains", "check", "agent@cyber.fbi.gov")
    assert code == 0
    assert "Federal Bureau of Investigation" in out
    assert "Federal - Executive" in out


def test_replay_into_store_then_cases_list_show_and_lookalikes(env: dict[str, str]) -> None:
    code, out = run(env, "db", "upgrade")
    assert code == 0
    code, out = run(env, "replay", str(FIXTURES), "--into-store")
    assert code == 0, out
    code, out = run(env, "cases", "list", "--json", "--limit", "100")
    cases = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert len(cases) >= 25
    emergency = next(c for c in cases if c["emergency"])
    code, out = run(env, "cases", "show", emergency["id"], "--json")
    case = json.loads(out)
    assert case["sender_auth"] == "pass"
    assert case["identifiers"]
    assert all(
        {"kind", "value", "role", "recognizer", "pattern"} <= set(i) for i in case["identifiers"]
    )
    assert next(e["code"] for e in case["events"]) == "created"
    code, out = run(env, "cases", "show", "LE-NOPE", "--json")
    assert code != 0
    code, out = run(env, "domains", "lookalikes", "--json")
    domains = {json.loads(line)["from_domain"] for line in out.splitlines()}
    assert {"fbi.gov.example.com", "fbi-gov.com", "fbigov.net"} <= domains


def test_senders_block_holds_their_mail(env: dict[str, str], tmp_path: Path) -> None:
    code, out = run(env, "senders", "block", "Agent.Smith@FBI.gov", "--reason", "phished",
                    "--by", "dana")  # fmt: skip
    assert code == 0
    code, out = run(env, "senders", "list")
    assert "agent.smith@fbi.gov" in out
    assert "phished" in out
    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "one.eml").write_bytes(
        (FIXTURES / "01-fbi-subpoena-plain.eml")
        .read_bytes()
        .replace(b"From: ", b"X-Old-From: ", 1)
        .replace(b"X-Old-From: ", b"From: agent.smith@fbi.gov\r\nX-Old: ", 1)
    )
    report = tmp_path / "r.jsonl"
    code, out = run(env, "replay", str(mail), "--into-store", "--report-json", str(report))
    row = json.loads(report.read_text())
    assert row["outcome"] == "held", row
    assert "sender_blocklisted" in row["reasons"]


def test_cases_show_as_a_table(env: dict[str, str]) -> None:
    code, _ = run(env, "replay", str(FIXTURES), "--into-store")
    assert code == 0
    code, out = run(env, "cases", "list", "--json")
    case_id = json.loads(out.splitlines()[-1])["id"]
    code, out = run(env, "cases", "show", case_id)
    assert code == 0
    assert case_id in out
    assert "authenticated" in out
    assert "fact" in out


def test_domains_allow_and_deny_are_recorded_audited_and_used(
    env: dict[str, str], tmp_path: Path
) -> None:
    """An agency on an ordinary domain, verified by an operator, is allowed without
    editing TOML; a deny wins; both are audit events; replay and `domains check` use them."""
    assert run(env, "domains", "check", "det@sheriff-county.org")[0] == 1
    why = "called the duty desk on the published number"
    code, out = run(env, "domains", "allow", "Sheriff-County.org", "--reason", why, "--by", "dana")
    assert code == 0, out
    code, out = run(env, "domains", "check", "det@cid.sheriff-county.org", "--json")
    assert code == 0, out
    assert json.loads(out)["law_enforcement"] is True

    request = (
        "Authentication-Results: le-intake.local; dkim=pass header.d=sheriff-county.org;"
        " dmarc=pass header.from=sheriff-county.org\r\n"
        "From: Detective <det@sheriff-county.org>\r\nTo: lawenforcement@example-platform.com\r\n"
        "Subject: Subpoena for subscriber information\r\nMessage-ID: <sc-1@sheriff-county.org>\r\n"
        "\r\nPlease produce subscriber information for @target_account.\r\n"
    )
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "one.eml").write_text(request)
    report = tmp_path / "r.jsonl"
    code, out = run(env, "replay", str(tmp_path / "mail"), "--report-json", str(report))
    assert code == 0, out
    assert json.loads(report.read_text())["outcome"] == "accepted"

    code, out = run(env, "domains", "deny", "sheriff-county.org",
                    "--reason", "mailbox compromised", "--by", "lee")  # fmt: skip
    assert code == 0, out
    assert run(env, "domains", "check", "det@sheriff-county.org")[0] == 1
    code, out = run(env, "replay", str(tmp_path / "mail"), "--report-json", str(report))
    row = json.loads(report.read_text())
    assert (row["outcome"], "denied_domain" in row["reasons"]) == ("dropped", True)

    import sqlite3

    with sqlite3.connect(tmp_path / "cases.db") as db:
        events = db.execute(
            "SELECT code, actor, detail FROM events WHERE kind = 'policy' ORDER BY id"
        ).fetchall()
    assert [(c, a) for c, a, _ in events] == [("domain_allowed", "dana"), ("domain_denied", "lee")]
    assert "sheriff-county.org" in events[0][2]


@pytest.mark.parametrize(
    "args",
    [
        ["domains", "allow", "evil.example%fbi.gov", "--reason", "x", "--by", "y"],
        ["domains", "allow", "agent@fbi.gov", "--reason", "x", "--by", "y"],
        ["domains", "allow", "example.org", "--reason", " ", "--by", "y"],
        ["domains", "deny", "example.org", "--by", "y"],  # --reason is required
    ],
)
def test_domain_decisions_refuse_bad_input(env: dict[str, str], args: list[str]) -> None:
    code, _ = run(env, *args)
    assert code != 0
