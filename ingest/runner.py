"""The runner: claims spooled messages, runs them through the processor, finishes them.

Messages are taken in spool order (priority, then arrival). Their analysis may run ahead:
up to ``ahead`` messages are analysed at once (in the worker pool, while this process
records), but they are recorded one at a time and in the order they were taken: the
SQLite store has one writer anyway, and order makes follow-ups land after their requests.
``ahead`` stays small (the pool's size plus one) so an emergency that arrives waits for
at most that many messages before its own analysis starts.

What can go wrong, and what becomes of the message (nothing acknowledged is dropped):

- a stage raises (or the spool file is unreadable): a failed attempt; it is retried after
  an exponential backoff (``runner.retry_base_seconds`` doubling, at most
  ``retry_max_seconds``) and moved to ``bad/`` after ``max_attempts``;
- its worker dies while analysing it: not an attempt (the pool replaces the worker, and no
  other message is touched); after ``max_worker_kills`` deaths it is quarantined in ``bad/``
  alone;
- its analysis passes the deadline or the worker's memory cap: it is recorded as a held
  case with that reason (``ingest.processor.held_context``), and the worker is replaced;
- the case store is unavailable (locked, I/O, connection): the record is retried in place
  with backoff for as long as it takes (``store_retry_*``), never counted against the
  message; a store error that is the message's own (integrity, data) is an attempt.

Everything moved to ``bad/`` raises an operator alert (``alerts.operator``), urgent items
first. The spool copy is deleted only after the case store committed, so a crash anywhere
means the message runs again, and the store's duplicate check makes that safe.
``health()`` is what ``/healthz`` and ``/readyz`` show.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import logging
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc as sa_exc

from config.settings import RunnerSettings
from core.context import MessageContext
from core.envelope import Envelope
from ingest.analysis import (
    DeadlineExceeded,
    MemoryLimitExceeded,
    PoolClosed,
    StageFailed,
    WorkerLost,
    describe_exit,
)
from ingest.processor import Processor, ProcessResult, held_context
from ingest.spool import Spool, SpoolCounts, SpoolItem, is_urgent

if TYPE_CHECKING:
    from alerts.operator import OperatorAlerts

log = logging.getLogger("le_intake.runner")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base * 2^(n-1)`` seconds before the n-th retry, capped."""

    base_seconds: float = 1.0
    max_seconds: float = 300.0
    store_base_seconds: float = 0.5
    store_max_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: RunnerSettings) -> RetryPolicy:
        return cls(
            settings.retry_base_seconds,
            settings.retry_max_seconds,
            settings.store_retry_base_seconds,
            settings.store_retry_max_seconds,
        )

    @staticmethod
    def _delay(base: float, cap: float, n: int) -> float:
        return min(cap, base * 2.0 ** min(max(n, 1) - 1, 30))

    def delay(self, n: int) -> float:
        return self._delay(self.base_seconds, self.max_seconds, n)

    def store_delay(self, n: int) -> float:
        return self._delay(self.store_base_seconds, self.store_max_seconds, n)


def store_unavailable(exc: BaseException) -> bool:
    """True for a case-store error that says the store, not the message, is in trouble:
    retried in place and never held against the message."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa_exc.OperationalError  # locked, busy, disk I/O, disk full, connection lost
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError  # the connection pool is exhausted
        | ConnectionError
        | TimeoutError,
    ) or (isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError))


@dataclass
class _Analysis:
    raw: bytes
    envelope: Envelope | None
    ctx: MessageContext | None
    error: BaseException | None


class Runner:
    def __init__(
        self,
        spool: Spool,
        processor: Processor,
        max_attempts: int,
        scan_interval: float,
        ahead: int = 1,
        *,
        retry: RetryPolicy | None = None,
        max_worker_kills: int = 2,
        operator: OperatorAlerts | None = None,
        ready_max_waiting_seconds: float = 0.0,
    ) -> None:
        self.spool = spool
        self.ahead = max(1, ahead)
        self.processor = processor
        self.max_attempts = max(1, max_attempts)
        self.scan_interval = scan_interval
        self.retry = retry or RetryPolicy()
        self.max_worker_kills = max(1, max_worker_kills)
        self.operator = operator
        self.ready_max_waiting_seconds = ready_max_waiting_seconds
        self._wake = asyncio.Event()
        # Ids known to wait in new/, smallest (most urgent, oldest) first. Channels in this
        # process add to it as they spool; a directory scan refills it at start-up and
        # whenever it runs dry, so items spooled by anyone else are found too.
        self._known: list[str] = []
        # Retried ids and when they may run again (monotonic). A restart forgets them:
        # after a restart every waiting item may run at once.
        self._not_before: dict[str, float] = {}
        self.processed = 0
        self.held = 0
        self.quarantined = 0
        self.running = False
        self.last_pass_error: str | None = None
        self.store_failing_since: float | None = None
        self.store_error: str | None = None

    @classmethod
    def from_settings(
        cls,
        settings: RunnerSettings,
        spool: Spool,
        processor: Processor,
        ahead: int,
        operator: OperatorAlerts | None = None,
    ) -> Runner:
        return cls(
            spool,
            processor,
            settings.max_attempts,
            settings.scan_interval_seconds,
            ahead,
            retry=RetryPolicy.from_settings(settings),
            max_worker_kills=settings.max_worker_kills,
            operator=operator,
            ready_max_waiting_seconds=settings.ready_max_waiting_seconds,
        )

    def notify(self, item_id: str | None = None) -> None:
        """Called by a channel after it spooled something."""
        if item_id is not None:
            heapq.heappush(self._known, item_id)
        self._wake.set()

    # -- claiming ----------------------------------------------------------------------

    def _due(self, item_id: str, now: float) -> bool:
        not_before = self._not_before.get(item_id)
        return not_before is None or not_before <= now

    async def _claim(self) -> SpoolItem | None:
        """The next item that is due, in spool order; None when none is."""
        now = time.monotonic()
        for rescan in (False, True):
            if rescan or not self._known:
                self._known = await asyncio.to_thread(self.spool.pending)
                heapq.heapify(self._known)
            while self._known:
                item_id = heapq.heappop(self._known)
                if not self._due(item_id, now):
                    continue
                item = await asyncio.to_thread(self.spool.claim, item_id)
                if item is not None:
                    self._not_before.pop(item_id, None)
                    return item
        return None

    def _retry_later(self, item_id: str, delay: float) -> None:
        self._not_before[item_id] = time.monotonic() + delay

    def next_retry_in(self) -> float | None:
        """Seconds until the earliest backed-off item may run, None when none waits."""
        if not self._not_before:
            return None
        return max(0.0, min(self._not_before.values()) - time.monotonic())

    # -- one message -------------------------------------------------------------------

    async def _analyse(self, item: SpoolItem) -> _Analysis:
        try:
            raw, envelope = await asyncio.to_thread(item.read)
        except Exception as exc:
            return _Analysis(b"", None, None, exc)
        try:
            ctx = await self.processor.analyse(raw, envelope)
        except (asyncio.CancelledError, PoolClosed):
            raise
        except Exception as exc:
            return _Analysis(raw, envelope, None, exc)
        return _Analysis(raw, envelope, ctx, None)

    async def _store(
        self, item: SpoolItem, raw: bytes, ctx: MessageContext
    ) -> ProcessResult | None:
        """Record in the case store; an unavailable store is waited out, not blamed."""
        tries = 0
        while True:
            # A fresh verdict list per try: a failed transaction must not leave the
            # verdicts it appended behind for the next one.
            attempt = dataclasses.replace(ctx, verdicts=list(ctx.verdicts))
            try:
                result = await self.processor.record(raw, attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not store_unavailable(exc):
                    await self._failed(item, exc, "the case store refused it")
                    return None
                tries += 1
                if self.store_failing_since is None:
                    self.store_failing_since = time.time()
                self.store_error = type(exc).__name__
                delay = self.retry.store_delay(tries)
                log.warning(
                    "case store unavailable; the record will be retried",
                    extra={
                        "spool_id": item.id,
                        "error": type(exc).__name__,
                        "tries": tries,
                        "retry_in": delay,
                    },
                )
                await asyncio.sleep(delay)
                continue
            self.store_failing_since = None
            self.store_error = None
            await asyncio.to_thread(self.spool.finish, item)
            self.processed += 1
            return result

    async def _failed(self, item: SpoolItem, exc: BaseException, what: str) -> None:
        """A failed attempt: back off and retry, or quarantine after ``max_attempts``."""
        attempts = item.attempts() + 1
        if isinstance(exc, StageFailed):
            name, detail = exc.error_type, exc.detail
        else:
            name, detail = type(exc).__name__, "".join(traceback.format_exception(exc))
        if attempts >= self.max_attempts:
            await self._quarantine(
                item,
                "failed_attempts",
                f"{what}: failed {attempts} times, last with {name}",
                detail,
                attempts,
            )
            return
        delay = self.retry.delay(attempts)
        new_id = await asyncio.to_thread(self.spool.requeue, item, attempts)
        self._retry_later(new_id, delay)
        log.error(
            "message failed; it will be retried",
            extra={"spool_id": item.id, "error": name, "attempts": attempts, "retry_in": delay},
        )

    async def _worker_lost(self, item: SpoolItem, exc: WorkerLost) -> None:
        """The worker died under this message: counted apart from attempts, and only
        against this message; quarantined alone once it has killed ``max_worker_kills``."""
        kills = item.kills() + 1
        if kills >= self.max_worker_kills:
            await self._quarantine(
                item,
                "worker_killed",
                f"the analysis worker died {kills} times while analysing it "
                f"(last: {describe_exit(exc.exitcode)})",
                str(exc),
            )
            return
        new_id = await asyncio.to_thread(self.spool.requeue, item, None, kills)
        self._retry_later(new_id, self.retry.delay(1))
        log.warning(
            "analysis worker died under a message; it will run again",
            extra={"spool_id": item.id, "worker_deaths": kills, "error": str(exc)},
        )

    async def _quarantine(
        self, item: SpoolItem, code: str, reason: str, detail: str, attempts: int | None = None
    ) -> None:
        bad_id = await asyncio.to_thread(
            self.spool.quarantine, item, reason, detail, code, attempts
        )
        self.quarantined += 1
        log.error(
            "message moved to bad/",
            extra={"spool_id": bad_id, "code": code, "reason": reason, "urgent": is_urgent(bad_id)},
        )
        if self.operator is not None:
            self.operator.quarantined(bad_id, code, reason)

    async def _finish_one(self, item: SpoolItem, analysis: asyncio.Future[_Analysis]) -> None:
        done = await analysis
        error = done.error
        if error is None and done.ctx is not None:
            await self._store(item, done.raw, done.ctx)
            return
        if isinstance(error, WorkerLost):
            await self._worker_lost(item, error)
            return
        if isinstance(error, DeadlineExceeded | MemoryLimitExceeded) and done.envelope:
            sentence = (
                f"The message could not be analysed: {error}. Held for staff to read and "
                "verify by hand; its text was not extracted."
            )
            log.warning(
                "analysis interrupted; the message is recorded as held",
                extra={"spool_id": item.id, "code": error.code},
            )
            held = await asyncio.to_thread(
                held_context, done.raw, done.envelope, error.code, sentence
            )
            if await self._store(item, done.raw, held) is not None:
                self.held += 1
            return
        assert error is not None
        await self._failed(item, error, "analysis")

    # -- the loop ----------------------------------------------------------------------

    async def drain(self) -> int:
        """Process everything that is due now; returns how many items were taken."""
        taken = 0
        inflight: deque[tuple[SpoolItem, asyncio.Future[_Analysis]]] = deque()
        cancelled = False
        try:
            while True:
                while len(inflight) < self.ahead and (item := await self._claim()) is not None:
                    inflight.append((item, asyncio.ensure_future(self._analyse(item))))
                    taken += 1
                if not inflight:
                    return taken
                item, analysis = inflight[0]
                await self._finish_one(item, analysis)
                inflight.popleft()
        except (asyncio.CancelledError, PoolClosed):
            cancelled = True
            raise
        finally:
            for _, analysis in inflight:
                analysis.cancel()
            if not cancelled:
                # The pass failed (a spool or store operation raised): what it claimed goes
                # back to new/ at once rather than waiting in cur/ for the next start.
                for item, _ in inflight:
                    with contextlib.suppress(OSError):
                        await asyncio.to_thread(self.spool.release, item)
            # Cancelled (shutdown): analyses still running are abandoned; their items stay
            # claimed and are recovered at the next start.

    async def run_forever(self) -> None:
        self.running = True
        operator_task = None
        try:
            recovered = await asyncio.to_thread(self.spool.recover)
            if recovered:
                log.warning("recovered unfinished messages", extra={"count": recovered})
            if self.operator is not None:
                await self.operator.load_backlog()
                operator_task = asyncio.create_task(self.operator.run_forever(), name="operator")
            failures = 0
            while True:
                self._wake.clear()
                try:
                    await self.drain()
                except (asyncio.CancelledError, PoolClosed):
                    raise
                except Exception as exc:
                    # Never a silent stop: log, show it on /readyz, back off, go on.
                    failures += 1
                    self.last_pass_error = f"{type(exc).__name__} at {time.time():.0f}"
                    log.exception("runner pass failed; retrying", extra={"failures": failures})
                    await asyncio.sleep(self.retry.delay(failures))
                    continue
                failures = 0
                self.last_pass_error = None
                timeout = self.scan_interval
                retry_in = self.next_retry_in()
                if retry_in is not None:
                    timeout = min(timeout, retry_in + 0.01)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        finally:
            self.running = False
            if operator_task is not None:
                operator_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await operator_task

    # -- health ------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """What /healthz and /readyz show; ``ready`` False means 503."""
        problems: list[str] = []
        try:
            counts = await asyncio.to_thread(self.spool.counts)
        except OSError as exc:
            problems.append(f"the spool cannot be read ({type(exc).__name__})")
            counts = SpoolCounts(0, 0, 0, None, None)
        pool = self.processor.analyser.status()
        if pool.get("broken"):
            problems.append(
                "the analysis pool has no live worker"
                + (f" ({pool['last_error']})" if pool.get("last_error") else "")
            )
        elif not pool.get("ready", True):
            problems.append("the analysis pool is not ready")
        if not self.running:
            problems.append("the runner is not running")
        if self.last_pass_error:
            problems.append(f"the runner's last pass failed ({self.last_pass_error})")
        if self.store_failing_since is not None:
            problems.append(
                f"the case store has been unavailable for "
                f"{time.time() - self.store_failing_since:.0f} s ({self.store_error})"
            )
        oldest = counts.oldest_waiting_seconds
        limit = self.ready_max_waiting_seconds
        if limit > 0 and oldest is not None and oldest > limit:
            problems.append(f"the oldest waiting message has waited {oldest:.0f} s")
        return {
            "status": "ok" if not problems else "not_ready",
            "ready": not problems,
            "problems": problems,
            "pool": pool,
            "store": {
                "available": self.store_failing_since is None,
                "failing_seconds": None
                if self.store_failing_since is None
                else round(time.time() - self.store_failing_since, 1),
                "last_error": self.store_error,
            },
            "spool": {
                "waiting": counts.waiting,
                "in_progress": counts.in_progress,
                "bad": counts.bad,
                "retrying": len(self._not_before),
                "oldest_waiting_seconds": _round(counts.oldest_waiting_seconds),
                "oldest_urgent_waiting_seconds": _round(counts.oldest_urgent_waiting_seconds),
            },
            "runner": {
                "running": self.running,
                "processed": self.processed,
                "held_after_interruption": self.held,
                "quarantined": self.quarantined,
            },
            "operator_alerts": self.operator.status() if self.operator is not None else None,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
