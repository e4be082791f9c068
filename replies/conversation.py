"""The challenge-response conversation, inside the case store's transaction.

A new request from an authenticated law-enforcement sender gets an automated response
carrying a token; staff see the case only once the same sender replies with it. Both
steps happen in the transaction that records the message, so a response is queued in the
outbox exactly when its case exists, and a confirmation lands with its message or not at all.

A reply confirms when it (a) passed the gate unheld and authenticated, (b) is not
automatic, (c) carries a
token — recipient sub-address, In-Reply-To of our response, or the body — that is known,
unused and unexpired, and (d) comes from the address the token was sent to. A token works
once. A reply after expiry gets a fresh response.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.models import Case, ConfirmationToken, Event, OutboxMessage
from config.settings import Settings
from core.addresses import RequestAddresses
from core.clock import Clock
from core.context import MessageContext
from core.statuses import CaseStatus
from core.verdicts import Decision
from replies.compose import ResponseFacts, compose_response
from replies.policy import automatic_reason
from replies.tokens import candidates, new_token, token_hash


@dataclass(frozen=True)
class TokenCheck:
    """What a reply's tokens amounted to: ``confirmed``, or a reason it did not confirm."""

    case_id: str | None
    code: str  # confirmed, token_expired, token_used, token_sender_mismatch, no_token
    detail: str


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we write is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Conversation:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.replies = settings.replies
        self.clock = clock
        self.addresses = RequestAddresses(settings.smtp.request_addresses)

    def _event(
        self,
        session: AsyncSession,
        case_id: str | None,
        code: str,
        detail: str,
        message_row_id: int | None = None,
    ) -> None:
        session.add(
            Event(
                at=self.clock.now(),
                case_id=case_id,
                message_row_id=message_row_id,
                kind="conversation",
                code=code,
                detail=detail,
            )
        )

    # -- confirming ----------------------------------------------------------------------
    async def check_tokens(self, session: AsyncSession, ctx: MessageContext) -> TokenCheck | None:
        """Look for a confirmation in a message that passed the gate; None if it carries
        no token of ours at all."""
        if (
            not self.replies.enabled
            or ctx.decision is not Decision.PASS
            or ctx.sender is None
            # whatever the auth.on_* policy lets through, only an authenticated reply
            # speaks for the address the token went to
            or ctx.sender_auth != "pass"
        ):
            return None
        rows: list[ConfirmationToken] = []
        hashes = [token_hash(t) for t in candidates(ctx.envelope.rcpt_tos, ctx.body_text)]
        if hashes:
            result = await session.execute(
                select(ConfirmationToken).where(ConfirmationToken.token_hash.in_(hashes))
            )
            rows.extend(result.scalars())
        refs = [*ctx.headers.in_reply_to, *ctx.headers.references][:50]
        if refs:
            result = await session.execute(
                select(ConfirmationToken).where(ConfirmationToken.response_message_id.in_(refs))
            )
            rows.extend(r for r in result.scalars() if r not in rows)
        if not rows:
            return None
        if (reason := automatic_reason(ctx)) is not None:
            # A vacation notice or bounce of our response: it joins the case, confirms nothing.
            return TokenCheck(
                rows[0].case_id,
                "automatic_reply",
                f"An automatic message ({reason}) answered our response.",
            )
        now = self.clock.now()
        outcome: TokenCheck | None = None
        for row in rows:
            if not hmac.compare_digest(row.sender_address, ctx.sender.address):
                outcome = outcome or TokenCheck(
                    row.case_id,
                    "token_sender_mismatch",
                    "A reply with a valid token came from another "
                    "address; it does not confirm the request.",
                )
                continue
            if row.used_at is not None:
                outcome = TokenCheck(
                    row.case_id, "token_used", "The confirmation token was already used."
                )
                continue
            if _utc(row.expires_at) <= now:
                outcome = TokenCheck(
                    row.case_id, "token_expired", "The confirmation token had expired."
                )
                continue
            case = await session.get(Case, row.case_id)
            if case is None or case.status not in (CaseStatus.AWAITING_CONFIRMATION,):
                outcome = outcome or TokenCheck(
                    row.case_id, "token_used", "The case no longer awaits confirmation."
                )
                continue
            row.used_at = now
            case.status = CaseStatus.OPEN
            case.updated_at = now
            self._event(
                session,
                case.id,
                "confirmed",
                "The sender confirmed the request; the case is open for staff.",
            )
            return TokenCheck(case.id, "confirmed", "The sender confirmed the request.")
        return outcome

    # -- responding ----------------------------------------------------------------------
    async def respond(
        self,
        session: AsyncSession,
        ctx: MessageContext,
        case: Case,
        message_row_id: int,
        fresh: bool = False,
    ) -> str | None:
        """Queue the automated response for a new case; returns why not, or None when
        queued."""
        if not self.replies.enabled:
            return "replies_disabled"
        if ctx.decision is not Decision.PASS or ctx.sender_auth != "pass" or ctx.sender is None:
            return "sender_not_authenticated"
        if (reason := automatic_reason(ctx)) is not None:
            return f"automatic_message:{reason}"
        now = self.clock.now()
        recipient = ctx.sender.address
        sent_today = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.recipient == recipient,
                OutboxMessage.kind == "auto_response",
                OutboxMessage.created_at >= now - timedelta(days=1),
            )
        )
        if (sent_today or 0) >= self.replies.max_per_sender_per_day:
            return "reply_rate_limited"
        request_address = next(
            (c for c in map(self.addresses.canonical, ctx.envelope.rcpt_tos) if c),
            self.settings.smtp.default_request_address,
        )
        token = new_token()
        expires = now + timedelta(days=self.replies.token_ttl_days)
        composed = compose_response(
            ResponseFacts(
                case_id=case.id,
                request_address=request_address,
                recipient=recipient,
                subject=ctx.headers.subject,
                received_at=ctx.envelope.received_at,
                in_reply_to=ctx.headers.message_id,
                references=ctx.headers.references,
                token=token,
                expires_at=expires,
                composed_at=now,
                attachments=tuple(ctx.attachments),
                deficiencies=tuple(ctx.deficiencies),
                emergency=ctx.emergency,
                fresh=fresh,
            ),
            from_name=self.replies.from_name,
            platform=request_address.partition("@")[2],
        )
        session.add(
            ConfirmationToken(
                case_id=case.id,
                sender_address=recipient,
                token_hash=token_hash(token),
                response_message_id=composed.message_id,
                created_at=now,
                expires_at=expires,
            )
        )
        session.add(
            OutboxMessage(
                case_id=case.id,
                kind="auto_response",
                sender=composed.sender,
                recipient=recipient,
                message_id=composed.message_id,
                raw=composed.raw,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )
        self._event(
            session,
            case.id,
            "response_queued",
            f"Automated response queued to {recipient}; expires {expires:%Y-%m-%d}.",
            message_row_id,
        )
        return None

    async def expire_unconfirmed(self, session: AsyncSession) -> int:
        """Cases whose every token has expired without a reply become ``expired``."""
        now = self.clock.now()
        live = select(ConfirmationToken.case_id).where(
            ConfirmationToken.expires_at > now, ConfirmationToken.used_at.is_(None)
        )
        cases = (
            (
                await session.execute(
                    select(Case).where(
                        Case.status == CaseStatus.AWAITING_CONFIRMATION,
                        Case.id.not_in(live),
                        Case.id.in_(select(ConfirmationToken.case_id)),
                    )
                )
            )
            .scalars()
            .all()
        )
        for case in cases:
            case.status = CaseStatus.EXPIRED
            case.updated_at = now
            self._event(
                session, case.id, "expired", "No confirming reply came before the response expired."
            )
        return len(cases)
