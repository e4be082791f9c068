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

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from alerts.dispatcher import AlertBook, AlertDispatcher
from alerts.operator import OperatorAlerts
from cases.db import make_engine, upgrade
from cases.repository import CaseStore, domain_decisions
from cases.retention import PurgeReport, purge
from classifiers.gate import GateStage
from config.settings import Settings, with_domain_decisions
from core.addresses import RequestAddresses
from core.clock import Clock, SystemClock
from ingest.analysis import Analyser, PoolAnalyser, make_analyser
from ingest.fax_webhook import FaxWebhook
from ingest.processor import Processor
from ingest.runner import Runner
from ingest.smtp import IntakeHandler, start_smtp_server
from ingest.spool import Spool
from le_intake.http import make_http_app
from le_intake.private import make_private, restrict_umask
from replies.conversation import Conversation
from replies.outbox import OutboxDispatcher, make_transport

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
    conversation: Conversation
    outbox: OutboxDispatcher
    alert_book: AlertBook
    alerts: AlertDispatcher
    # Reads the boundary MTA's results at the listener, for the spool's urgent lane.
    lane_gate: GateStage

    def smtp_handler(self) -> IntakeHandler:
        return IntakeHandler(
            self.spool,
            RequestAddresses(self.settings.smtp.request_addresses),
            self.clock,
            on_spooled=self.runner.notify,
            vouched=self.lane_gate.vouched_at_boundary,
        )

    async def start_smtp(self, host: str | None = None, port: int | None = None) -> asyncio.Server:
        """The listener, with the boundary MTA (``auth.trusted_peers``) given its reserved
        share of sessions: the one way serve and the tests start it."""
        return await start_smtp_server(
            self.settings.smtp,
            self.smtp_handler(),
            host,
            port,
            trusted_peers=self.settings.auth.trusted_peers,
        )

    async def close(self) -> None:
        await self.alerts.close()
        await asyncio.to_thread(self.analyser.close)
        await self.engine.dispose()


async def build_app(
    settings: Settings, clock: Clock | None = None, analyser: Analyser | None = None
) -> App:
    clock = clock or SystemClock()
    await asyncio.to_thread(Path(settings.data_dir).mkdir, parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    # operators' verified domain decisions join the policy every part is built with
    settings = with_domain_decisions(settings, await domain_decisions(engine))
    conversation = Conversation(settings, clock)
    alert_book = AlertBook(settings, clock)
    store = CaseStore(engine, clock, conversation, alert_book, settings.blocked_senders)
    alerts = AlertDispatcher(store.sessions, alert_book, settings, clock)
    outbox = OutboxDispatcher(
        store.sessions, make_transport(settings.outbox), settings.outbox, clock
    )
    spool = Spool(settings.spool_dir)
    await asyncio.to_thread(spool.preallocate, settings.runner.spool_preallocate)
    # What earlier runs (or an older umask) left readable by others is tightened.
    await asyncio.to_thread(make_private, settings)
    analyser = analyser or make_analyser(settings)
    if isinstance(analyser, PoolAnalyser):
        await analyser.warm_up()

    def recorded() -> None:
        outbox.notify()
        alerts.notify()

    processor = Processor(analyser, store, on_recorded=recorded)
    runner = Runner.from_settings(
        settings.runner,
        spool,
        processor,
        # analysis runs ahead only where it runs elsewhere: in the worker pool
        ahead=settings.runner.workers + 1 if settings.runner.workers > 0 else 1,
        operator=OperatorAlerts(settings, spool, clock),
    )
    return App(
        settings,
        clock,
        engine,
        store,
        spool,
        analyser,
        processor,
        runner,
        conversation,
        outbox,
        alert_book,
        alerts,
        GateStage.from_settings(settings),
    )


async def sweep_forever(app: App) -> None:
    """Periodic housekeeping: unconfirmed cases expire, old personal data is purged."""
    interval = min(
        app.settings.replies.expiry_sweep_interval_seconds,
        app.settings.retention.sweep_interval_seconds,
    )
    while True:
        try:
            async with app.store.sessions() as session, session.begin():
                expired = await app.conversation.expire_unconfirmed(session)
                report = await purge(
                    session, app.settings.retention, app.clock, bad_dir=app.spool.bad
                )
            if expired or report != PurgeReport(0, 0):
                log.info(
                    "sweep",
                    extra={
                        "expired": expired,
                        "purged_cases": report.cases,
                        "purged_dropped": report.dropped_messages,
                        "purged_alerts": report.alerts,
                        "purged_events": report.events,
                        "purged_bad": report.bad_files,
                    },
                )
        except Exception:
            log.exception("sweep failed; will retry")
        await asyncio.sleep(interval)


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM: SMTP listener and runner on this loop."""
    restrict_umask()  # also when started without the CLI
    app = await build_app(settings)
    server = await app.start_smtp()
    tasks = [
        asyncio.create_task(app.runner.run_forever(), name="runner"),
        asyncio.create_task(app.outbox.run_forever(), name="outbox"),
        asyncio.create_task(sweep_forever(app), name="sweep"),
        asyncio.create_task(app.alerts.run_forever(), name="alerts"),
    ]
    fax = FaxWebhook(settings, app.spool, app.store, app.clock, app.runner.notify)
    http_runner = web.AppRunner(
        make_http_app(
            settings, app.store, app.alert_book, app.alerts, fax, health=app.runner.health
        ),
        access_log=None,
    )
    await http_runner.setup()
    await web.TCPSite(http_runner, settings.http.host, settings.http.port).start()
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
        await http_runner.cleanup()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app.close()


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)
