"""Driving a replay run: build the parts once, feed every source, collect report rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cases.db import make_engine, upgrade
from cases.repository import CaseStore, domain_decisions
from config.settings import Settings, with_domain_decisions
from core.clock import SystemClock
from ingest.analysis import InlineAnalyser
from ingest.processor import Processor
from ingest.replay import envelope_for, iter_sources, replay_in_process, replay_over_smtp
from replies.conversation import Conversation
from replies.outbox import FolderTransport, OutboxDispatcher


async def run_replay(
    settings: Settings,
    paths: list[Path],
    smtp_target: str | None,
    on_progress: Callable[[], None] = lambda: None,
) -> list[dict[str, Any]]:
    clock = SystemClock()
    engine = make_engine(settings.database_url)
    reports: list[dict[str, Any]] = []
    analyser = None
    try:
        await upgrade(engine)
        settings = with_domain_decisions(settings, await domain_decisions(engine))
        analyser = InlineAnalyser(settings) if smtp_target is None else None
        # Replay pages nobody (alerts go to the network); the rest of the road is the same.
        store = CaseStore(
            engine, clock, Conversation(settings, clock), blocked_senders=settings.blocked_senders
        )
        seen: dict[int, int] = {}
        for item in iter_sources(paths):
            envelope = envelope_for(item.raw, settings, clock)
            if analyser is not None:
                row = await replay_in_process(item, Processor(analyser, store), envelope)
            else:
                assert smtp_target is not None
                host, _, port = smtp_target.rpartition(":")
                row = await replay_over_smtp(item, envelope, host, int(port), store, seen)
            reports.append(row)
            on_progress()
        if analyser is not None:
            # Responses go to the outbox folder, never to the network (replay's settings
            # force the folder transport).
            outbox = OutboxDispatcher(
                store.sessions, FolderTransport(settings.outbox.folder), settings.outbox, clock
            )
            while await outbox.deliver_due():
                pass
    finally:
        await engine.dispose()
    return reports
