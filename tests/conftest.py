"""Shared test parts: settings on temporary paths, a built app, a real SMTP listener."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from config.settings import Settings, load_settings, merge
from core.envelope import Envelope
from le_intake.app import App, build_app

LE_SENDER = "agent.smith@fbi.gov"
REQUEST_ADDRESS = "lawenforcement@example-platform.com"
# The envelope of a stage test's message: from an LE sender to the request address.
ENVELOPE = Envelope(
    mail_from="agent@fbi.gov",
    rcpt_tos=(REQUEST_ADDRESS,),
    received_at=datetime(2024, 10, 1, 12, 0, tzinfo=UTC),
)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    base = load_settings().model_dump()
    paths = {
        "data_dir": str(tmp_path),
        "spool_dir": str(tmp_path / "spool"),
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/cases.db",
        "outbox": {"folder": str(tmp_path / "outbox")},
        "runner": {"workers": 0, "scan_interval_seconds": 0.2},
    }
    return Settings.model_validate(merge(merge(base, paths), dict(overrides)))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[App]:
    built = await build_app(settings)
    try:
        yield built
    finally:
        await built.close()


@dataclass
class Listener:
    app: App
    host: str
    port: int

    async def send(
        self, raw: bytes, mail_from: str, rcpt: list[str]
    ) -> dict[str, tuple[int, bytes]]:
        """Send with the stdlib SMTP client in a thread; returns refused recipients."""

        def go() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP(self.host, self.port, timeout=30) as client:
                return client.sendmail(mail_from, rcpt, raw)

        return await asyncio.to_thread(go)


@pytest.fixture
async def listener(app: App) -> AsyncIterator[Listener]:
    server = await app.start_smtp("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Listener(app, "127.0.0.1", port)
    finally:
        server.close()
        await server.wait_closed()


def request_message(
    sender: str = LE_SENDER,
    subject: str = "Subpoena for subscriber information",
    body: str = "Please preserve and produce records for @target_account (User ID: 12345).\n",
    message_id: str = "<req-1@fbi.gov>",
    to: str = REQUEST_ADDRESS,
    attachments: list[tuple[str, str, bytes]] | None = None,
    authenticated: bool = True,
) -> bytes:
    """A request as the boundary MTA hands it over: with its Authentication-Results
    (authserv-id le-intake.local, trusted from loopback in the demo config)."""
    msg = EmailMessage()
    if authenticated:
        domain = sender.rpartition("@")[2]
        msg["Authentication-Results"] = (
            f"le-intake.local; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
        )
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    msg.set_content(body)
    for filename, ctype, data in attachments or []:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()
