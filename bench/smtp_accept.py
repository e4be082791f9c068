"""SMTP acceptance: le-intake serve against a bare aiosmtpd sink, same client, same load.

Starts both servers as processes on loopback ports, sends N messages (a ~4 KB request) to
each with an async SMTP client at concurrency C (each client reuses its connection), and
prints messages/s for both and their ratio. le-intake's 250 includes the spool's fsyncs;
its runner keeps processing in the background during the run, as it would in production.

    python -m bench.smtp_accept [--messages 2000] [--concurrency 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib

from bench.common import ROOT, free_port, serve_env, serving, wait_port

BODY = (
    "Pursuant to 18 U.S.C. 2703(d), please produce subscriber information for the account "
    "@bench_target (User ID: 783214) for the period January 1 to March 31, 2026.\n"
) * 20


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def message(n: int) -> bytes:
    return (
        f"From: agent.smith@fbi.gov\r\nTo: lawenforcement@example-platform.com\r\n"
        f"Subject: Court order {n}\r\nMessage-ID: <bench-{n}-{time.time_ns()}@fbi.gov>\r\n"
        f"Date: Mon, 02 Nov 2026 10:00:00 +0000\r\n\r\n{BODY}"
    ).encode()


async def blast(port: int, total: int, concurrency: int) -> float:
    counter = iter(range(total))

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60)
        await client.connect()
        try:
            for n in counter:
                await client.sendmail(
                    "agent.smith@fbi.gov", ["lawenforcement@example-platform.com"], message(n)
                )
        finally:
            await client.quit()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - start)


async def run(total: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory(prefix="le-intake-bench-") as tmp:
        intake_port, sink_port = free_port(), free_port()
        sink = subprocess.Popen([sys.executable, "-m", "bench.bare_sink", str(sink_port)], cwd=ROOT)
        with serving(serve_env(tmp, intake_port)) as intake:
            try:
                await asyncio.gather(wait_port(intake_port), wait_port(sink_port))
                await blast(sink_port, 50, concurrency)  # warm both up
                await blast(intake_port, 50, concurrency)
                before = cpu_seconds(sink.pid)
                sink_rate = await blast(sink_port, total, concurrency)
                sink_cpu = (cpu_seconds(sink.pid) - before) / total
                before = cpu_seconds(intake.pid)
                intake_rate = await blast(intake_port, total, concurrency)
                intake_cpu = (cpu_seconds(intake.pid) - before) / total
            finally:
                sink.terminate()
                sink.wait(timeout=60)
    print(f"messages: {total}, concurrency: {concurrency}, size: {len(message(0))} bytes")
    print(f"bare aiosmtpd sink : {sink_rate:8.1f} msg/s   server CPU {sink_cpu * 1e3:.2f} ms/msg")
    print(
        f"le-intake serve    : {intake_rate:8.1f} msg/s   server CPU {intake_cpu * 1e3:.2f} ms/msg"
    )
    print(f"ratio              : {intake_rate / sink_rate:8.1%}  (goal >= 60%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.concurrency))


if __name__ == "__main__":
    main()
