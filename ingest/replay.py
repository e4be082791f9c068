"""Replaying fixture mailboxes (.eml folders, mbox files, Maildirs) through the road.

In-process (default) each message goes through the same ``Processor`` the runner uses.
With ``--smtp`` each is sent with a real SMTP client to a running listener, and its
outcome is read back from that listener's case store (same config) once the runner
recorded it.
"""

from __future__ import annotations

import asyncio
import mailbox
import re
import smtplib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any

from cases.models import MessageRecord
from cases.repository import CaseStore
from config.settings import Settings
from core.addresses import RequestAddresses
from core.clock import Clock
from core.envelope import Envelope
from core.headers import message_ids
from core.verdicts import Outcome
from ingest.processor import Processor, ProcessResult

# Files in a mail folder that are not messages: sidecars, notes, licences.
SKIP_SUFFIXES = (".json", ".md", ".py", ".tsv", ".csv", ".pyc")
SKIP_NAMES = frozenset({"COPYING", "LICENSE", "NOTICE", "README"})


@dataclass(frozen=True)
class ReplayItem:
    source: str
    raw: bytes


def _is_maildir(path: Path) -> bool:
    return all((path / sub).is_dir() for sub in ("cur", "new", "tmp"))


def _looks_like_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def iter_sources(paths: list[Path]) -> Iterator[ReplayItem]:
    for path in paths:
        if path.is_dir() and _is_maildir(path):
            box = mailbox.Maildir(path, factory=None, create=False)
            for number, key in enumerate(sorted(box.keys()), start=1):
                with box.get_file(key) as fh:
                    yield ReplayItem(f"{path}:{number}", fh.read())
        elif path.is_dir():
            for child in sorted(path.iterdir()):
                if child.name.startswith(".") or child.name in SKIP_NAMES:
                    continue
                if child.is_dir() or not child.name.endswith(SKIP_SUFFIXES):
                    yield from iter_sources([child])
        elif _looks_like_mbox(path):
            mbox = mailbox.mbox(path, factory=None, create=False)
            try:
                for number, key in enumerate(mbox.keys(), start=1):
                    with mbox.get_file(key) as fh:
                        yield ReplayItem(f"{path}:{number}", fh.read())
            finally:
                mbox.close()
        else:
            yield ReplayItem(str(path), path.read_bytes())


def envelope_for(raw: bytes, settings: Settings, clock: Clock) -> Envelope:
    """Return-Path (else From) is the sender; To names the recipient when it is ours."""
    try:
        headers = BytesHeaderParser().parsebytes(raw)
        return_path = str(headers.get("Return-Path") or "")
        from_header = str(headers.get("From") or "")
        to_values = [str(v) for v in headers.get_all("To") or []]
    except Exception:
        return_path, from_header, to_values = "", "", []
    sender = parseaddr(return_path)[1] if return_path else ""
    if not sender and return_path.strip() != "<>":
        sender = parseaddr(from_header)[1]
    addresses = RequestAddresses(settings.smtp.request_addresses)
    rcpt = settings.smtp.default_request_address
    for _, address in getaddresses(to_values):
        if address and addresses.canonical(address):
            rcpt = address.lower()
            break
    return Envelope(
        mail_from=sender, rcpt_tos=(rcpt,), received_at=clock.now(), peer="replay", helo="replay"
    )


async def replay_in_process(
    item: ReplayItem, processor: Processor, envelope: Envelope
) -> dict[str, Any]:
    try:
        result = await processor.process(item.raw, envelope)
    except Exception as exc:
        return failed(item.source, f"exception:{type(exc).__name__}")
    return result.report(item.source)


def failed(source: str, reason: str, message_id: str | None = None) -> dict[str, Any]:
    return ProcessResult(message_id, Outcome.FAILED, (reason,), None, False, 0).report(source)


def _smtp_send(host: str, port: int, envelope: Envelope, raw: bytes) -> None:
    # On the wire, lines end in CRLF (RFC 5321); stored mailboxes often use LF.
    wire = re.sub(rb"\r?\n", b"\r\n", raw)
    with smtplib.SMTP(host, port, timeout=60) as client:
        client.sendmail(envelope.mail_from, list(envelope.rcpt_tos), wire)


async def replay_over_smtp(
    item: ReplayItem,
    envelope: Envelope,
    host: str,
    port: int,
    store: CaseStore,
    seen: dict[int, int],
    wait_seconds: float = 30.0,
) -> dict[str, Any]:
    """Send one message, then wait for the listener's runner to record it.

    ``seen`` maps message rows already reported in this run to how many duplicates of
    them were reported, so a second copy of a message is reported as ``duplicate``.
    """
    try:
        await asyncio.to_thread(_smtp_send, host, port, envelope, item.raw)
    except smtplib.SMTPResponseException as exc:
        return failed(item.source, f"smtp_{exc.smtp_code}")
    except (OSError, smtplib.SMTPException) as exc:
        return failed(item.source, f"smtp_error:{type(exc).__name__}")
    message_id = _message_id(item.raw)
    if message_id is None:
        return failed(item.source, "no_message_id_to_follow")
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        rows = await store.messages_by_message_id(message_id)
        for row in rows:
            if row.id not in seen:
                seen[row.id] = 0
                return _report_from_row(item.source, row, await store.identifiers_of(row.id))
        for row in rows:
            if await store.duplicate_count(row.id) > seen[row.id]:
                seen[row.id] += 1
                report = _report_from_row(item.source, row, [])
                return {**report, "outcome": "duplicate", "reasons": ["duplicate"]}
        await asyncio.sleep(0.1)
    return failed(item.source, "not_recorded_in_time", message_id)


def _message_id(raw: bytes) -> str | None:
    try:
        value = BytesHeaderParser().parsebytes(raw).get("Message-ID")
    except Exception:
        return None
    ids = message_ids(str(value or ""))
    return ids[0] if ids else None


def _report_from_row(
    source: str, row: MessageRecord, identifiers: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "source": source,
        "message_id": row.message_id,
        "outcome": row.outcome,
        "reasons": list(row.reasons),
        "case_id": row.case_id,
        "emergency": row.emergency,
        "attachments_removed": row.attachments_removed,
        "identifiers": identifiers,
    }
