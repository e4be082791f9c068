"""The whole pipeline's throughput on ~4 KB requests: SMTP in, case store and response out.

Starts ``le-intake serve`` (demo config, scratch paths, ``--workers`` analysis worker
processes), sends ``--messages`` requests from the labelled extraction set, each padded to
about 4 KB (``bench.extraction.build_message``) and given its own Message-ID, over
``--connections`` concurrent SMTP sessions as fast as the server takes them, and waits
until every one is a row in the case store. Prints the acceptance rate (end of the last
DATA), the processed rate (first send to last row), how the messages ended, and how many
automated responses the outbox wrote.

    python -m bench.pipeline_throughput [--messages 1500] [--connections 8] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import aiosmtplib

from bench.common import free_port, serve_env, serving, wait_port
from bench.extraction import REQUEST_ADDRESS, SET_PATH, build_message, load_set


def messages(count: int) -> list[tuple[str, bytes]]:
    """(sender, message) pairs cycling through the set, each copy a distinct message."""
    requests = load_set(SET_PATH)
    out = []
    for n in range(count):
        request = requests[n % len(requests)]
        copy = replace(request, id=f"{request.id}-{n}")
        out.append((request.sender, build_message(copy)))
    return out


def _outcomes(db: Path) -> Counter[str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT outcome, count(*) FROM messages GROUP BY outcome")
            return Counter({str(k): int(v) for k, v in rows})
    except sqlite3.Error:
        return Counter()


async def run(count: int, connections: int, workers: int) -> None:
    batch = messages(count)
    sizes = [len(raw) for _, raw in batch]
    smtp_port = free_port()
    with tempfile.TemporaryDirectory(prefix="le-intake-throughput-") as tmp:
        db = Path(tmp) / "cases.db"
        env = serve_env(
            tmp,
            smtp_port,
            RUNNER__WORKERS=str(workers),
            REPLIES__MAX_PER_SENDER_PER_DAY="1000000",
        )
        with serving(env):
            await wait_port(smtp_port, timeout=120)
            await asyncio.sleep(2)  # let the workers finish loading before the clock starts
            queue = list(reversed(batch))
            refused = 0

            async def client() -> None:
                nonlocal refused
                smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, timeout=120)
                await smtp.connect()
                while queue:
                    sender, raw = queue.pop()
                    errors, _ = await smtp.sendmail(sender, [REQUEST_ADDRESS], raw)
                    refused += len(errors)
                await smtp.quit()

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(connections)))
            accepted_at = time.perf_counter()
            outcomes: Counter[str] = Counter()
            deadline = accepted_at + 600
            while time.perf_counter() < deadline:
                outcomes = await asyncio.to_thread(_outcomes, db)
                if sum(outcomes.values()) >= count:
                    break
                await asyncio.sleep(0.05)
            done_at = time.perf_counter()
            responses = sum(1 for _ in (Path(tmp) / "outbox").glob("**/*.eml"))

    stored = sum(outcomes.values())
    accept_s, done_s = accepted_at - started, done_at - started
    print(
        f"{count} messages of {min(sizes)}-{max(sizes)} bytes over {connections} connections, "
        f"{workers} analysis worker(s), {os.cpu_count()} CPUs"
    )
    print(f"accepted: {count / accept_s:,.1f} msg/s ({accept_s:.2f} s, {refused} refused)")
    print(
        f"processed (first send -> last stored): {stored / done_s:,.1f} msg/s "
        f"({stored} stored in {done_s:.2f} s)"
    )
    print(f"outcomes: {dict(sorted(outcomes.items()))}; responses written: {responses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1500)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.connections, args.workers))


if __name__ == "__main__":
    main()
