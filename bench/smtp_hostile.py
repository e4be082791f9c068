"""Memory of the SMTP listener under junk connections: command lines with no line end.

Starts ``le-intake serve`` on loopback, opens C connections (from 127.0.0.2, 127.0.0.3, …,
a few per address so the per-peer cap does not refuse them) that each send M MiB without
a line end and stay open, and prints the serving process's resident memory before, while
they are open, and after they closed, and what one junk connection held. A normal message
is sent while the junk connections are open, to show the listener still answers.

    python -m bench.smtp_hostile [--connections 20] [--mib 8]
"""

from __future__ import annotations

import argparse
import asyncio
import smtplib
import tempfile
import time
from pathlib import Path

from bench.common import free_port, serve_env, serving, wait_port

PER_ADDRESS = 5
CHUNK = b"j" * 65536


def rss_mib(pid: int) -> float:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def send_one(port: int) -> int:
    raw = (
        b"From: agent.smith@fbi.gov\r\nTo: lawenforcement@example-platform.com\r\n"
        b"Subject: bench\r\nMessage-ID: <hostile-bench-%d@fbi.gov>\r\n\r\nhello\r\n"
    ) % time.time_ns()
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.sendmail("agent.smith@fbi.gov", ["lawenforcement@example-platform.com"], raw)
        return 250


async def junk(port: int, source: str, mib: int) -> asyncio.StreamWriter:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    await reader.readline()  # the greeting
    for _ in range(mib * 16):
        writer.write(CHUNK)
        await writer.drain()
    return writer


async def run(connections: int, mib: int) -> None:
    with tempfile.TemporaryDirectory(prefix="le-intake-hostile-") as tmp:
        port = free_port()
        with serving(serve_env(tmp, port)) as server:
            await wait_port(port)
            await asyncio.to_thread(send_one, port)  # warm up
            await asyncio.sleep(1)
            before = rss_mib(server.pid)
            sources = [f"127.0.0.{2 + n // PER_ADDRESS}" for n in range(connections)]
            writers = await asyncio.gather(*(junk(port, s, mib) for s in sources))
            await asyncio.sleep(1)  # let the server read what is in flight
            during = rss_mib(server.pid)
            code = await asyncio.to_thread(send_one, port)
            for writer in writers:
                writer.close()
            await asyncio.sleep(1)
            after = rss_mib(server.pid)
    print(f"junk connections: {connections} x {mib} MiB without a line end")
    print(f"server RSS before : {before:8.1f} MiB")
    print(f"server RSS during : {during:8.1f} MiB   (a normal message meanwhile: {code})")
    print(f"server RSS after  : {after:8.1f} MiB")
    print(f"per connection    : {(during - before) / connections:8.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--mib", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.connections, args.mib))


if __name__ == "__main__":
    main()
