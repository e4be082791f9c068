"""Wiring: one object holding the parts of a running le-intake, built from settings.

Everything the road needs is constructed here and passed explicitly; ``serve`` runs the
SMTP listener and the runner on one event loop, sharing its engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from cases.db import make_engine, upgrade
from cases.repository import CaseStore
from config.settings import Settings
from ingest.analysis import Analyser, PoolAnalyser, make_analyser
from ingest.processor import Processor
from ingest.runner import Runner
from ingest.smtp import IntakeHandler, RequestAddresses, start_smtp_server
from ingest.spool import Spool
from le_intake.clock import Clock, SystemClock

log = logging.getLogger("le_intake.app")


@dataclass
class App:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    store: CaseStore
    spool: Spool
    analyser: Analyser
    processor: Processor
    runner: Runner

    def smtp_handler(self) -> IntakeHandler:
        return IntakeHandler(
            self.spool,
            RequestAddresses(self.settings.smtp.request_addresses),
            self.clock,
            on_spooled=self.runner.notify,
        )

    async def close(self) -> None:
        await asyncio.to_thread(self.analyser.close)
        await self.engine.dispose()


async def build_app(
    settings: Settings, clock: Clock | None = None, analyser: Analyser | None = None
) -> App:
    clock = clock or SystemClock()
    await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    store = CaseStore(engine, clock)
    spool = Spool(settings.spool_dir)
    await asyncio.to_thread(spool.preallocate, settings.runner.spool_preallocate)
    analyser = analyser or make_analyser(settings)
    if isinstance(analyser, PoolAnalyser):
        await analyser.warm_up()
    processor = Processor(analyser, store)
    runner = Runner(
        spool,
        processor,
        settings.runner.max_attempts,
        settings.runner.scan_interval_seconds,
    )
    return App(settings, clock, engine, store, spool, analyser, processor, runner)


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM: SMTP listener and runner on this loop."""
    app = await build_app(settings)
    server = await start_smtp_server(settings.smtp, app.smtp_handler())
    runner_task = asyncio.create_task(app.runner.run_forever(), name="runner")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sockets = ", ".join(str(s.getsockname()) for s in server.sockets)
    log.info("le-intake serving", extra={"smtp": sockets, "database": _safe_url(settings)})
    try:
        await stop.wait()
    finally:
        log.info("le-intake stopping")
        server.close()
        await server.wait_closed()
        runner_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner_task
        await app.close()


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)
