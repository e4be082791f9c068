"""The case store's one door: recording analysed messages and reading cases back.

``record`` is one transaction: the message row, its case (new or joined), identifiers,
attachment descriptions and audit events land together or not at all, which is what
makes re-running a message after a crash safe (the second run finds the first's row by
its sha256 and reports ``duplicate``).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from alerts.content import is_blocked
from cases.models import (
    AttachmentRecord,
    Case,
    ConfirmationToken,
    DomainDecision,
    Event,
    IdentifierRecord,
    MessageRecord,
)
from core.addresses import domain_of, within
from core.clock import Clock
from core.context import MessageContext
from core.findings import Identifier
from core.statuses import CaseStatus
from core.verdicts import Decision, Outcome, Verdict

if TYPE_CHECKING:
    from alerts.dispatcher import AlertBook
    from replies.conversation import Conversation

_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


async def domain_decisions(engine: AsyncEngine) -> dict[str, str]:
    """Operators' verified decisions on sender domains (``le-intake domains allow|deny``):
    domain → "allow" or "deny", read when the road is built."""
    async with engine.connect() as connection:
        rows = await connection.execute(select(DomainDecision.domain, DomainDecision.decision))
        return {domain: decision for domain, decision in rows}


def new_case_id(now: datetime) -> str:
    suffix = "".join(secrets.choice(_ALPHABET) for _ in range(6))
    return f"LE-{now:%Y%m%d}-{suffix}"


@dataclass(frozen=True)
class Recorded:
    outcome: Outcome
    case_id: str | None
    message_row_id: int | None
    reasons: tuple[str, ...]


class CaseStore:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        conversation: Conversation | None = None,
        alerts: AlertBook | None = None,
        blocked_senders: tuple[str, ...] = (),
    ) -> None:
        self.engine = engine
        self.clock = clock
        # The challenge-response conversation (replies/); None records without replies.
        self.conversation = conversation
        # Emergency paging (alerts/); None records without alerts.
        self.alerts = alerts
        self.blocked_senders = blocked_senders
        self.sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def record(self, ctx: MessageContext, raw_sha256: str, size: int) -> Recorded:
        for attempt in range(2):
            try:
                async with self.sessions() as session, session.begin():
                    return await self._record(session, ctx, raw_sha256, size)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _find_duplicate(
        self, session: AsyncSession, ctx: MessageContext, raw_sha256: str
    ) -> MessageRecord | None:
        clauses = [MessageRecord.raw_sha256 == raw_sha256]
        if ctx.headers.message_id and ctx.sender:
            clauses.append(
                (MessageRecord.message_id == ctx.headers.message_id)
                & (MessageRecord.from_address == ctx.sender.address)
            )
        result = await session.execute(select(MessageRecord).where(or_(*clauses)).limit(1))
        return result.scalar_one_or_none()

    async def _referenced_cases(self, session: AsyncSession, ctx: MessageContext) -> list[Case]:
        """Cases whose messages, or whose automated responses, this message refers to
        (In-Reply-To/References), newest first."""
        refs = [*ctx.headers.in_reply_to, *ctx.headers.references][:100]
        if not refs:
            return []
        by_message = await session.execute(
            select(Case)
            .join(MessageRecord, MessageRecord.case_id == Case.id)
            .where(MessageRecord.message_id.in_(refs))
            .order_by(MessageRecord.id.desc())
        )
        by_response = await session.execute(
            select(Case)
            .join(ConfirmationToken, ConfirmationToken.case_id == Case.id)
            .where(ConfirmationToken.response_message_id.in_(refs))
        )
        found: dict[str, Case] = {}
        for case in [*by_message.scalars(), *by_response.scalars()]:
            found.setdefault(case.id, case)
        return list(found.values())

    @staticmethod
    def may_join(case: Case, ctx: MessageContext) -> bool:
        """Only authenticated mail from the case sender's organisation (same registrable
        domain, on a label boundary: ``doj.gov`` never joins ``usdoj.gov``) joins a case;
        anything else that refers to it is kept apart and linked for staff."""
        sender = ctx.sender
        if sender is None or ctx.sender_auth != "pass":
            return False
        if case.sender_address == sender.address:
            return True
        registrable = sender.registrable_domain
        return bool(registrable) and within(domain_of(case.sender_address), registrable)

    def _event(
        self,
        session: AsyncSession,
        kind: str,
        code: str,
        detail: str,
        case_id: str | None = None,
        message_row_id: int | None = None,
    ) -> None:
        session.add(
            Event(
                at=self.clock.now(),
                case_id=case_id,
                message_row_id=message_row_id,
                kind=kind,
                code=code,
                detail=detail,
            )
        )

    async def _record(
        self, session: AsyncSession, ctx: MessageContext, raw_sha256: str, size: int
    ) -> Recorded:
        now = self.clock.now()
        duplicate = await self._find_duplicate(session, ctx, raw_sha256)
        if duplicate is not None:
            self._event(
                session,
                "message",
                "duplicate",
                f"Seen before as message {duplicate.id}; not recorded again.",
                duplicate.case_id,
                duplicate.id,
            )
            return Recorded(Outcome.DUPLICATE, duplicate.case_id, duplicate.id, ("duplicate",))

        decision = ctx.decision
        reasons = tuple(ctx.reason_codes)
        case: Case | None = None
        check = None
        related: list[Case] = []
        if (
            decision is not Decision.DROP
            and ctx.sender is not None
            and await is_blocked(session, self.blocked_senders, ctx.sender.address)
        ):
            # A compromised account: kept for staff, never answered, never auto-confirmed.
            decision = Decision.HOLD
            ctx.verdicts.append(
                Verdict(
                    "store",
                    Decision.HOLD,
                    "sender_blocklisted",
                    "The sender is on the compromised-accounts list.",
                )
            )
            reasons = (*reasons, "sender_blocklisted")
        if decision is Decision.DROP:
            outcome = Outcome.DROPPED
        else:
            if self.conversation is not None:
                check = await self.conversation.check_tokens(session, ctx)
            if check is not None and check.case_id is not None:
                reasons = (*reasons, check.code)
            if check is not None and check.code == "confirmed":
                outcome = Outcome.CONFIRMED
                case = await session.get(Case, check.case_id)
                if self.alerts is not None and check.case_id is not None:
                    await self.alerts.case_confirmed(session, check.case_id)
            elif check is not None and check.case_id is not None:
                # expired or used token, another sender, an automatic reply: it joins the
                # case the token belongs to, and confirms nothing
                outcome = Outcome.FOLLOWUP
                case = await session.get(Case, check.case_id)
            else:
                referenced = await self._referenced_cases(session, ctx)
                case = next((c for c in referenced if self.may_join(c, ctx)), None)
                related = [c for c in referenced if c is not case] if case is None else []
                outcome = Outcome.FOLLOWUP
            if case is None:
                outcome = Outcome.HELD if decision is Decision.HOLD else Outcome.ACCEPTED
                case = self._new_case(ctx, now, decision)
                session.add(case)

        sender = ctx.sender
        row = MessageRecord(
            case_id=case.id if case else None,
            raw_sha256=raw_sha256,
            message_id=ctx.headers.message_id,
            channel=ctx.channel,
            outcome=outcome.value,
            reasons=list(dict.fromkeys(reasons)),
            verdicts=[asdict(v) for v in ctx.verdicts],
            mail_from=ctx.envelope.mail_from[:998],
            rcpt_tos=list(ctx.envelope.rcpt_tos),
            peer=ctx.envelope.peer,
            helo=(ctx.envelope.helo or "")[:255] or None,
            received_at=ctx.envelope.received_at,
            from_address=sender.address if sender else "",
            from_domain=sender.domain if sender else "",
            display_name=sender.display_name if sender else "",
            reply_to=ctx.headers.reply_to,
            subject=ctx.headers.subject,
            date_header=(ctx.headers.date or "")[:255] or None,
            in_reply_to=list(ctx.headers.in_reply_to),
            references=list(ctx.headers.references),
            size=size,
            emergency=ctx.emergency,
            sender_auth=ctx.sender_auth,
            attachments_removed=len(ctx.attachments),
            defects=list(ctx.defects),
            text_body=None if outcome is Outcome.DROPPED else ctx.body_text,
        )
        session.add(row)
        await session.flush()

        if outcome is Outcome.DROPPED:
            detail = "; ".join(v.message for v in ctx.verdicts if v.decision is Decision.DROP)
            self._event(session, "message", "dropped", detail or "Dropped.", None, row.id)
            return Recorded(outcome, None, row.id, reasons)

        assert case is not None
        for attachment in ctx.attachments:
            session.add(AttachmentRecord(message_row_id=row.id, **asdict(attachment)))
        findings = [*ctx.identifiers, *ctx.facts]
        if findings:
            # one executemany, not an INSERT per identifier: a request names ten or so
            await session.execute(
                insert(IdentifierRecord),
                [
                    {
                        "case_id": case.id,
                        "message_row_id": row.id,
                        "kind": ident.kind,
                        "value": ident.value,
                        "raw": ident.raw,
                        "span_start": ident.start,
                        "span_end": ident.end,
                        "role": ident.role,
                        "confidence": ident.confidence,
                        "recognizer": ident.recognizer,
                        "pattern": ident.pattern,
                    }
                    for ident in findings
                ],
            )
        if outcome in (Outcome.FOLLOWUP, Outcome.CONFIRMED):
            case.updated_at = now
            self._event(
                session,
                "message",
                outcome.value,
                check.detail if check else "A further message joined the case.",
                case.id,
                row.id,
            )
        else:
            self._event(
                session,
                "case",
                "created",
                f"Case opened with status {case.status}.",
                case.id,
                row.id,
            )
        for verdict in ctx.verdicts:
            if verdict.decision is not Decision.PASS:
                self._event(session, "verdict", verdict.code, verdict.message, case.id, row.id)
        for other in related:
            # It refers to another case but may not join it: both sides see the link.
            auth = ctx.sender_auth or "none"
            self._event(
                session,
                "case",
                "related_message",
                f"A message from {row.from_address} (authentication: {auth}) refers to this "
                f"case but was kept apart as case {case.id}.",
                other.id,
                row.id,
            )
            self._event(
                session,
                "case",
                "refers_to_case",
                f"Refers to case {other.id}, which it may not join (authentication: {auth}).",
                case.id,
                row.id,
            )
        if self.conversation is not None and (
            outcome is Outcome.ACCEPTED or (check is not None and check.code == "token_expired")
        ):
            fresh = outcome is not Outcome.ACCEPTED
            not_sent = await self.conversation.respond(session, ctx, case, row.id, fresh=fresh)
            if not_sent is not None and outcome is Outcome.ACCEPTED:
                # Nobody can confirm a case that got no response: staff see it as held.
                case.status = CaseStatus.HELD
                self._event(
                    session,
                    "case",
                    "held",
                    f"No automated response ({not_sent}); held for staff to verify.",
                    case.id,
                    row.id,
                )
                reasons = (*reasons, not_sent.split(":", 1)[0])
        if self.alerts is not None and outcome in (Outcome.ACCEPTED, Outcome.HELD):
            kind = None
            if ctx.emergency:
                kind = (
                    "emergency"
                    if ctx.sender_auth == "pass" and case.status != CaseStatus.HELD
                    else "unverified_emergency"
                )
            elif ctx.emergency_suspected:
                kind = "emergency_suspected"
            if kind is not None:
                await self.alerts.raise_alert(session, ctx, case, kind, row.id)
        return Recorded(outcome, case.id, row.id, reasons)

    def _new_case(self, ctx: MessageContext, now: datetime, decision: Decision) -> Case:
        sender = ctx.sender
        status = CaseStatus.HELD if decision is Decision.HOLD else CaseStatus.AWAITING_CONFIRMATION
        return Case(
            id=new_case_id(now),
            status=status,
            channel=ctx.channel,
            emergency=ctx.emergency,
            subject=ctx.headers.subject,
            sender_address=sender.address if sender else "",
            sender_domain=sender.domain if sender else "",
            agency=ctx.agency,
            agency_type=ctx.agency_type,
            sender_auth=ctx.sender_auth,
            request_address=next(iter(ctx.envelope.rcpt_tos), ""),
            created_at=now,
            updated_at=now,
        )

    async def decide_domain(self, domain: str, decision: str, reason: str, by: str) -> None:
        """Record an operator's verified decision on a sender domain, with its audit event;
        the latest decision for a domain replaces the earlier one."""
        assert decision in ("allow", "deny")
        async with self.sessions() as session, session.begin():
            now = self.clock.now()
            await session.merge(
                DomainDecision(
                    domain=domain, decision=decision, reason=reason, decided_by=by, decided_at=now
                )
            )
            session.add(
                Event(
                    at=now,
                    kind="policy",
                    code={"allow": "domain_allowed", "deny": "domain_denied"}[decision],
                    actor=by,
                    detail=f"{domain}: {reason}",
                )
            )

    # -- reading ---------------------------------------------------------------------
    async def messages_by_message_id(self, message_id: str) -> list[MessageRecord]:
        async with self.sessions() as session:
            result = await session.execute(
                select(MessageRecord)
                .where(MessageRecord.message_id == message_id)
                .order_by(MessageRecord.id)
            )
            return list(result.scalars())

    async def duplicate_count(self, message_row_id: int) -> int:
        async with self.sessions() as session:
            result = await session.execute(
                select(func.count())
                .select_from(Event)
                .where(Event.message_row_id == message_row_id, Event.code == "duplicate")
            )
            return int(result.scalar_one())

    async def lookalike_summary(self, days: int) -> list[dict[str, Any]]:
        """Dropped lookalike mail grouped by From domain (metadata only: it has no body)."""
        since = self.clock.now() - timedelta(days=days)
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(
                        MessageRecord.from_domain,
                        MessageRecord.emergency,
                        MessageRecord.received_at,
                        MessageRecord.reasons,
                    ).where(MessageRecord.outcome == "dropped", MessageRecord.received_at >= since)
                )
            ).all()
        summary: dict[str, dict[str, Any]] = {}
        for domain, emergency, received, reasons in rows:
            if "lookalike_domain" not in (reasons or []):
                continue
            entry = summary.setdefault(
                domain,
                {
                    "from_domain": domain,
                    "messages": 0,
                    "emergency": 0,
                    "first_seen": received.isoformat(),
                    "last_seen": received.isoformat(),
                },
            )
            entry["messages"] += 1
            entry["emergency"] += int(bool(emergency))
            entry["first_seen"] = min(entry["first_seen"], received.isoformat())
            entry["last_seen"] = max(entry["last_seen"], received.isoformat())
        return sorted(summary.values(), key=lambda e: (-e["messages"], e["from_domain"]))

    async def identifiers_of(self, message_row_id: int) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            result = await session.execute(
                select(IdentifierRecord)
                .where(
                    IdentifierRecord.message_row_id == message_row_id,
                    IdentifierRecord.role != "fact",
                )
                .order_by(IdentifierRecord.id)
            )
            return [
                Identifier(
                    i.kind,
                    i.value,
                    i.raw,
                    i.span_start,
                    i.span_end,
                    i.role,
                    i.confidence,
                    i.recognizer,
                    i.pattern,
                ).report()
                for i in result.scalars()
            ]

    async def list_cases(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(Case).order_by(Case.created_at.desc()).limit(limit)
        if status:
            query = query.where(Case.status == status)
        async with self.sessions() as session:
            cases = (await session.execute(query)).scalars().all()
            return [_case_summary(c) for c in cases]

    async def get_case(self, case_id: str) -> dict[str, Any] | None:
        async with self.sessions() as session:
            case = (
                await session.execute(
                    select(Case)
                    .where(Case.id == case_id)
                    .options(
                        selectinload(Case.messages).selectinload(MessageRecord.attachments),
                        selectinload(Case.identifiers),
                        selectinload(Case.events),
                    )
                )
            ).scalar_one_or_none()
            if case is None:
                return None
            data = _case_summary(case)
            data["messages"] = [
                {
                    "id": m.id,
                    "message_id": m.message_id,
                    "outcome": m.outcome,
                    "received_at": m.received_at.isoformat(),
                    "from": m.from_address,
                    "subject": m.subject,
                    "sender_auth": m.sender_auth,
                    "reasons": m.reasons,
                    "defects": m.defects,
                    "attachments_removed": [
                        {
                            "filename": a.filename,
                            "declared_type": a.declared_type,
                            "sniffed_type": a.sniffed_type,
                            "size": a.size,
                            "sha256": a.sha256,
                        }
                        for a in m.attachments
                    ],
                }
                for m in sorted(case.messages, key=lambda m: m.id)
            ]
            findings = [
                {
                    "kind": i.kind,
                    "value": i.value,
                    "role": i.role,
                    "raw": i.raw,
                    "span": [i.span_start, i.span_end],
                    "confidence": i.confidence,
                    "recognizer": i.recognizer,
                    "pattern": i.pattern,
                }
                for i in case.identifiers
            ]
            data["identifiers"] = [f for f in findings if f["role"] != "fact"]
            # legal process, period, deadline, agent, case number (classifiers/facts.py)
            data["facts"] = [f for f in findings if f["role"] == "fact"]
            data["events"] = [
                {
                    "at": e.at.isoformat(),
                    "kind": e.kind,
                    "code": e.code,
                    "detail": e.detail,
                    "actor": e.actor,
                }
                for e in case.events
            ]
            return data


def _case_summary(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "status": case.status,
        "channel": case.channel,
        "emergency": case.emergency,
        "subject": case.subject,
        "sender": case.sender_address,
        "agency": case.agency,
        "agency_type": case.agency_type,
        "sender_auth": case.sender_auth,
        "request_address": case.request_address,
        "created_at": case.created_at.isoformat(),
        "updated_at": case.updated_at.isoformat(),
    }
