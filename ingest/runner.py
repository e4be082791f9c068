"""The runner: claims spooled messages, runs them through the processor, finishes them.

Messages are taken in spool order (priority, then arrival). Their analysis may run ahead:
up to ``ahead`` messages are analysed at once (in the worker pool, while this process
records), but they are recorded one at a time and in the order they were taken: the
SQLite store has one writer anyway, and order makes follow-ups land after their requests.
``ahead`` stays small (the pool's size plus one) so an emergency that arrives waits for
at most that many messages before its own analysis starts. A message whose processing
raises is retried up to ``max_attempts`` times, then moved to
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
from collections import deque

from ingest.context import MessageContext
from ingest.processor import Processor, ProcessResult
from ingest.spool import Spool, SpoolItem

log = logging.getLogger("le_intake.runner")


class Runner:
    def __init__(
        self,
        spool: Spool,
        processor: Processor,
        max_attempts: int,
        scan_interval: float,
        ahead: int = 1,
    ) -> None:
        self.spool = spool
        self.ahead = max(1, ahead)
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

    async def _analyse(self, item: SpoolItem) -> tuple[bytes, MessageContext]:
        raw, envelope = await asyncio.to_thread(item.read)
        return raw, await self.processor.analyse(raw, envelope)

    async def _record(
        self, item: SpoolItem, analysis: asyncio.Future[tuple[bytes, MessageContext]]
    ) -> ProcessResult | None:
        try:
            raw, ctx = await analysis
            result = await self.processor.record(raw, ctx)
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

    async def _claim(self) -> SpoolItem | None:
        item = await self._next_item()
        if item is None:
            item = await asyncio.to_thread(self.spool.claim_next)
        return item

    async def drain(self) -> int:
        """Process everything waiting now; returns how many items were taken."""
        taken = 0
        inflight: deque[tuple[SpoolItem, asyncio.Future[tuple[bytes, MessageContext]]]]
        inflight = deque()
        try:
            while True:
                while len(inflight) < self.ahead and (item := await self._claim()) is not None:
                    inflight.append((item, asyncio.ensure_future(self._analyse(item))))
                    taken += 1
                if not inflight:
                    return taken
                await self._record(*inflight.popleft())
        finally:
            # Cancelled (shutdown): analyses still running are abandoned; their items stay
            # claimed and are recovered at the next start.
            for _, analysis in inflight:
                analysis.cancel()

    async def run_forever(self) -> None:
        recovered = await asyncio.to_thread(self.spool.recover)
        if recovered:
            log.warning("recovered unfinished messages", extra={"count": recovered})
        while True:
            self._wake.clear()
            await self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.scan_interval)
