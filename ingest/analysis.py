"""Where the pipeline's CPU work runs: inline, or in worker processes.

Parsing and NLP are CPU-bound; run on the server's event loop they would stall SMTP
acceptance. ``PoolAnalyser`` runs them in worker processes that build their stages once
(spaCy and the suffix list load at start, not per message). ``InlineAnalyser`` runs them in
the calling thread, for replay and tests that want one process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Protocol

from config.settings import Settings
from ingest.context import MessageContext
from ingest.envelope import Envelope
from ingest.pipeline import Stage, analyse, build_stages


class Analyser(Protocol):
    async def analyse(self, raw: bytes, envelope: Envelope) -> MessageContext: ...

    def close(self) -> None: ...


class InlineAnalyser:
    def __init__(self, settings: Settings) -> None:
        self.stages = build_stages(settings)

    async def analyse(self, raw: bytes, envelope: Envelope) -> MessageContext:
        return analyse(raw, envelope, self.stages)

    def close(self) -> None:
        return None


# Per worker process: the stages built by the pool's initializer.
_worker_stages: list[Stage] = []


def _init_worker(settings_json: str) -> None:
    _worker_stages[:] = build_stages(Settings.model_validate_json(settings_json))


def _analyse_in_worker(raw: bytes, envelope: Envelope) -> MessageContext:
    return analyse(raw, envelope, _worker_stages)


class PoolAnalyser:
    def __init__(self, settings: Settings, workers: int) -> None:
        self.workers = workers
        self.executor = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(settings.model_dump_json(),),
        )

    async def warm_up(self) -> None:
        """Start the workers now, so the first message does not pay for spaCy's load."""
        loop = asyncio.get_running_loop()
        futures = [loop.run_in_executor(self.executor, _worker_ready) for _ in range(self.workers)]
        await asyncio.gather(*futures)

    async def analyse(self, raw: bytes, envelope: Envelope) -> MessageContext:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _analyse_in_worker, raw, envelope)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _worker_ready() -> int:
    return len(_worker_stages)


def make_analyser(settings: Settings) -> Analyser:
    if settings.runner.workers > 0:
        return PoolAnalyser(settings, settings.runner.workers)
    return InlineAnalyser(settings)
