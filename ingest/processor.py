"""One message, all the way: analyse (stages), record (case store), then effects.

The runner calls this for spooled mail and replay calls it for fixture mailboxes, so
both take the same road. The result is the row of replay's report.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cases.repository import CaseStore
from ingest.analysis import Analyser
from ingest.context import MessageContext
from ingest.envelope import Envelope
from ingest.verdicts import Outcome

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
