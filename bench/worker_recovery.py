"""Analysis worker supervision: start-up, throughput, and recovery after a SIGKILL.

Prints how long a pool takes to start, its analysis rate on the ~4 KB pipeline message,
and how long after a worker is killed (as the OOM killer would) the next message is
analysed by its replacement, for a pool of one and of two workers.

    python -m bench.worker_recovery [--count 300] [--kills 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from bench.extraction import PIPELINE_REQUEST, SET_PATH, bench_envelope, build_message, load_set
from config.settings import Settings, load_settings, merge
from core.envelope import Envelope
from ingest.analysis import PoolAnalyser


async def measure(settings: Settings, workers: int, count: int, kills: int) -> None:
    request = next(r for r in load_set(SET_PATH) if r.id.startswith(PIPELINE_REQUEST))
    raw, envelope = build_message(request), bench_envelope(request)
    pool = PoolAnalyser(settings, workers)
    try:
        start = time.perf_counter()
        await pool.warm_up()
        started = time.perf_counter() - start
        await asyncio.gather(*(pool.analyse(raw, envelope) for _ in range(workers * 4)))
        start = time.perf_counter()
        await asyncio.gather(*(pool.analyse(raw, envelope) for _ in range(count)))
        rate = count / (time.perf_counter() - start)
        recoveries = [await _recovery(pool, raw, envelope, workers) for _ in range(kills)]
        print(
            f"{workers} worker(s): start {started:.1f} s, {rate:,.1f} messages/s, "
            f"after a SIGKILL the next message is done in {statistics.median(recoveries):.2f} s "
            f"(median of {kills}; max {max(recoveries):.2f} s)"
        )
    finally:
        pool.close()


async def _recovery(pool: PoolAnalyser, raw: bytes, envelope: Envelope, workers: int) -> float:
    """Kill every worker while idle, then time one message to completion."""
    for pid in pool.pids():
        os.kill(pid, signal.SIGKILL)
    start = time.perf_counter()
    await pool.analyse(raw, envelope)
    elapsed = time.perf_counter() - start
    while len(pool.pids()) < workers:  # the others come back before the next round
        await asyncio.sleep(0.05)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the replacements' warnings are expected
    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings().model_dump()
        settings = Settings.model_validate(merge(base, {"data_dir": str(Path(tmp))}))
        for workers in (1, 2):
            asyncio.run(measure(settings, workers, args.count, args.kills))


if __name__ == "__main__":
    main()
