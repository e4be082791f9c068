"""What an alert says, and the fraud signals it carries.

Fraudulent emergency requests are a documented attack; today's main vector is a genuine,
compromised police mailbox, so a passing domain check is necessary, not sufficient. The
alert shows each signal with its reason, and always tells staff to verify by calling the
agency back on a number from the trusted directory — never one taken from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.models import BlockedSender, Case, MessageRecord
from config.settings import DirectoryEntry, Settings
from ingest.context import MessageContext

FREEMAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "ymail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "proton.me",
        "protonmail.com",
        "gmx.com",
        "gmx.net",
        "mail.com",
        "yandex.ru",
        "yandex.com",
        "zoho.com",
        "tutanota.com",
    }
)


@dataclass(frozen=True)
class FraudSignal:
    code: str
    message: str


def directory_entry(settings: Settings, domain: str) -> DirectoryEntry | None:
    domain = domain.lower()
    for entry in settings.directory:
        if any(domain == d or domain.endswith("." + d) for d in entry.domains):
            return entry
    return None


async def is_blocked(session: AsyncSession, configured: tuple[str, ...], address: str) -> bool:
    """On the config list or on the operators' list in the store (``senders block``)."""
    if address.lower() in {a.lower() for a in configured}:
        return True
    return await session.get(BlockedSender, address.lower()) is not None


async def fraud_signals(
    session: AsyncSession, settings: Settings, ctx: MessageContext, before_row_id: int | None
) -> list[FraudSignal]:
    """Signals about the sender of ``ctx``; history counts rows before ``before_row_id``."""
    sender = ctx.sender
    if sender is None:
        return []
    signals: list[FraudSignal] = []
    earlier = (
        select(func.count()).select_from(MessageRecord).where(MessageRecord.outcome != "dropped")
    )
    if before_row_id is not None:
        earlier = earlier.where(MessageRecord.id < before_row_id)
    if not await session.scalar(earlier.where(MessageRecord.from_address == sender.address)):
        signals.append(
            FraudSignal("first_request_from_sender", f"First request ever from {sender.address}.")
        )
        org = sender.registrable_domain
        same_org = MessageRecord.from_domain.like(f"%{org}")
        if not await session.scalar(earlier.where(same_org)):
            signals.append(
                FraudSignal("first_request_from_agency", f"First request ever from {org}.")
            )
    if await is_blocked(session, settings.blocked_senders, sender.address):
        signals.append(
            FraudSignal(
                "sender_blocklisted", f"{sender.address} is on the compromised-accounts list."
            )
        )
    for verdict in ctx.verdicts:
        if verdict.code in (
            "reply_to_outside_policy",
            "envelope_sender_outside_policy",
            "dkim_body_length_limit",
        ):
            signals.append(FraudSignal(verdict.code, verdict.message))
    entry = directory_entry(settings, sender.domain)
    for ident in ctx.identifiers:
        if ident.role != "requester":
            continue
        if ident.kind == "email":
            domain = ident.value.rpartition("@")[2]
            if domain in FREEMAIL:
                signals.append(
                    FraudSignal(
                        "freemail_in_signature",
                        f"The request gives a free-mail contact: {ident.value}.",
                    )
                )
            elif not (
                domain == sender.registrable_domain
                or domain.endswith("." + sender.registrable_domain)
            ):
                signals.append(
                    FraudSignal(
                        "contact_email_differs",
                        f"Contact email {ident.value} is not at {sender.registrable_domain}.",
                    )
                )
        if ident.kind == "phone" and entry is not None and ident.value != entry.phone:
            signals.append(
                FraudSignal(
                    "callback_number_differs",
                    f"The request's phone {ident.value} is not the "
                    f"directory number for {entry.agency}.",
                )
            )
    unique: dict[str, FraudSignal] = {}
    for signal in signals:
        unique.setdefault(f"{signal.code}:{signal.message}", signal)
    return list(unique.values())


def verify_instruction(settings: Settings, domain: str) -> str:
    entry = directory_entry(settings, domain)
    if entry is None:
        return (
            "Verify before acting: call the agency back on a number from the trusted "
            "directory — this agency has no entry; find one independently. Never use a "
            "number or address taken from the request."
        )
    return (
        f"Verify before acting: call {entry.agency} back on {entry.phone} (trusted "
        "directory). Never use a number or address taken from the request. Record the "
        "call-back on the case."
    )


def alert_payload(
    settings: Settings,
    case: Case,
    ctx: MessageContext,
    kind: str,
    severity: str,
    signals: list[FraudSignal],
    confirmed: bool,
) -> dict[str, Any]:
    sender = ctx.sender
    authenticated = ctx.sender_auth == "pass"
    label = {
        "emergency": "EMERGENCY Disclosure Request",
        "unverified_emergency": "UNVERIFIED emergency request (held for review)",
        "emergency_suspected": "Possible emergency (body mentions danger/2702(b)(8))",
    }[kind]
    agency = case.agency or (sender.registrable_domain if sender else "unknown agency")
    confirmation = "confirmed by sender" if confirmed else "awaiting sender confirmation"
    return {
        "case_id": case.id,
        "case_url": settings.alerts.case_url_template.format(case_id=case.id),
        "kind": kind,
        "severity": severity,
        "summary": f"{label} — {agency} ({case.sender_address}) — "
        f"{'authenticated' if authenticated else 'UNVERIFIED sender'}, {confirmation}",
        "subject": case.subject,
        "sender": case.sender_address,
        "agency": case.agency,
        "agency_type": case.agency_type,
        "authentication": "authenticated" if authenticated else "unverified",
        "confirmation": confirmation,
        "accounts": [
            {"kind": i.kind, "value": i.value} for i in ctx.identifiers if i.role == "subject"
        ],
        "missing": list(ctx.deficiencies),
        "fraud_signals": [{"code": s.code, "message": s.message} for s in signals],
        "verify": verify_instruction(settings, case.sender_domain),
        "received_at": ctx.envelope.received_at.isoformat(),
    }
