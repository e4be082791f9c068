"""What an alert says, and the fraud signals it carries.

Fraudulent emergency requests are a documented attack; today's main vector is a genuine,
compromised police mailbox, so a passing domain check is necessary, not sufficient. The
alert shows each signal with its reason, and always tells staff to verify by calling the
agency back on a number from the trusted directory — never one taken from the request.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cases.models import BlockedSender, Case, MessageRecord
from classifiers.auth import peer_host
from config.settings import DirectoryEntry, Settings
from core.context import MessageContext

# A digest lists this many of its cases; the count is always the whole number.
DIGEST_CASES_SHOWN = 50

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


# -- unverified pages: what they are counted against ---------------------------------
@dataclass(frozen=True)
class RateKey:
    """One thing an unverified page counts against: ``label`` is sender, domain, peer or
    all; ``value`` is what staff read; ``digest`` is what the store keeps (a hash)."""

    label: str
    value: str
    limit: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.label}\0{self.value}".encode()).hexdigest()


def _peer_value(peer: str) -> str:
    """An IPv6 peer counts by its /64 (one host owns a whole /64); IPv4 by its address."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer.lower()
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def rate_keys(settings: Settings, ctx: MessageContext) -> list[RateKey]:
    """What an unverified page from ``ctx`` is limited by (a limit of 0 is no limit).

    The sender is the From address without its ``+tag`` (a fax: the calling number, its
    From being ours or the gateway's); the domain its registrable domain; the peer the
    connecting host, unless it is a trusted peer (the boundary MTA is every message's
    peer) or the fax provider (it relays every agency's faxes) — counting those would
    hold back every other sender's page.
    """
    config = settings.alerts
    keys: list[RateKey] = []
    fax = ctx.channel.startswith("fax")
    if fax:
        sender = ctx.fax.get("calling") or "unknown number"
    elif ctx.sender is not None:
        local, _, domain = ctx.sender.address.lower().rpartition("@")
        sender = f"{local.split('+', 1)[0]}@{domain}"
    else:
        sender = ctx.envelope.mail_from.lower() or "unknown sender"
    keys.append(RateKey("sender", sender, config.unverified_max_per_sender))
    if not fax and ctx.sender is not None:
        keys.append(
            RateKey(
                "domain", ctx.sender.registrable_domain.lower(), config.unverified_max_per_domain
            )
        )
    peer = peer_host(ctx.envelope)
    if not fax and peer and peer not in settings.auth.trusted_peers:
        keys.append(RateKey("peer", _peer_value(peer), config.unverified_max_per_peer))
    keys.append(RateKey("all", "all unverified pages", config.unverified_max_total))
    return [k for k in keys if k.limit > 0]


def digest_payload(
    settings: Settings,
    first: dict[str, Any],
    repeats: list[tuple[str, dict[str, Any]]],
    window_minutes: float,
) -> dict[str, Any]:
    """The one page that stands for the unverified repeats rolled into ``first``'s window:
    how many, from whom, and their cases (each held for review and on its own record)."""
    senders = list(dict.fromkeys(str(p.get("sender", "")) for _, p in repeats))
    limits = sorted({label for label, _ in repeats})
    shown = ", ".join(senders[:5]) + (f" and {len(senders) - 5} more" if len(senders) > 5 else "")
    count = len(repeats)
    return {
        "case_id": first["case_id"],
        "case_url": first["case_url"],
        "kind": "unverified_digest",
        "severity": settings.alerts.severity_unverified,
        "summary": f"DIGEST — {count} more unverified emergency request(s) from {shown} "
        f"within {window_minutes:g} min of the page for case {first['case_id']} — "
        "each held for review",
        "subject": f"{count} unverified emergency request(s)",
        "sender": shown,
        "agency": None,
        "agency_type": None,
        "authentication": "unverified",
        "confirmation": "held for review",
        "accounts": [],
        "missing": [],
        "fraud_signals": [
            {
                "code": "rate_limited",
                "message": f"Unverified pages limited per {', '.join(limits)}; "
                "these were not paged one by one.",
            }
        ],
        "verify": "Each case is held: verify each by calling the agency back on a number "
        "from the trusted directory, never one taken from a request.",
        "received_at": first.get("received_at", ""),
        "repeats": [
            {
                "case_id": p.get("case_id"),
                "case_url": p.get("case_url"),
                "sender": p.get("sender"),
                "kind": p.get("kind"),
                "received_at": p.get("received_at"),
            }
            for _, p in repeats[:DIGEST_CASES_SHOWN]
        ],
        "repeat_count": count,
    }


def purged_payload(payload: dict[str, Any], marker: str) -> dict[str, Any]:
    """A payload past retention: the subject, the accounts, the fraud-signal texts (they
    quote contact details) and a digest's repeat list go; ids, kind, severity, sender,
    agency and signal codes stay, so the alert still says what it was."""
    kept = {k: v for k, v in payload.items() if k not in ("accounts", "fraud_signals", "repeats")}
    kept["subject"] = marker
    kept["accounts"] = []
    kept["fraud_signals"] = [
        {"code": s.get("code", ""), "message": marker}
        for s in payload.get("fraud_signals", [])
        if isinstance(s, dict)
    ]
    if "repeats" in payload:
        kept["repeats"] = [
            {"case_id": r.get("case_id"), "case_url": r.get("case_url")}
            for r in payload["repeats"]
            if isinstance(r, dict)
        ]
    kept["purged"] = True
    return kept
