"""Outbox delivery rate: queued responses handed to a local SMTP sink per second.

Builds an app on a scratch SQLite store with the smtp transport pointed at a bare aiosmtpd
sink on loopback, queues N responses, and times the dispatcher until all are sent.

    python -m bench.outbox_delivery [--messages 500]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

from cases.models import OutboxMessage
from config.settings import Settings, load_settings, merge
from le_intake.app import build_app


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


async def run(total: int) -> None:
    loop = asyncio.get_running_loop()
    sink = Sink()
    server = await loop.create_server(lambda: SMTP(sink, loop=loop), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.model_validate(
            merge(
                load_settings().model_dump(),
                {
                    "database_url": f"sqlite+aiosqlite:///{tmp}/b.db",
                    "spool_dir": f"{tmp}/spool",
                    "data_dir": tmp,
                    "runner": {"workers": 0},
                    "outbox": {"transport": "smtp", "relay_host": "127.0.0.1", "relay_port": port},
                },
            )
        )
        app = await build_app(settings)
        now = app.clock.now()
        raw = Path(__file__).read_bytes()[:2000]
        async with app.store.sessions() as session, session.begin():
            for n in range(total):
                session.add(
                    OutboxMessage(
                        kind="auto_response",
                        sender="lawenforcement@example-platform.com",
                        recipient=f"agent{n}@fbi.gov",
                        message_id=f"<bench-{n}@x>",
                        raw=b"Subject: bench\r\n\r\n" + raw,
                        status="pending",
                        attempts=0,
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
        start = time.perf_counter()
        sent = 0
        while sent < total:
            sent += await app.outbox.deliver_due(limit=1000)
        elapsed = time.perf_counter() - start
        await app.close()
    server.close()
    print(
        f"outbox: {total} responses to a local sink in {elapsed:.2f} s "
        f"= {total / elapsed:.1f} responses/s (one SMTP connection per message)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    asyncio.run(run(parser.parse_args().messages))


if __name__ == "__main__":
    main()
