"""Where the pipeline's CPU work runs: inline, or in supervised worker processes.

Parsing, NLP and fax OCR are CPU-bound; run on the server's event loop they would stall
SMTP acceptance. ``PoolAnalyser`` runs them in worker processes that build their stages once
(spaCy and the suffix list load at start, not per message). ``InlineAnalyser`` runs them in
the calling thread, for replay and tests that want one process.

The pool is not a ``ProcessPoolExecutor``: when one of its workers dies, an executor breaks
for good and fails every queued call with ``BrokenProcessPool``, so one OOM-killed fax once
sent every later message to ``bad/``. Here each worker has its own pipe and runs one message
at a time, so the supervisor always knows which message a worker was analysing:

- a worker that dies (signal, exit) fails only the message it had, with ``WorkerLost``, and
  is replaced; the runner counts the death against that message alone;
- a message still running after ``runner.analysis_deadline_seconds`` gets its worker killed
  and replaced, and fails with ``DeadlineExceeded`` (the runner records it as held);
- a worker that hits its address-space cap (``runner.worker_memory_limit_mb``, applied with
  ``RLIMIT_AS`` in the worker before its stages load) reports ``MemoryLimitExceeded`` and
  exits, and is replaced;
- a stage that raises reports ``StageFailed`` (the worker lives on);
- a worker that cannot start (its stages fail to load, it dies at start-up) is retried
  with backoff; meanwhile messages wait, and ``status()`` says the pool is broken.

Each worker writes temporary files (Tesseract's page images) to its own folder under
``<data_dir>/tmp/ocr``: removed when the worker is replaced, and the whole folder is swept
when the pool starts, so a killed worker leaves nothing behind for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import resource
import secrets
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_ready
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol, TypeVar

from config.settings import Settings
from core.context import MessageContext
from core.envelope import Envelope
from ingest.pipeline import analyse, build_stages

log = logging.getLogger("le_intake.analysis")

T = TypeVar("T")


class AnalysisInterrupted(Exception):
    """The analysis did not finish for a reason of the worker, not a stage's verdict."""

    code = "analysis_interrupted"


class WorkerLost(AnalysisInterrupted):
    """The worker process died while it analysed this message."""

    code = "worker_lost"

    def __init__(self, exitcode: int | None) -> None:
        self.exitcode = exitcode
        super().__init__(f"the analysis worker died ({describe_exit(exitcode)})")


class DeadlineExceeded(AnalysisInterrupted):
    """The message was still being analysed at the deadline; its worker was replaced."""

    code = "analysis_deadline"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            f"analysis did not finish within {seconds:g} s; the worker was stopped and replaced"
        )


class MemoryLimitExceeded(AnalysisInterrupted):
    """Analysing this message ran out of the worker's memory cap."""

    code = "analysis_memory_limit"

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__("analysis ran out of the worker's memory limit")


class StageFailed(Exception):
    """A stage raised inside a worker. The exception itself stays there (it may not
    pickle); ``error_type`` is its class name, ``detail`` the worker's traceback."""

    def __init__(self, error_type: str, detail: str) -> None:
        self.error_type = error_type
        self.detail = detail
        super().__init__(f"{error_type} in an analysis stage")


class PoolClosed(Exception):
    pass


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {-exitcode} ({signal.Signals(-exitcode).name})"
        return f"signal {-exitcode}"
    return f"exit code {exitcode}"


class Analyser(Protocol):
    async def analyse(self, raw: bytes, envelope: Envelope) -> MessageContext: ...

    def close(self) -> None: ...

    def status(self) -> dict[str, Any]: ...


class InlineAnalyser:
    """Stages in the calling thread: no deadline can stop them (there is no process to
    replace), but the fax caps still apply, inside the fax stage."""

    def __init__(self, settings: Settings) -> None:
        self.stages = build_stages(settings)

    async def analyse(self, raw: bytes, envelope: Envelope) -> MessageContext:
        try:
            return analyse(raw, envelope, self.stages)
        except MemoryError as exc:
            raise MemoryLimitExceeded(type(exc).__name__) from None

    def close(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        return {"mode": "inline", "broken": False, "ready": True}


# -- the worker process ------------------------------------------------------------------


def apply_memory_limit(limit_bytes: int) -> None:
    """Cap this process's address space (inherited by Tesseract, which it starts)."""
    if limit_bytes <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))


def _worker_main(conn: Connection, settings_json: str, tmp_dir: str, memory_limit: int) -> None:
    """One analysis worker: set its limits, build the stages, then one message at a time.

    Replies are ("ok", ctx), ("error", type, traceback), ("memory", traceback) (then it
    exits: a heap that ran out is not trusted with the next message) or ("info", dict).
    Ctrl-C reaches the whole process group; stopping is the parent's decision.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        apply_memory_limit(memory_limit)
        Path(tmp_dir).mkdir(parents=True, exist_ok=True)
        # pytesseract writes each page image (and Tesseract its output) to tempfile's
        # directory: this worker's own folder, removed when the worker goes.
        tempfile.tempdir = tmp_dir
        stages = build_stages(Settings.model_validate_json(settings_json))
    except BaseException as exc:
        with contextlib.suppress(Exception):
            conn.send(("init_failed", "".join(traceback.format_exception_only(exc)).strip()))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if task[0] == "stop":
            return
        # Received: from now on, a death is this task's (see _roundtrip).
        conn.send(("started",))
        if task[0] == "info":
            conn.send(("info", _worker_info()))
            continue
        _, raw, envelope = task
        del task
        try:
            ctx = analyse(raw, envelope, stages)
        except MemoryError:
            del raw
            with contextlib.suppress(Exception):
                conn.send(("memory", traceback.format_exc()))
            return
        except Exception as exc:
            conn.send(("error", type(exc).__name__, traceback.format_exc()))
            continue
        del raw
        try:
            conn.send(("ok", ctx))
        except MemoryError:
            with contextlib.suppress(Exception):
                conn.send(("memory", traceback.format_exc()))
            return
        except Exception as exc:  # the result did not pickle: a stage left something odd
            conn.send(("error", type(exc).__name__, traceback.format_exc()))


def _worker_info() -> dict[str, Any]:
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return {
        "pid": os.getpid(),
        "tmp_dir": tempfile.gettempdir(),
        "memory_limit_bytes": None if soft == resource.RLIM_INFINITY else soft,
    }


# -- the supervisor ----------------------------------------------------------------------


@dataclass
class _Worker:
    slot: int
    process: BaseProcess
    conn: Connection
    tmp_dir: Path
    pid: int
    started_at: float = field(default_factory=time.monotonic)


class WorkerStartError(Exception):
    pass


@dataclass
class _Task:
    payload: tuple[Any, ...]
    future: asyncio.Future[tuple[Any, ...]]


def _fail(future: asyncio.Future[Any], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)


# An idle worker acknowledges a task at once; one that has not within this time is dead
# or wedged, and the task was never started.
START_ACK_SECONDS = 30.0


def _receive(worker: _Worker, timeout: float | None) -> tuple[Any, ...] | None:
    """The worker's next reply; ("died", code) if it died first; None on timeout."""
    ready = wait_ready([worker.conn, worker.process.sentinel], timeout=timeout)
    if worker.conn in ready:
        try:
            reply: tuple[Any, ...] = worker.conn.recv()
        except (EOFError, OSError):
            return ("died", _exitcode(worker.process))
        except Exception as exc:  # a reply that does not unpickle
            return ("error", type(exc).__name__, traceback.format_exc())
        return reply
    if ready:
        return ("died", _exitcode(worker.process))
    return None


def _roundtrip(worker: _Worker, task: tuple[Any, ...], deadline: float | None) -> tuple[Any, ...]:
    """Blocking: one task to the worker and its reply, or what became of the worker:
    ("unstarted", exit code) when it died before it took the task (a worker killed while
    idle: the task is not to blame), ("died", exit code) when it died running it, or
    ("deadline",) after killing it at the deadline."""
    try:
        worker.conn.send(task)
    except (OSError, ValueError):
        return ("unstarted", _exitcode(worker.process))
    ack = _receive(worker, START_ACK_SECONDS)
    if ack is None or ack[0] != "started":
        with contextlib.suppress(OSError):
            worker.process.kill()
        return ("unstarted", _exitcode(worker.process))
    reply = _receive(worker, deadline)
    if reply is not None:
        return reply
    with contextlib.suppress(OSError):
        worker.process.kill()
    return ("deadline",)


def _in_daemon_thread(fn: Callable[[], T]) -> asyncio.Future[T]:
    """Run a blocking call in a daemon thread: a wait on a worker must never keep the
    interpreter from exiting (executor threads are joined at exit, before multiprocessing
    gets to terminate the workers they wait on)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, None, exc)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(settle, result, None)

    threading.Thread(target=run, name="le-intake-analysis-wait", daemon=True).start()
    return future


def _stop_process(process: BaseProcess, conn: Connection | None, gentle: bool) -> None:
    """End a worker: ask it to stop when ``gentle`` (it is idle), else kill it."""
    if gentle and conn is not None and process.is_alive():
        with contextlib.suppress(OSError, ValueError):
            conn.send(("stop",))
        process.join(2)
    if process.is_alive():
        with contextlib.suppress(OSError):
            process.kill()
        process.join(5)
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()
    with contextlib.suppress(ValueError):
        process.close()


def _exitcode(process: BaseProcess) -> int | None:
    with contextlib.suppress(ValueError):
        process.join(2)
        return process.exitcode
    return None


class PoolAnalyser:
    """Worker processes supervised one by one (see the module docstring)."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.workers = max(1, workers)
        runner = settings.runner
        self.deadline = runner.analysis_deadline_seconds or None
        self.memory_limit = runner.worker_memory_limit_mb * 1024 * 1024
        self.start_timeout = runner.worker_start_timeout_seconds
        self.tmp_root = Path(settings.data_dir) / "tmp" / "ocr"
        self._settings_json = settings.model_dump_json()
        self._mp = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()  # close() may run in another thread
        self._live: dict[int, _Worker] = {}
        self._busy: set[int] = set()
        self._spawning: dict[int, BaseProcess] = {}
        # Messages waiting for a worker; each worker's dispatcher thread takes the next one
        # the moment its worker is free, without a trip through the event loop.
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._retiring: set[asyncio.Task[None]] = set()
        self._slot_tasks: dict[int, asyncio.Task[None]] = {}
        self._failures: dict[int, int] = {}
        self._closed = False
        self._swept = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.started = 0
        self.deaths = 0
        self.deadlines = 0
        self.memory_hits = 0
        self.start_failures = 0
        self.last_error: str | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def _ensure_slots(self) -> None:
        if self._closed:
            raise PoolClosed("the analysis pool is closed")
        self._loop = asyncio.get_running_loop()
        for slot in range(self.workers):
            if slot in self._live or slot in self._slot_tasks:
                continue
            task = asyncio.get_running_loop().create_task(
                self._fill(slot), name=f"analysis-worker-{slot}"
            )
            self._slot_tasks[slot] = task

    async def warm_up(self) -> None:
        """Start the workers now, so the first message does not pay for spaCy's load.
        Returns when each slot has a worker or has failed its first start (the failure
        is logged and shown by ``status()``; the slot keeps retrying)."""
        self._ensure_slots()
        deadline = time.monotonic() + self.start_timeout + 5
        while time.monotonic() < deadline:
            if all(slot in self._live or self._failures.get(slot) for slot in range(self.workers)):
                return
            await asyncio.sleep(0.05)

    def _sweep(self) -> None:
        """Leftovers of workers that were killed (their page images) go at pool start."""
        shutil.rmtree(self.tmp_root, ignore_errors=True)
        self.tmp_root.mkdir(parents=True, exist_ok=True)

    def _spawn(self, slot: int) -> _Worker:
        """Blocking: start one worker and wait until its stages are built."""
        with self._lock:
            if not self._swept:
                self._sweep()
                self._swept = True
        tmp_dir = self.tmp_root / f"w{slot}-{secrets.token_hex(4)}"
        parent, child = self._mp.Pipe(duplex=True)
        process = self._mp.Process(
            target=_worker_main,
            args=(child, self._settings_json, str(tmp_dir), self.memory_limit),
            name=f"le-intake-analysis-{slot}",
            daemon=True,
        )
        with self._lock:
            if self._closed:
                parent.close()
                child.close()
                raise WorkerStartError("the pool is closing")
            try:
                process.start()
            except Exception as exc:  # fork/exec failed, no memory, too many processes
                parent.close()
                child.close()
                raise WorkerStartError(f"could not start a process: {exc}") from exc
            self._spawning[slot] = process
        child.close()
        try:
            error = "start-up timed out"
            ready = wait_ready([parent, process.sentinel], timeout=self.start_timeout)
            if parent in ready:
                try:
                    reply = parent.recv()
                except (EOFError, OSError):
                    reply = None
                if reply is not None and reply[0] == "ready":
                    return _Worker(slot, process, parent, tmp_dir, int(reply[1]))
                error = (
                    f"stages failed to load: {reply[1]}"
                    if reply is not None
                    else f"died during start-up ({describe_exit(_exitcode(process))})"
                )
            elif ready:
                error = f"died during start-up ({describe_exit(_exitcode(process))})"
            _stop_process(process, parent, gentle=False)
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise WorkerStartError(error)
        finally:
            with self._lock:
                self._spawning.pop(slot, None)

    async def _fill(self, slot: int) -> None:
        """Give ``slot`` a live worker, retrying failed starts with backoff."""
        try:
            while not self._closed:
                try:
                    worker = await _in_daemon_thread(lambda: self._spawn(slot))
                except Exception as exc:  # WorkerStartError, or anything unforeseen:
                    # a slot must never stop refilling silently
                    if self._closed:
                        return
                    failures = self._failures.get(slot, 0) + 1
                    self._failures[slot] = failures
                    self.start_failures += 1
                    self.last_error = f"worker {slot}: {exc}"
                    delay = min(60.0, 2.0 ** (failures - 1))
                    log.error(
                        "analysis worker failed to start; retrying",
                        extra={"slot": slot, "error": str(exc)[:500], "retry_in": delay},
                    )
                    await asyncio.sleep(delay)
                    continue
                with self._lock:
                    if self._closed:
                        _stop_process(worker.process, worker.conn, gentle=True)
                        return
                    self._live[slot] = worker
                self._failures.pop(slot, None)
                self.started += 1
                log.info("analysis worker ready", extra={"slot": slot, "pid": worker.pid})
                threading.Thread(
                    target=self._serve, args=(worker,), name="le-intake-analysis", daemon=True
                ).start()
                return
        finally:
            self._slot_tasks.pop(slot, None)

    async def _retire(self, worker: _Worker, why: str) -> None:
        """Forget a worker that died or was killed, clean up after it, start another."""
        with self._lock:
            if self._live.get(worker.slot) is not worker:
                return
            del self._live[worker.slot]
        self._busy.discard(worker.pid)
        log.warning("analysis worker replaced", extra={"pid": worker.pid, "why": why})
        await _in_daemon_thread(lambda: self._cleanup(worker))
        if not self._closed:
            self._ensure_slots()

    @staticmethod
    def _cleanup(worker: _Worker) -> None:
        _stop_process(worker.process, worker.conn, gentle=False)
        shutil.rmtree(worker.tmp_dir, ignore_errors=True)

    def close(self) -> None:
        """Stop every worker (idle ones are asked, busy ones killed). Thread-safe."""
        with self._lock:
            self._closed = True
            workers = list(self._live.values())
            self._live.clear()
            spawning = list(self._spawning.values())
            tasks = list(self._slot_tasks.values())
        for task in tasks:
            self._post(task.cancel)
        for _ in workers:
            self._tasks.put(None)  # each dispatcher thread ends on one
        while True:  # what waits for a worker now waits for nothing: tell it
            try:
                waiting = self._tasks.get_nowait()
            except queue.Empty:
                break
            if waiting is not None:
                self._post(_fail, waiting.future, PoolClosed("the analysis pool is closed"))
        for worker in workers:
            _stop_process(worker.process, worker.conn, gentle=worker.pid not in self._busy)
            shutil.rmtree(worker.tmp_dir, ignore_errors=True)
        for process in spawning:
            with contextlib.suppress(OSError, ValueError):
                process.kill()

    # -- work ----------------------------------------------------------------------------

    def _post(self, callback: Callable[..., object], *args: object) -> None:
        """Run ``callback`` on the pool's event loop, from any thread."""
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self._loop.call_soon_threadsafe(callback, *args)

    def _serve(self, worker: _Worker) -> None:
        """A worker's dispatcher thread: one message at a time, the next taken as soon as
        the worker is free. Ends when the worker does (the loop then replaces it)."""
        while True:
            task = self._tasks.get()
            if task is None or self._closed:
                if task is not None:
                    self._post(_fail, task.future, PoolClosed("the analysis pool is closed"))
                return
            if task.future.done():  # its caller gave up (shutdown)
                continue
            self._busy.add(worker.pid)
            try:
                reply = _roundtrip(worker, task.payload, self.deadline)
            finally:
                self._busy.discard(worker.pid)
            if reply[0] == "unstarted":
                # Died while idle (killed from outside): the message is not to blame, and
                # goes back for the replacement to take.
                self._tasks.put(task)
                self._post(self._idle_death, worker)
                return
            self._post(self._settle, worker, task, reply)
            if reply[0] not in ("ok", "error", "info"):
                return

    def _replace(self, worker: _Worker, why: str) -> None:
        task = asyncio.get_running_loop().create_task(self._retire(worker, why))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _idle_death(self, worker: _Worker) -> None:
        self.deaths += 1
        self._replace(worker, f"died while idle ({describe_exit(_exitcode(worker.process))})")

    def _settle(self, worker: _Worker, task: _Task, reply: tuple[Any, ...]) -> None:
        kind = reply[0]
        if kind not in ("ok", "error", "info"):
            if kind == "memory":
                self.memory_hits += 1
                why = "memory limit"
            elif kind == "deadline":
                self.deadlines += 1
                why = "analysis deadline"
            elif self._closed:
                why = "pool closed"
            else:
                self.deaths += 1
                why = f"died ({describe_exit(reply[1])})"
            self._replace(worker, why)
        if task.future.done():
            return
        if self._closed and kind not in ("ok", "error", "info"):
            task.future.set_exception(PoolClosed("the analysis pool is closed"))
        else:
            task.future.set_result(reply)

    async def _submit(self, payload: tuple[Any, ...]) -> tuple[Any, ...]:
        self._ensure_slots()
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._tasks.put(_Task(payload, future))
        return await future

    async def analyse(self, raw: bytes, envelope: Envelope) -> MessageContext:
        reply = await self._submit(("analyse", raw, envelope))
        kind = reply[0]
        if kind == "ok":
            ctx: MessageContext = reply[1]
            return ctx
        if kind == "error":
            raise StageFailed(reply[1], reply[2])
        if kind == "memory":
            raise MemoryLimitExceeded(reply[1])
        if kind == "deadline":
            assert self.deadline is not None
            raise DeadlineExceeded(self.deadline)
        raise WorkerLost(reply[1])

    async def probe(self) -> dict[str, Any]:
        """What one worker reports of itself (pid, temp folder, memory cap)."""
        reply = await self._submit(("info",))
        if reply[0] != "info":
            raise WorkerLost(reply[1] if len(reply) > 1 else None)
        info: dict[str, Any] = reply[1]
        return info

    # -- health --------------------------------------------------------------------------

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._live.values())

    def status(self) -> dict[str, Any]:
        alive = len(self._live)
        failing = sorted(slot for slot, n in self._failures.items() if n)
        # No worker and the last start failed: nothing will be analysed until one starts.
        # No worker while a replacement loads (a few seconds after a death) is not broken.
        broken = self._closed or (alive == 0 and bool(failing))
        starting = bool(self._slot_tasks)
        return {
            "mode": "processes",
            "workers": self.workers,
            "alive": alive,
            "busy": len(self._busy),
            "pids": self.pids(),
            "failing_slots": failing,
            "broken": broken,
            "starting": starting,
            "ready": not broken and (alive > 0 or starting),
            "closed": self._closed,
            "started": self.started,
            "restarts": max(0, self.started - self.workers),
            "worker_deaths": self.deaths,
            "deadlines": self.deadlines,
            "memory_limit_hits": self.memory_hits,
            "start_failures": self.start_failures,
            "last_error": self.last_error,
            "deadline_seconds": self.deadline,
            "memory_limit_mb": self.memory_limit // (1024 * 1024) or None,
        }


def make_analyser(settings: Settings) -> Analyser:
    if settings.runner.workers > 0:
        return PoolAnalyser(settings, settings.runner.workers)
    return InlineAnalyser(settings)
