"""One message, all the way: analyse (stages), record (case store), then effects.

The runner calls this for spooled mail and replay calls it for fixture mailboxes, so
both take the same road. The result is the row of replay's report.

A message whose analysis could not finish (its worker hit the deadline or its memory cap)
is still recorded: ``held_context`` reads what it safely can (the header block, bounded, no
MIME walk, no body) and holds the case with the reason, for staff to verify by hand.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from cases.repository import CaseStore
from classifiers.emergency import is_emergency_subject
from core.addresses import domain_of
from core.context import MessageContext, Sender
from core.envelope import Envelope
from core.headers import first_address
from core.verdicts import Decision, Outcome, Verdict
from ingest.analysis import Analyser
from ingest.parse import read_headers

log = logging.getLogger("le_intake.processor")


@dataclass(frozen=True)
class ProcessResult:
    message_id: str | None
    outcome: Outcome
    reasons: tuple[str, ...]
    case_id: str | None
    emergency: bool
    attachments_removed: int
    identifiers: tuple[dict[str, Any], ...] = field(default=())

    def report(self, source: str) -> dict[str, Any]:
        return {
            "source": source,
            "message_id": self.message_id,
            "outcome": self.outcome.value,
            "reasons": list(self.reasons),
            "case_id": self.case_id,
            "emergency": self.emergency,
            "attachments_removed": self.attachments_removed,
            "identifiers": [dict(i) for i in self.identifiers],
        }


# The header block of a message whose analysis failed is read from at most this many bytes:
# enough for any real header block, small enough that parsing it is cheap on the loop's
# thread pool even when the message is hostile.
HELD_HEADER_BYTES = 64 * 1024
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def held_context(raw: bytes, envelope: Envelope, code: str, sentence: str) -> MessageContext:
    """The context of a message whose analysis did not finish: held, with the reason.

    Only the header block is read (Message-ID, subject, From for the case; the emergency
    subject rule, so an emergency still pages), never the body: what broke the analysis
    may be in it. The sender is not authenticated. Never raises.
    """
    ctx = MessageContext(raw=b"", envelope=envelope)
    end = _HEADER_END.search(raw, 0, HELD_HEADER_BYTES)
    head = raw[: end.end() if end else HELD_HEADER_BYTES]
    try:
        ctx.headers = read_headers(BytesHeaderParser(policy=policy.compat32).parsebytes(head))
    except Exception as exc:  # the stdlib raises many types on hostile header blocks
        ctx.defects.append(f"headers_unreadable:{type(exc).__name__}")
    ctx.channel = envelope.channel if envelope.channel.startswith("fax") else "email"
    if ctx.channel.startswith("fax"):
        keys = ("calling", "called", "fax_id", "pages")
        ctx.fax = {k: v for k, v in envelope.extra.items() if k in keys}
        ctx.sender = Sender(f"fax:{ctx.fax.get('calling') or 'unknown'}", "", "", "")
    else:
        name, address = first_address(ctx.headers.from_header)
        if address:
            domain = domain_of(address)
            ctx.sender = Sender(address, domain, name, domain)
    ctx.sender_auth = "none"
    ctx.emergency = is_emergency_subject(ctx.headers.subject)
    ctx.verdicts.append(Verdict("runner", Decision.HOLD, code, sentence))
    if ctx.emergency:
        ctx.verdicts.append(
            Verdict(
                "runner",
                Decision.NOTE,
                "emergency_subject",
                "The subject reads as an Emergency Disclosure Request.",
            )
        )
    return ctx


class Processor:
    def __init__(
        self,
        analyser: Analyser,
        store: CaseStore,
        on_recorded: Callable[[], None] = lambda: None,
    ) -> None:
        self.analyser = analyser
        self.store = store
        # Called after each commit: wakes the outbox (and later the alert dispatcher).
        self.on_recorded = on_recorded

    async def process(self, raw: bytes, envelope: Envelope) -> ProcessResult:
        return await self.record(raw, await self.analyse(raw, envelope))

    async def analyse(self, raw: bytes, envelope: Envelope) -> MessageContext:
        """The stages (in a worker process when there is a pool): no store, no effects,
        so several messages may be analysed at once."""
        return await self.analyser.analyse(raw, envelope)

    async def record(self, raw: bytes, ctx: MessageContext) -> ProcessResult:
        """The case store's one transaction for the message, then its effects. Callers
        record messages one at a time, in the order they were taken."""
        sha = hashlib.sha256(raw).hexdigest()
        recorded = await self.store.record(ctx, sha, len(raw))
        self.on_recorded()
        stored_identifiers = recorded.outcome in (
            Outcome.ACCEPTED,
            Outcome.FOLLOWUP,
            Outcome.HELD,
            Outcome.CONFIRMED,
        )
        result = ProcessResult(
            message_id=ctx.headers.message_id,
            outcome=recorded.outcome,
            reasons=recorded.reasons
            if recorded.outcome is not Outcome.DUPLICATE
            else ("duplicate", *ctx.reason_codes),
            case_id=recorded.case_id,
            emergency=ctx.emergency,
            attachments_removed=len(ctx.attachments),
            identifiers=tuple(i.report() for i in ctx.identifiers) if stored_identifiers else (),
        )
        # Metadata only: never the body, never identifier values.
        log.info(
            "message processed",
            extra={
                "outcome": result.outcome.value,
                "reasons": ",".join(result.reasons),
                "case_id": result.case_id,
                "sha256": sha[:16],
                "from_domain": ctx.sender.domain if ctx.sender else "",
                "emergency": result.emergency,
            },
        )
        return result
