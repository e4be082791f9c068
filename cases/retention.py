"""Retention: personal data is kept only as long as it is needed.

Everything that holds personal data has a period (``[retention]``) and is purged by this
one pass, which ``le-intake purge`` and the sweep in ``serve`` run:

- dropped mail (``dropped_days``): subject, display name, Reply-To, verdict sentences;
- expired, closed and held cases (``expired_days``, ``closed_days``, ``held_days``, from
  the case's last change): bodies, subjects, identifiers, verdict sentences, queued
  responses and the payloads of the case's alerts;
- alert payloads (``alerts_days``, from when the alert was raised), whatever the case's
  state: the subject, the accounts and the fraud-signal texts (which quote contact
  details) go; case id, kind, severity and signal codes stay;
- event details (``events_days``): the sentences (which quote addresses, call-back
  notes); time, kind, code and actor stay, and the retention events themselves (counts
  only) are kept;
- ``spool/bad/`` (``bad_days``, from when the message failed for good): the message file
  and its error note are deleted.

What stays is metadata, hashes and the audit events that say what was purged, in counts
only, and why. Each purge marks what it did, so running it again purges nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from alerts.content import purged_payload
from cases.models import Alert, Case, Event, IdentifierRecord, MessageRecord, OutboxMessage
from config.settings import RetentionSettings
from core.clock import Clock
from core.statuses import CaseStatus

PURGED = "[purged]"
_ERROR_SUFFIX = ".error.txt"


def _rows(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


@dataclass(frozen=True)
class PurgeReport:
    dropped_messages: int
    cases: int
    alerts: int = 0
    events: int = 0
    bad_files: int = 0


def _purged_verdicts(verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Verdicts keep their stage, decision and code; the sentence may quote the sender."""
    return [{**v, "message": PURGED} for v in verdicts]


def _purge_message(row: MessageRecord) -> None:
    row.subject = PURGED
    row.display_name = ""
    row.reply_to = None
    row.text_body = None
    row.verdicts = _purged_verdicts(list(row.verdicts or []))


async def _purge_dropped(session: AsyncSession, cutoff: datetime) -> int:
    rows = (
        (
            await session.execute(
                select(MessageRecord).where(
                    MessageRecord.outcome == "dropped",
                    MessageRecord.received_at < cutoff,
                    MessageRecord.subject != PURGED,
                )
            )
        )
        .scalars()
        .all()
    )
    for row in rows:
        _purge_message(row)
    return len(rows)


async def _purge_case(session: AsyncSession, case: Case) -> tuple[int, int]:
    """Bodies, subjects, identifiers, queued mail and alert payloads of one case;
    returns (identifiers removed, alert payloads purged)."""
    messages = (
        (await session.execute(select(MessageRecord).where(MessageRecord.case_id == case.id)))
        .scalars()
        .all()
    )
    for row in messages:
        _purge_message(row)
    removed = _rows(
        await session.execute(delete(IdentifierRecord).where(IdentifierRecord.case_id == case.id))
    )
    await session.execute(
        update(OutboxMessage).where(OutboxMessage.case_id == case.id).values(raw=b"")
    )
    alerts = (await session.execute(select(Alert).where(Alert.case_id == case.id))).scalars().all()
    purged_alerts = 0
    for alert in alerts:
        if not alert.payload.get("purged"):
            alert.payload = purged_payload(alert.payload, PURGED)
            purged_alerts += 1
    case.subject = PURGED
    return removed, purged_alerts


async def _purge_alerts(session: AsyncSession, cutoff: datetime) -> int:
    alerts = (
        (
            await session.execute(
                select(Alert).where(
                    Alert.created_at < cutoff,
                    Alert.payload["purged"].as_boolean().is_(None),
                )
            )
        )
        .scalars()
        .all()
    )
    for alert in alerts:
        alert.payload = purged_payload(alert.payload, PURGED)
    return len(alerts)


async def _purge_events(session: AsyncSession, cutoff: datetime) -> int:
    return _rows(
        await session.execute(
            update(Event)
            .where(Event.at < cutoff, Event.kind != "retention", Event.detail != PURGED)
            .values(detail=PURGED)
        )
    )


def _purge_bad(bad_dir: Path, cutoff: datetime, dry_run: bool) -> int:
    """Messages in ``bad/`` that failed for good before ``cutoff`` (the later of the
    message's and its error note's times), deleted with their notes; returns how many."""
    try:
        names = [p.name for p in bad_dir.iterdir() if not p.name.startswith(".")]
    except FileNotFoundError:
        return 0
    items: dict[str, list[Path]] = {}
    for name in names:
        base = name[: -len(_ERROR_SUFFIX)] if name.endswith(_ERROR_SUFFIX) else name
        items.setdefault(base, []).append(bad_dir / name)
    limit = cutoff.timestamp()
    purged = 0
    for paths in items.values():
        try:
            newest = max(p.lstat().st_mtime for p in paths)
        except FileNotFoundError:
            continue  # removed meanwhile (an operator moved it back to new/)
        if newest >= limit:
            continue
        purged += 1
        if not dry_run:
            for path in paths:
                path.unlink(missing_ok=True)
    return purged


async def purge(
    session: AsyncSession,
    settings: RetentionSettings,
    clock: Clock,
    bad_dir: Path | None = None,
    dry_run: bool = False,
) -> PurgeReport:
    """Purge everything past its period inside ``session``'s transaction and add the
    audit events; ``bad_dir`` is the spool's ``bad/`` (None: leave it alone). Files are
    deleted at once unless ``dry_run`` (the caller rolls the transaction back then)."""
    now = clock.now()
    dropped = await _purge_dropped(session, now - timedelta(days=settings.dropped_days))
    purged_cases = 0
    purged_alerts = 0
    for status, days in (
        (CaseStatus.EXPIRED, settings.expired_days),
        (CaseStatus.CLOSED, settings.closed_days),
        (CaseStatus.HELD, settings.held_days),
    ):
        cases = (
            (
                await session.execute(
                    select(Case).where(
                        Case.status == status,
                        Case.updated_at < now - timedelta(days=days),
                        Case.subject != PURGED,
                    )
                )
            )
            .scalars()
            .all()
        )
        for case in cases:
            removed, alerts = await _purge_case(session, case)
            purged_alerts += alerts
            session.add(
                Event(
                    at=now,
                    case_id=case.id,
                    kind="retention",
                    code="purged",
                    detail=f"Bodies, subject and {removed} identifier(s) deleted: case "
                    f"{status} for more than {days:g} days.",
                )
            )
            purged_cases += 1
    old_alerts = await _purge_alerts(session, now - timedelta(days=settings.alerts_days))
    events = await _purge_events(session, now - timedelta(days=settings.events_days))
    bad = 0
    if bad_dir is not None:
        bad = _purge_bad(bad_dir, now - timedelta(days=settings.bad_days), dry_run)
    if dropped:
        session.add(
            Event(
                at=now,
                kind="retention",
                code="purged_dropped",
                detail=f"Subjects of {dropped} dropped message(s) older than "
                f"{settings.dropped_days:g} days deleted.",
            )
        )
    if old_alerts:
        session.add(
            Event(
                at=now,
                kind="retention",
                code="purged_alerts",
                detail=f"Payloads of {old_alerts} alert(s) raised more than "
                f"{settings.alerts_days:g} days ago purged (subject, accounts, signal texts).",
            )
        )
    if events:
        session.add(
            Event(
                at=now,
                kind="retention",
                code="purged_events",
                detail=f"Details of {events} event(s) older than {settings.events_days:g} "
                "days purged (time, kind, code and actor kept).",
            )
        )
    if bad:
        session.add(
            Event(
                at=now,
                kind="retention",
                code="purged_bad_spool",
                detail=f"{bad} message(s) that failed for good more than "
                f"{settings.bad_days:g} days ago deleted from spool/bad/.",
            )
        )
    return PurgeReport(dropped, purged_cases, purged_alerts + old_alerts, events, bad)
