"""Processing never stops silently: worker deaths, deadlines, memory caps, backoff, a locked
store, health, and the operator alert about anything moved to ``spool/bad/``.

Real parts throughout: worker processes (killed with SIGKILL, as the OOM killer would),
a real SMTP listener and client on loopback, real SQLite (locked by a second connection),
aiohttp serving /healthz and /readyz, and a local webhook receiver standing in for the pager.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import event, select
from sqlalchemy import exc as sa_exc

from alerts.operator import OperatorAlerts
from cases.models import MessageRecord
from config.settings import Settings
from core.envelope import Envelope
from ingest.analysis import PoolAnalyser, WorkerLost
from ingest.processor import held_context
from ingest.runner import RetryPolicy, store_unavailable
from ingest.smtp import start_smtp_server
from ingest.spool import ENVELOPE_HEADER, Spool
from le_intake.app import App, build_app
from le_intake.http import make_http_app
from tests.conftest import ENVELOPE, LE_SENDER, REQUEST_ADDRESS, make_settings, request_message
from tests.test_fax_bombs import BIG_PAGE_PDF, gateway_fax

# ~1.2 MB of request text: a second or more of analysis, long enough to kill a worker in.
SLOW_BODY = "Please preserve records for @target_account and user 12345. " * 20000
# Some 40,000 phone numbers: about 1.8 s of analysis here, six times the test deadline below,
# while an ordinary request takes some 20 ms.
DEADLINE_BODY = " ".join(f"call +1 (512) 555-{i:04d} now" for i in range(10000)) * 4
WAIT = 60.0  # upper bound of any wait below: a hang fails the test instead of the suite


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Hooks:
    """The pager: a local webhook receiver."""

    posts: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    async def handle(self, request: web.Request) -> web.Response:
        if self.fail:
            return web.Response(status=503)
        self.posts.append(await request.json())
        return web.Response(status=204)


@dataclass
class Desk:
    app: App
    smtp_port: int
    http: str
    hooks: Hooks

    async def send(self, raw: bytes, mail_from: str = LE_SENDER) -> None:
        import smtplib

        def go() -> None:
            with smtplib.SMTP("127.0.0.1", self.smtp_port, timeout=30) as client:
                client.sendmail(mail_from, [REQUEST_ADDRESS], raw)

        await asyncio.to_thread(go)

    async def health(self, path: str = "/readyz") -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.get(self.http + path) as response:
            return response.status, await response.json()

    async def stored(self) -> dict[str, int]:
        async with self.app.store.sessions() as session:
            rows = (await session.execute(select(MessageRecord.message_id))).scalars().all()
        counts: dict[str, int] = {}
        for message_id in rows:
            counts[str(message_id)] = counts.get(str(message_id), 0) + 1
        return counts

    async def reasons(self, message_id: str) -> list[str]:
        [row] = await self.app.store.messages_by_message_id(message_id)
        return list(row.reasons)


@contextlib.asynccontextmanager
async def open_desk(settings_for: Callable[[str], Settings]) -> AsyncIterator[Desk]:
    hooks = Hooks()
    receiver = web.Application()
    receiver.router.add_post("/hook", hooks.handle)
    receiver_runner = web.AppRunner(receiver)
    await receiver_runner.setup()
    receiver_site = web.TCPSite(receiver_runner, "127.0.0.1", 0)
    await receiver_site.start()
    hook = f"http://127.0.0.1:{receiver_site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    settings = settings_for(hook)
    app = await build_app(settings)
    http_runner = web.AppRunner(
        make_http_app(settings, app.store, app.alert_book, app.alerts, health=app.runner.health)
    )
    await http_runner.setup()
    site = web.TCPSite(http_runner, "127.0.0.1", 0)
    await site.start()
    http = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    smtp = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
    try:
        yield Desk(app, smtp.sockets[0].getsockname()[1], http, hooks)
    finally:
        smtp.close()
        await smtp.wait_closed()
        await http_runner.cleanup()
        await app.close()
        await receiver_runner.cleanup()


def pool_settings(tmp_path: Path, hook: str, **runner: object) -> Settings:
    return make_settings(
        tmp_path,
        runner={
            "workers": 1,
            "retry_base_seconds": 0.05,
            "retry_max_seconds": 0.2,
            **runner,
        },
        alert_webhook_url=hook,
    )


def worker_pid(app: App) -> int:
    assert isinstance(app.analyser, PoolAnalyser)
    [pid] = app.analyser.pids()
    return pid


async def kill_when_busy(app: App) -> int:
    """SIGKILL the worker as soon as it has a message (the OOM killer's way)."""
    assert isinstance(app.analyser, PoolAnalyser)
    pool = app.analyser

    async def busy() -> bool:
        return bool(pool.status()["busy"])

    await eventually(busy, "the worker to take a message")
    pid = worker_pid(app)
    os.kill(pid, signal.SIGKILL)
    return pid


async def pool_ready(app: App) -> bool:
    assert isinstance(app.analyser, PoolAnalyser)
    return bool(app.analyser.pids())


# -- worker deaths ------------------------------------------------------------------------


@pytest.fixture
async def pool_desk(tmp_path: Path) -> AsyncIterator[Desk]:
    stale = tmp_path / "tmp" / "ocr" / "w0-dead" / "tess_left_behind_input.PNG"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"page image of a killed worker")
    async with open_desk(lambda hook: pool_settings(tmp_path, hook)) as desk:
        yield desk


async def test_worker_has_its_memory_cap_and_temp_folder_and_old_temp_files_are_swept(
    pool_desk: Desk, tmp_path: Path
) -> None:
    assert isinstance(pool_desk.app.analyser, PoolAnalyser)
    info = await pool_desk.app.analyser.probe()
    assert info["memory_limit_bytes"] == 2048 * 1024 * 1024
    assert Path(info["tmp_dir"]).parent == tmp_path / "tmp" / "ocr"
    assert not (tmp_path / "tmp" / "ocr" / "w0-dead").exists()


async def test_a_killed_worker_is_replaced_and_blames_only_its_own_message(
    pool_desk: Desk,
) -> None:
    desk = pool_desk
    runner = asyncio.ensure_future(desk.app.runner.run_forever())
    try:
        await eventually(lambda: _ready(desk, True), "/readyz to answer 200")
        first_pid = worker_pid(desk.app)
        await desk.send(request_message(body=SLOW_BODY, message_id="<slow@fbi.gov>"))
        await desk.send(request_message(message_id="<next@fbi.gov>"))
        assert await kill_when_busy(desk.app) == first_pid

        async def both() -> bool:
            stored = await desk.stored()
            return stored.get("<slow@fbi.gov>") == 1 and stored.get("<next@fbi.gov>") == 1

        # The message behind it was not touched; the killed one ran again after its backoff.
        await eventually(both, "both messages recorded")
        assert worker_pid(desk.app) != first_pid
        assert desk.app.spool.bad_items() == []
        status, report = await desk.health()
        assert status == 200
        assert report["pool"]["worker_deaths"] == 1
        assert report["pool"]["restarts"] == 1
        assert report["spool"]["bad"] == 0
        assert report["spool"]["waiting"] == 0
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def _drained_to(desk: Desk, expected: dict[str, int]) -> bool:
    await desk.app.runner.drain()
    stored = await desk.stored()
    return all(stored.get(k) == v for k, v in expected.items())


async def test_a_message_that_kills_its_worker_twice_is_quarantined_alone_with_an_alert(
    pool_desk: Desk,
) -> None:
    desk = pool_desk
    subject = "Subpoena for subscriber information (case 4471)"
    await desk.send(request_message(body=SLOW_BODY, message_id="<killer@fbi.gov>", subject=subject))
    for _ in range(2):
        await eventually(lambda: pool_ready(desk.app), "a worker")
        drain = asyncio.ensure_future(desk.app.runner.drain())
        await kill_when_busy(desk.app)
        await drain
        await asyncio.sleep(0.25)  # past the retry backoff
    [bad] = desk.app.spool.bad_items()
    error = (desk.app.spool.bad / f"{bad.id}.error.txt").read_text()
    assert "code: worker_killed" in error
    assert "signal 9 (SIGKILL)" in error
    assert b"Message-ID: <killer@fbi.gov>" in bad.read()[0]  # the message itself is kept
    # The pool is whole again: the next message goes through.
    await desk.send(request_message(message_id="<after@fbi.gov>"))
    await eventually(lambda: _drained_to(desk, {"<after@fbi.gov>": 1}), "the next message")
    assert "<killer@fbi.gov>" not in await desk.stored()

    # The operator alert: to the pager, with the spool id and why; no body, no subject.
    assert desk.app.runner.operator is not None
    assert await desk.app.runner.operator.deliver_due() == 1
    [post] = desk.hooks.posts
    alert = post["alert"]
    assert alert["kind"] == "operator"
    assert alert["spool_id"] == bad.id
    assert alert["reason_code"] == "worker_killed"
    assert alert["severity"] == "error"
    text = json.dumps(post)
    assert subject not in text
    assert "target_account" not in text
    assert (desk.app.spool.bad / f"{bad.id}.alerted.txt").exists()
    _, report = await desk.health()
    assert report["spool"]["bad"] == 1
    assert report["pool"]["worker_deaths"] == 2


# -- deadline and memory cap ----------------------------------------------------------------


@pytest.fixture
async def capped_desk(tmp_path: Path) -> AsyncIterator[Desk]:
    def settings_for(hook: str) -> Settings:
        base = pool_settings(
            tmp_path, hook, analysis_deadline_seconds=0.3, worker_memory_limit_mb=1024
        )
        # The fax caps lifted, so only the worker's memory cap stands before the bomb.
        data = base.model_dump()
        data["fax"].update(max_page_points=1e9, max_page_pixels=10**13)
        return Settings.model_validate(data)

    async with open_desk(settings_for) as desk:
        yield desk


async def test_deadline_and_memory_cap_hold_the_message_and_replace_the_worker(
    capped_desk: Desk,
) -> None:
    desk = capped_desk
    # 1. Past the deadline: held with the reason; an emergency still pages.
    await desk.send(
        request_message(
            body=DEADLINE_BODY,
            message_id="<stuck@fbi.gov>",
            subject="Emergency Disclosure Request",
        )
    )
    first_pid = worker_pid(desk.app)
    await desk.app.runner.drain()
    assert "analysis_deadline" in await desk.reasons("<stuck@fbi.gov>")
    [summary] = await desk.app.store.list_cases()
    assert summary["status"] == "held"
    await desk.app.alerts.tick()
    [page] = desk.hooks.posts
    assert page["alert"]["kind"] == "unverified_emergency"
    # 2. The 333-byte bomb with the fax caps lifted: the worker's RLIMIT_AS stops it.
    await eventually(lambda: pool_ready(desk.app), "a new worker")
    assert worker_pid(desk.app) != first_pid
    await desk.send(
        gateway_fax(BIG_PAGE_PDF, "fax.pdf", "application/pdf", "<bomb@efax.example>"),
        "bounce@efax.example",
    )
    await desk.app.runner.drain()
    assert "analysis_memory_limit" in await desk.reasons("<bomb@efax.example>")
    # 3. And the desk goes on.
    await eventually(lambda: pool_ready(desk.app), "a third worker")
    await desk.send(request_message(message_id="<fine@fbi.gov>"))
    await desk.app.runner.drain()
    assert "analysis_deadline" not in await desk.reasons("<fine@fbi.gov>")
    assert desk.app.spool.bad_items() == []
    _, report = await desk.health()
    assert report["pool"]["deadlines"] == 1
    assert report["pool"]["memory_limit_hits"] == 1
    assert report["runner"]["held_after_interruption"] == 2


# -- a pool that cannot start -------------------------------------------------------------


async def test_a_pool_that_cannot_start_answers_503_and_keeps_the_mail(tmp_path: Path) -> None:
    # 64 MiB of address space cannot hold the stages: every start fails.
    async with open_desk(
        lambda hook: pool_settings(
            tmp_path, hook, worker_memory_limit_mb=64, worker_start_timeout_seconds=30
        )
    ) as desk:
        runner = asyncio.ensure_future(desk.app.runner.run_forever())
        try:
            await desk.send(request_message(message_id="<waiting@fbi.gov>"))
            for path in ("/healthz", "/readyz"):
                status, report = await desk.health(path)
                assert status == 503
                assert report["ready"] is False
                assert report["pool"]["broken"] is True
                assert report["pool"]["start_failures"] >= 1
                assert any("no live worker" in p for p in report["problems"])
            await asyncio.sleep(0.3)
            _, report = await desk.health()
            # acknowledged, waiting, not failed
            assert report["spool"]["waiting"] + report["spool"]["in_progress"] == 1
            assert report["spool"]["bad"] == 0
            assert report["spool"]["oldest_waiting_seconds"] >= 0
        finally:
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner


# -- backoff, quarantine, the operator alert, a failing pass ---------------------------------


@pytest.fixture
async def inline_desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with open_desk(
        lambda hook: make_settings(
            tmp_path,
            runner={"retry_base_seconds": 0.2, "retry_max_seconds": 1.0, "max_attempts": 3},
            alert_webhook_url=hook,
        )
    ) as desk:
        yield desk


def broken_spool_file(spool: Spool, name: str) -> None:
    """An acknowledged file the runner cannot read (no envelope line): a poison message."""
    (spool.new / name).write_bytes(b"Subject: not an envelope\r\n\r\nbody\r\n")


def test_backoff_is_exponential_and_capped() -> None:
    policy = RetryPolicy(base_seconds=1, max_seconds=5, store_base_seconds=0.5, store_max_seconds=2)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert [policy.store_delay(n) for n in range(1, 5)] == [0.5, 1, 2, 2]
    assert policy.delay(10_000) == 5


async def test_a_failed_attempt_waits_its_backoff_then_goes_to_bad_with_an_alert(
    inline_desk: Desk,
) -> None:
    desk = inline_desk
    spool = desk.app.spool
    broken_spool_file(spool, "p5-00000000000000000001-1-aaaaaaaa")
    assert await desk.app.runner.drain() == 1
    assert spool.pending() == ["p5-00000000000000000001-1-aaaaaaaa.try1"]
    # not retried at once: it waits for its backoff
    assert await desk.app.runner.drain() == 0
    retry_in = desk.app.runner.next_retry_in()
    assert retry_in is not None
    assert 0 < retry_in <= 0.2
    runner = asyncio.ensure_future(desk.app.runner.run_forever())
    try:

        async def alerted() -> bool:
            return bool(desk.hooks.posts)

        await eventually(alerted, "the operator alert")
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    [bad] = spool.bad_items()
    assert bad.id == "p5-00000000000000000001-1-aaaaaaaa"
    assert spool.bad_reason(bad.id) == (
        "failed_attempts",
        "analysis: failed 3 times, last with ValueError",
    )
    [post] = desk.hooks.posts
    assert post["alert"]["kind"] == "operator"
    assert post["alert"]["reason_code"] == "failed_attempts"
    assert "not an envelope" not in json.dumps(post)


async def test_operator_alerts_survive_a_restart_and_go_urgent_first(inline_desk: Desk) -> None:
    desk = inline_desk
    spool = desk.app.spool
    normal = "p5-00000000000000000001-1-aaaaaaaa"
    urgent = "p0-00000000000000000002-1-bbbbbbbb"
    for name in (normal, urgent):
        broken_spool_file(spool, name)
        item = spool.claim(name)
        assert item is not None
        spool.quarantine(item, "test quarantine", "traceback", "failed_attempts")
    desk.hooks.fail = True  # the pager is down
    first = OperatorAlerts(desk.app.settings, spool, desk.app.clock)
    assert await first.load_backlog() == 2
    assert await first.deliver_due() == 0
    assert first.status()["pending"] == 2
    assert spool.unalerted_bad() == [urgent, normal]
    # a restart: the backlog is read from bad/ again, and sent urgent first
    desk.hooks.fail = False
    second = OperatorAlerts(desk.app.settings, spool, desk.app.clock)
    assert await second.load_backlog() == 2
    assert await second.deliver_due() == 2
    assert [p["alert"]["spool_id"] for p in desk.hooks.posts] == [urgent, normal]
    assert [p["alert"]["severity"] for p in desk.hooks.posts] == ["critical", "error"]
    assert desk.hooks.posts[0]["alert"]["priority"] == "urgent"
    # delivered once: nothing left for the next start
    assert await OperatorAlerts(desk.app.settings, spool, desk.app.clock).load_backlog() == 0


async def test_a_failing_runner_pass_is_shown_and_retried_not_a_silent_stop(
    inline_desk: Desk,
) -> None:
    desk = inline_desk
    spool = desk.app.spool
    runner = asyncio.ensure_future(desk.app.runner.run_forever())
    try:
        await eventually(
            lambda: _ready(desk, True), "the runner to be running"
        )  # health needs the loop up
        # new/ is replaced by a file: every pass fails
        spool.new.rename(spool.root / "new.away")
        spool.new.write_bytes(b"")
        desk.app.runner.notify()

        async def pass_failed() -> bool:
            status, report = await desk.health()
            return status == 503 and any("last pass failed" in p for p in report["problems"])

        await eventually(pass_failed, "/readyz to report the failing pass")
        _, report = await desk.health()
        assert "the spool cannot be read (NotADirectoryError)" in report["problems"]
        spool.new.unlink()
        (spool.root / "new.away").rename(spool.new)
        await desk.send(request_message(message_id="<after-fix@fbi.gov>"))
        await eventually(lambda: _ready(desk, True), "the runner to recover")

        async def recorded() -> bool:
            return "<after-fix@fbi.gov>" in await desk.stored()

        await eventually(recorded, "the message after the fix")
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


async def _ready(desk: Desk, expected: bool) -> bool:
    status, report = await desk.health()
    return report["ready"] is expected and (status == 200) is expected


# -- a locked case store ------------------------------------------------------------------


async def test_a_locked_store_is_waited_out_never_blamed_on_the_message(tmp_path: Path) -> None:
    async with open_desk(
        lambda hook: make_settings(
            tmp_path,
            runner={"max_attempts": 1, "store_retry_base_seconds": 0.05},
            alert_webhook_url=hook,
        )
    ) as desk:
        # The app's busy timeout is 30 s; the lock is held for less than that, so a short
        # one makes SQLite answer "database is locked" at once, as a longer lock would.
        @event.listens_for(desk.app.engine.sync_engine, "connect")
        def _short_busy(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=50")
            cursor.close()

        await desk.app.engine.dispose()
        locked = threading.Event()
        release = threading.Event()

        def hold_lock() -> None:
            db = sqlite3.connect(tmp_path / "cases.db", isolation_level=None)
            try:
                db.execute("BEGIN EXCLUSIVE")
                locked.set()
                release.wait(WAIT)
                db.execute("ROLLBACK")
            finally:
                db.close()

        locker = threading.Thread(target=hold_lock)
        locker.start()
        runner = asyncio.ensure_future(desk.app.runner.run_forever())
        try:
            assert await asyncio.to_thread(locked.wait, WAIT)
            await desk.send(request_message(message_id="<while-locked@fbi.gov>"))

            async def store_down() -> bool:
                status, report = await desk.health()
                return status == 503 and report["store"]["available"] is False

            await eventually(store_down, "/readyz to report the store")
            _, report = await desk.health()
            assert report["store"]["last_error"] == "OperationalError"
            release.set()
            await asyncio.to_thread(locker.join, WAIT)

            async def recorded() -> bool:
                return (await desk.stored()).get("<while-locked@fbi.gov>") == 1

            await eventually(recorded, "the record after the lock")
            await eventually(lambda: _ready(desk, True), "/readyz to recover")
            assert desk.app.spool.bad_items() == []  # max_attempts = 1, and still not bad
        finally:
            release.set()
            runner.cancel()
            with pytest.raises(asyncio.CancelledError):
                await runner
            locker.join(WAIT)


def test_store_errors_that_are_the_stores_are_told_from_the_messages(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.db")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    db.execute("INSERT INTO t VALUES (1)")
    try:
        db.execute("INSERT INTO t VALUES (1)")
    except sqlite3.IntegrityError as exc:
        integrity = sa_exc.IntegrityError("INSERT", {}, exc)
    try:
        db.execute("SELECT * FROM missing")
    except sqlite3.OperationalError as exc:
        operational = sa_exc.OperationalError("SELECT", {}, exc)
    db.close()
    assert store_unavailable(operational)
    assert store_unavailable(ConnectionResetError())
    assert not store_unavailable(integrity)
    assert not store_unavailable(ValueError("bad value"))


# -- what is recorded when the analysis could not finish -----------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage without headers",
        b"Subject: =?utf-8?b?????=\r\nFrom: <<<@@@>>>\r\n\r\nbody",
        b"From: a@b.gov\r\n" + b"X-Pad: " + b"a" * 200_000 + b"\r\n\r\nbody",
        b"Subject: Emergency Disclosure Request\nFrom: Agent <agent@fbi.gov>\n"
        b"Message-ID: <m@x>\n\n",
    ],
)
def test_held_context_never_raises_and_reads_only_the_header_block(raw: bytes) -> None:
    ctx = held_context(raw, ENVELOPE, "analysis_deadline", "Analysis did not finish.")
    assert ctx.decision.value == "hold"
    assert ctx.body_text == ""
    assert "analysis_deadline" in ctx.reason_codes
    if raw.startswith(b"Subject: Emergency"):
        assert ctx.emergency is True
        assert ctx.headers.message_id == "<m@x>"
        assert ctx.sender is not None
        assert ctx.sender.address == "agent@fbi.gov"


async def test_a_worker_that_dies_while_idle_blames_no_message(tmp_path: Path) -> None:
    pool = PoolAnalyser(make_settings(tmp_path, runner={"workers": 1}), 1)
    try:
        await pool.warm_up()
        [pid] = pool.pids()
        os.kill(pid, signal.SIGKILL)
        # at once: the message may reach the dying worker before its death is seen, and
        # must still not be blamed (the worker had not acknowledged it)
        ctx = await pool.analyse(request_message(), ENVELOPE)  # done by the replacement
        assert ctx.headers.message_id == "<req-1@fbi.gov>"
        assert pool.status()["worker_deaths"] == 1
        assert pool.pids() != [pid]
        # killed while busy: that message, and only it, gets WorkerLost
        task = asyncio.ensure_future(pool.analyse(request_message(body=SLOW_BODY), ENVELOPE))
        await eventually(lambda: _busy(pool), "the worker to take the message")
        os.kill(pool.pids()[0], signal.SIGKILL)
        with pytest.raises(WorkerLost) as lost:
            await task
        assert lost.value.exitcode == -signal.SIGKILL
    finally:
        pool.close()


async def _busy(pool: PoolAnalyser) -> bool:
    return bool(pool.status()["busy"])


def test_spool_counts_see_waiting_urgent_and_bad(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    envelope = Envelope("a@fbi.gov", (REQUEST_ADDRESS,), datetime.now(UTC))
    spool.put(b"Subject: x\r\n\r\n", envelope, priority=0)
    spool.put(b"Subject: y\r\n\r\n", envelope)
    (spool.new / "p5-00000000000000000001-1-cccccccc").write_bytes(ENVELOPE_HEADER + b"{}\n")
    counts = spool.counts()
    assert counts.waiting == 3
    assert counts.bad == 0
    assert counts.oldest_waiting_seconds is not None
    assert counts.oldest_waiting_seconds > 1e9  # the one spooled at the epoch
    assert counts.oldest_urgent_waiting_seconds is not None
    assert counts.oldest_urgent_waiting_seconds < 60
