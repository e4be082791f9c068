"""Emergency page latency under a flood: end of DATA → the page reaching a webhook.

Starts ``le-intake serve`` (demo config, scratch paths) with its alert webhook pointed at
a local aiohttp receiver, floods it with ordinary LE and non-LE mail at a target rate, and
sends an "Emergency Disclosure Request" every ``--interval`` seconds on its own
connection. For each emergency: the time from the server's 250 to the page's arrival.

    python -m bench.emergency_latency [--rate 500] [--seconds 20] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from typing import Any

import aiosmtplib
from aiohttp import web

from bench.common import free_port, serve_env, serving, wait_port

AR = "le-intake.local; dkim=pass header.d=fbi.gov; dmarc=pass header.from=fbi.gov"
BODY = (
    "Pursuant to 18 U.S.C. 2703(d) we request subscriber records for @flood_target for "
    "January 1 to March 31, 2026.\r\n"
) * 30


def message(sender: str, subject: str, n: int) -> bytes:
    return (
        f"Authentication-Results: {AR}\r\nFrom: {sender}\r\n"
        f"To: lawenforcement@example-platform.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <lat-{n}-{time.time_ns()}@bench>\r\n\r\n{BODY}"
    ).encode()


async def run(rate: float, seconds: float, interval: float) -> None:
    arrivals: dict[str, float] = {}

    async def hook(request: web.Request) -> web.Response:
        data: dict[str, Any] = await request.json()
        subject = str(data["alert"].get("subject", ""))
        if data["action"] == "trigger":
            arrivals.setdefault(subject, time.perf_counter())
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    smtp_port = free_port()
    with tempfile.TemporaryDirectory(prefix="le-intake-latency-") as tmp:
        env = serve_env(
            tmp,
            smtp_port,
            ALERT_WEBHOOK_URL=f"http://127.0.0.1:{hook_port}/hook",
            REPLIES__MAX_PER_SENDER_PER_DAY="1000000",
        )
        with serving(env):
            await wait_port(smtp_port)
            sent_at: dict[str, float] = {}
            flood_sent = 0
            stop = time.perf_counter() + seconds

            async def flood(worker: int, per_worker_rate: float) -> None:
                nonlocal flood_sent
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, timeout=60)
                await client.connect()
                n = 0
                next_at = time.perf_counter()
                while time.perf_counter() < stop:
                    n += 1
                    sender = "agent@fbi.gov" if n % 2 else "someone@gmail.com"
                    await client.sendmail(
                        sender,
                        ["lawenforcement@example-platform.com"],
                        message(sender, f"Records request {worker}-{n}", n),
                    )
                    flood_sent += 1
                    next_at += 1 / per_worker_rate
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                await client.quit()

            async def emergencies() -> None:
                k = 0
                while time.perf_counter() < stop:
                    await asyncio.sleep(interval)
                    k += 1
                    subject = f"Emergency Disclosure Request {k}"
                    raw = message("duty.agent@fbi.gov", subject, 10_000_000 + k)
                    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, timeout=60)
                    await client.connect()
                    await client.sendmail(
                        "duty.agent@fbi.gov", ["lawenforcement@example-platform.com"], raw
                    )
                    sent_at[subject] = time.perf_counter()
                    await client.quit()

            workers = 10
            await asyncio.gather(emergencies(), *(flood(w, rate / workers) for w in range(workers)))
            deadline = time.perf_counter() + 60
            while len(arrivals) < len(sent_at) and time.perf_counter() < deadline:
                await asyncio.sleep(0.05)
    await runner.cleanup()
    latencies = sorted((arrivals[s] - t) * 1000 for s, t in sent_at.items() if s in arrivals)
    missing = len(sent_at) - len(latencies)
    print(
        f"flood: {flood_sent} messages in {seconds:.0f} s = {flood_sent / seconds:.0f} msg/s "
        f"offered (target {rate:.0f}); emergencies: {len(sent_at)}, pages received: "
        f"{len(latencies)}, missing: {missing}"
    )
    if latencies:
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(
            f"end of DATA -> webhook: p50 {statistics.median(latencies):.0f} ms, "
            f"p99 {p99:.0f} ms, max {latencies[-1]:.0f} ms  (goal: p99 < 1000 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    asyncio.run(run(args.rate, args.seconds, args.interval))


if __name__ == "__main__":
    main()
