"""One reading of the header block: what the gate decides on is what DKIM verified.

A bare CR lets Python's parser (which ends a line at a lone CR) see a From, Subject and
body that dkimpy (which splits on CRLF/LF only) folds into an unsigned header. These tests
take a real DKIM-signed fbi.gov newsletter, inject a header block that reads two ways, and
replay it through the real road (parse, gate with our own DKIM check, store, replies).
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import pytest

from ingest.header_block import header_block_problem
from ingest.replay_run import run_replay
from tests.conftest import make_settings
from tests.test_spoof_catalogue import PUBLIC_TXT, signed

NEWSLETTER_FROM = "FBI News <news@fbi.gov>"


def newsletter() -> bytes:
    msg = EmailMessage(policy=SMTP_POLICY)
    msg["From"] = NEWSLETTER_FROM
    msg["To"] = "lawenforcement@example-platform.com"
    msg["Subject"] = "This week at the FBI"
    msg["Message-ID"] = "<news-1@fbi.gov>"
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    msg.set_content("Read our latest stories at fbi.gov/news.\r\n")
    return signed(msg.as_bytes(), "fbi.gov")


# Prepended above the signed headers. To dkimpy (lines end at CRLF/LF) this is one
# unsigned X-Note header and the signed newsletter follows; to the stdlib (a lone CR ends a
# line) it is X-Note, From, Subject, a blank line, and a body that swallows the rest.
BARE_CR = (
    b"X-Note: x\rFrom: Agent Smith <agent.smith@fbi.gov>\r"
    b"Subject: Emergency Disclosure Request\r\r"
    b"@target_account posted a threat to bomb a school tomorrow. Reply to duty@fbi.gov.\r\n"
)
# LF beside CRLF: readers that split on CRLF only see one header here
BARE_LF = b"X-Note: x\nFrom: Agent Smith <agent.smith@fbi.gov>\r\n"
NOT_A_FIELD = b"X-Note: x\r\nthis line is no header\r\nFrom: Agent Smith <agent.smith@fbi.gov>\r\n"


async def replay_one(tmp_path: Path, raw: bytes) -> tuple[dict[str, Any], Path]:
    settings = make_settings(
        tmp_path,
        auth={"static_dns": {"sel._domainkey.fbi.gov": {"TXT": [PUBLIC_TXT]}}, "dns": "static"},
    )
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "message.eml").write_bytes(raw)
    [row] = await run_replay(settings, [tmp_path / "in"], None)
    return row, Path(settings.outbox.folder)


async def test_the_signed_newsletter_itself_authenticates(tmp_path: Path) -> None:
    """The control: without the injection our own DKIM check passes, so the tests below
    fail only because the header block reads two ways."""
    row, _ = await replay_one(tmp_path, newsletter())
    assert row["outcome"] == "accepted", row["reasons"]
    assert "sender_authenticated" in row["reasons"]


@pytest.mark.parametrize(
    ("injected", "outcome"),
    [(BARE_CR, "held"), (BARE_LF, "dropped"), (NOT_A_FIELD, "dropped")],
    ids=["cr", "lf", "nofield"],
)
async def test_a_header_block_read_two_ways_is_never_authenticated(
    tmp_path: Path, injected: bytes, outcome: str
) -> None:
    row, outbox = await replay_one(tmp_path, injected + newsletter())
    # held for staff (the stdlib reading has one From); dropped where it has none
    assert row["outcome"] == outcome, row["reasons"]
    assert "ambiguous_header_block" in row["reasons"]
    assert "sender_authenticated" not in row["reasons"]
    # held: no automated response went to a mailbox the attacker chose
    assert not list(outbox.glob("*.eml"))


@pytest.mark.parametrize(
    ("raw", "strict", "problem"),
    [
        (b"From: a@fbi.gov\r\nTo: b\r\n\r\nbody\r\n", True, None),
        (b"From: a@fbi.gov\r\nTo: b\r\n\r\nbare\nLF in the body is fine\r\n", True, None),
        (b"From: a@fbi.gov\r\n\tfolded\r\n\r\n", True, None),
        (b"From: a@fbi.gov\r\nTo: b", True, None),  # headers only
        (b"From: a@fbi.gov\nTo: b\n\nbody\n", False, None),  # a file with LF endings
        (b"From: a@fbi.gov\nTo: b\n\nbody\n", True, "bare LF"),
        (b"From: a@fbi.gov\r\nTo: b\n\r\n", False, "bare LF"),  # mixed endings
        (b"X: 1\rFrom: a@fbi.gov\r\n\r\n", False, "bare CR"),
        (b"To: b\r\r\nFrom: a@fbi.gov\r\n\r\n", False, "bare CR"),  # the README's \r\r\n
        (b" folded onto nothing\r\nFrom: a@fbi.gov\r\n\r\n", False, "continuation"),
        (b"From: a@fbi.gov\r\nno colon here\r\n\r\n", False, "not a header field"),
        (b"Subject : spaced name\r\n\r\n", False, "not a header field"),
        (b"From: a@fbi.gov\r\n" + b"X: y\r\n" * 200_000, False, "too long"),
    ],
)
def test_header_block_problem(raw: bytes, strict: bool, problem: str | None) -> None:
    found = header_block_problem(raw, strict=strict)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
