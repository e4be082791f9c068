"""Retention: personal data is kept only as long as it is needed.

After ``retention.*_days`` the bodies, subjects and identifiers of dropped, expired and
closed cases are deleted; what stays is metadata, hashes and the audit event that says
what was purged and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Result, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cases.models import Case, CaseStatus, Event, IdentifierRecord, MessageRecord, OutboxMessage
from config.settings import RetentionSettings
from le_intake.clock import Clock

PURGED = "[purged]"


def _rows(result: Result[Any]) -> int:
    return int(cast("CursorResult[Any]", result).rowcount or 0)


@dataclass(frozen=True)
class PurgeReport:
    dropped_messages: int
    cases: int


async def purge(session: AsyncSession, settings: RetentionSettings, clock: Clock) -> PurgeReport:
    now = clock.now()
    dropped = _rows(
        await session.execute(
            update(MessageRecord)
            .where(
                MessageRecord.outcome == "dropped",
                MessageRecord.received_at < now - timedelta(days=settings.dropped_days),
                MessageRecord.subject != PURGED,
            )
            .values(subject=PURGED, display_name="", reply_to=None, text_body=None)
        )
    )
    purged_cases = 0
    for status, days in (
        (CaseStatus.EXPIRED, settings.expired_days),
        (CaseStatus.CLOSED, settings.closed_days),
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
            await session.execute(
                update(MessageRecord)
                .where(MessageRecord.case_id == case.id)
                .values(text_body=None, subject=PURGED, display_name="", reply_to=None)
            )
            removed = _rows(
                await session.execute(
                    delete(IdentifierRecord).where(IdentifierRecord.case_id == case.id)
                )
            )
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.case_id == case.id).values(raw=b"")
            )
            case.subject = PURGED
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
    return PurgeReport(dropped, purged_cases)
