"""The runner: claims spooled messages, runs them through the processor, finishes them.

One message at a time per runner, in spool order (priority, then arrival): the SQLite
store has one writer anyway, and order makes follow-ups land after their requests. A
message whose processing raises is retried up to ``max_attempts`` times, then moved to
``bad/`` with its error and a log line. The spool copy is deleted only after the case
store committed, so a crash anywhere means the message runs again, and the store's
duplicate check makes that safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import traceback

from ingest.processor import Processor, ProcessResult
from ingest.spool import Spool, SpoolItem

log = logging.getLogger("le_intake.runner")


class Runner:
    def __init__(
        self, spool: Spool, processor: Processor, max_attempts: int, scan_interval: float
    ) -> None:
        self.spool = spool
        self.processor = processor
        self.max_attempts = max_attempts
        self.scan_interval = scan_interval
        self._wake = asyncio.Event()
        # Ids known to wait in new/, smallest (most urgent, oldest) first. Channels in this
        # process add to it as they spool; a directory scan refills it at start-up and
        # whenever it runs dry, so items spooled by anyone else are found too.
        self._known: list[str] = []
        self.processed = 0

    def notify(self, item_id: str | None = None) -> None:
        """Called by a channel after it spooled something."""
        if item_id is not None:
            heapq.heappush(self._known, item_id)
        self._wake.set()

    async def _next_item(self) -> SpoolItem | None:
        if not self._known:
            self._known = await asyncio.to_thread(self.spool.pending)
            heapq.heapify(self._known)
        while self._known:
            item = await asyncio.to_thread(self.spool.claim, heapq.heappop(self._known))
            if item is not None:
                return item
        return None

    async def run_one(self, item: SpoolItem) -> ProcessResult | None:
        try:
            raw, envelope = await asyncio.to_thread(item.read)
            result = await self.processor.process(raw, envelope)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = "".join(traceback.format_exception(exc))
            moved = await asyncio.to_thread(self.spool.fail, item, error, self.max_attempts)
            log.error(
                "message failed%s",
                " and moved to bad/" if moved else "; it will be retried",
                extra={"spool_id": item.id, "error": type(exc).__name__},
            )
            return None
        await asyncio.to_thread(self.spool.finish, item)
        self.processed += 1
        return result

    async def drain(self) -> int:
        """Process everything waiting now; returns how many items were taken."""
        taken = 0
        while True:
            item = await self._next_item()
            if item is None:
                item = await asyncio.to_thread(self.spool.claim_next)
            if item is None:
                return taken
            taken += 1
            await self.run_one(item)

    async def run_forever(self) -> None:
        recovered = await asyncio.to_thread(self.spool.recover)
        if recovered:
            log.warning("recovered unfinished messages", extra={"count": recovered})
        while True:
            self._wake.clear()
            await self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.scan_interval)
