"""Operator alerts: the intake itself needs a person, not a case (a message quarantined in
``spool/bad/``).

Case alerts (``alerts.dispatcher``) live in the case store with their case; a quarantined
message has no case, and the store may be the very thing that is failing. So an operator
alert is kept on disk beside the message: ``bad/<id>.alerted.txt`` is written once a sink
took it, and at start-up every item in ``bad/`` without that marker is alerted again. They
go through the same tiers and sinks as case alerts (first tier, falling back across its
sinks in order, retrying with ``alerts.retry_delays_seconds``), urgent (emergency-priority)
items first. An alert says which spool item and why, never the body or the subject.

Its payload is the case alerts' shape with ``kind = "operator"`` (``case_id`` carries
``operator:<spool id>``, the de-duplication key PagerDuty needs), so every sink renders it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp

from alerts.dispatcher import sinks_of, tiers_of
from alerts.sinks import Sink, SinkError, build_sink
from config.settings import Settings
from core.clock import Clock
from ingest.spool import Spool, is_urgent

log = logging.getLogger("le_intake.operator")

KIND = "operator"
# PagerDuty's severities: an urgent (emergency) message that could not be processed pages
# like an emergency; any other one is an error to look at soon.
SEVERITY_URGENT = "critical"
SEVERITY_NORMAL = "error"


@dataclass(frozen=True, order=True)
class Quarantined:
    """One spool item in bad/ (ordered as the spool orders: urgent first, then oldest)."""

    spool_id: str
    code: str
    reason: str


def operator_payload(settings: Settings, item: Quarantined, spool: Spool) -> dict[str, Any]:
    urgent = is_urgent(item.spool_id)
    where = spool.bad / item.spool_id
    return {
        "kind": KIND,
        "severity": SEVERITY_URGENT if urgent else SEVERITY_NORMAL,
        "summary": (
            f"{'URGENT (emergency priority) ' if urgent else ''}message {item.spool_id} "
            f"could not be processed and is in spool/bad/: {item.reason}"
        )[:1000],
        "spool_id": item.spool_id,
        "reason_code": item.code,
        "reason": item.reason,
        "priority": "urgent" if urgent else "normal",
        "case_id": f"operator:{item.spool_id}",
        "case_url": str(where),
        "sender": "le-intake",
        "agency": "operator",
        "authentication": "n/a",
        "confirmation": "n/a",
        "accounts": [],
        "missing": [],
        "fraud_signals": [],
        "verify": (
            f"Read {where}.error.txt. To run the message again, move {where} back to {spool.new}/."
        ),
    }


class OperatorAlerts:
    def __init__(self, settings: Settings, spool: Spool, clock: Clock) -> None:
        self.settings = settings
        self.spool = spool
        self.clock = clock
        self.tiers = tiers_of(settings)
        self._pending: list[Quarantined] = []
        self._queued: set[str] = set()
        self._wake = asyncio.Event()
        self._failures = 0
        self._retry_at = 0.0
        self.sent = 0
        self.last_error: str | None = None

    @property
    def active(self) -> bool:
        return self.settings.alerts.enabled and bool(self.tiers)

    def quarantined(self, spool_id: str, code: str, reason: str) -> None:
        """The runner moved ``spool_id`` to bad/: alert about it (soon, in order)."""
        if spool_id in self._queued:
            return
        self._queued.add(spool_id)
        heapq.heappush(self._pending, Quarantined(spool_id, code, reason))
        self._retry_at = 0.0
        self._wake.set()

    async def load_backlog(self) -> int:
        """Items in bad/ whose alert was never delivered (a restart, a sink outage)."""
        ids = await asyncio.to_thread(self.spool.unalerted_bad)
        for spool_id in ids:
            code, reason = await asyncio.to_thread(self.spool.bad_reason, spool_id)
            self.quarantined(spool_id, code, reason)
        return len(ids)

    def status(self) -> dict[str, Any]:
        return {
            "pending": len(self._pending),
            "sent": self.sent,
            "active": self.active,
            "last_error": self.last_error,
        }

    async def _send(self, sinks: dict[str, Sink], item: Quarantined) -> str:
        """The name of the sink that took the alert; SinkError when none did."""
        payload = operator_payload(self.settings, item, self.spool)
        errors: list[str] = []
        for name in self.tiers[0].sinks:
            sink = sinks.get(name)
            if sink is None:
                errors.append(f"{name}: not configured")
                continue
            try:
                await sink.send("trigger", payload)
            except SinkError as exc:
                errors.append(str(exc))
                continue
            return name
        raise SinkError("; ".join(errors) or "no sink configured")

    async def deliver_due(self) -> int:
        """Send what is pending, urgent first; returns how many were delivered."""
        if not self._pending or asyncio.get_running_loop().time() < self._retry_at:
            return 0
        if not self.active:
            while self._pending:
                item = heapq.heappop(self._pending)
                self._queued.discard(item.spool_id)
                log.error(
                    "operator alert: no alert sink is configured",
                    extra={"spool_id": item.spool_id, "code": item.code, "reason": item.reason},
                )
            return 0
        sent = 0
        configured = sinks_of(self.settings)
        async with aiohttp.ClientSession() as http:
            sinks = {
                name: build_sink(name, configured[name], http, self.settings.outbox)
                for name in self.tiers[0].sinks
                if name in configured
            }
            while self._pending:
                item = self._pending[0]
                try:
                    via = await self._send(sinks, item)
                except SinkError as exc:
                    self._failures += 1
                    self.last_error = str(exc)[:500]
                    delays = self.settings.alerts.retry_delays_seconds or (5.0,)
                    delay = delays[min(self._failures, len(delays)) - 1]
                    self._retry_at = asyncio.get_running_loop().time() + delay
                    log.warning(
                        "operator alert failed on every sink; will retry",
                        extra={"spool_id": item.spool_id, "retry_in": delay},
                    )
                    return sent
                heapq.heappop(self._pending)
                self._queued.discard(item.spool_id)
                self._failures = 0
                self.last_error = None
                note = f"operator alert sent via {via} at {self.clock.now().isoformat()}"
                with contextlib.suppress(OSError):  # gone from bad/ meanwhile: fine
                    await asyncio.to_thread(self.spool.mark_alerted, item.spool_id, note)
                sent += 1
                self.sent += 1
        return sent

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception:
                log.exception("operator alert pass failed; retrying")
            timeout = self.settings.alerts.poll_interval_seconds
            if self._pending:
                timeout = max(0.05, self._retry_at - asyncio.get_running_loop().time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
