"""The fax webhook reads the whole body, however it arrives, and no more than its limit.

Real parts: the aiohttp server on loopback with the real ``FaxWebhook``, the spool and the
case store; clients are aiohttp with a chunked async-generator body and raw sockets that
write a body in pieces with pauses, stop short or trickle.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import ClientSession, web

from cases.models import FaxReceipt
from ingest.fax_webhook import FaxWebhook, sign
from le_intake.app import App, build_app
from le_intake.http import make_http_app
from tests.conftest import make_settings

SECRET = "streaming-fax-secret"
BOUNDARY = "----streamingfaxboundary"
MAX_BYTES = 6 * 1024 * 1024
CHUNK = 64 * 1024


def form(fax_id: str, document: bytes) -> bytes:
    fields = {"fax_id": fax_id, "from": "+15124242999", "to": "+14155550100", "pages": "1"}
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="document"; filename="fax.pdf"'
        "\r\nContent-Type: application/pdf\r\n\r\n".encode()
        + document
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def document(size: int) -> bytes:
    return b"%PDF-1.4\n" + os.urandom(size)


@dataclass
class Desk:
    app: App
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/fax/inbound"

    def headers(self, body: bytes) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            "X-Fax-Signature": sign(SECRET, int(time.time()), body),
        }

    async def raw(self, head: bytes, pieces: list[bytes], pause: float) -> tuple[int, bytes]:
        """Write the request head, then each piece with a pause between (a body split
        over many TCP segments), and read the status and the response."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(head)
            await writer.drain()
            for piece in pieces:
                await asyncio.sleep(pause)
                writer.write(piece)
                await writer.drain()
            response = await asyncio.wait_for(reader.read(), 30)
        finally:
            writer.close()
            await writer.wait_closed()
        status = int(response.split(b" ", 2)[1])
        return status, response

    def head(self, body_headers: dict[str, str], length: int | None) -> bytes:
        lines = [
            "POST /fax/inbound HTTP/1.1",
            f"Host: {self.host}",
            "Connection: close",
            *(f"{k}: {v}" for k, v in body_headers.items()),
        ]
        if length is not None:
            lines.append(f"Content-Length: {length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def spooled_documents(self) -> list[bytes]:
        out: list[bytes] = []
        for item_id in self.app.spool.pending():
            raw = (self.app.spool.new / item_id).read_bytes().partition(b"\n")[2]
            message = email.message_from_bytes(raw, policy=email.policy.default)
            for part in message.iter_attachments():
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                out.append(payload)
        return out


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    settings = make_settings(
        tmp_path,
        fax={"webhook_secret": SECRET, "max_bytes": MAX_BYTES, "read_timeout_seconds": 2},
    )
    app = await build_app(settings)
    fax = FaxWebhook(settings, app.spool, app.store, app.clock, app.runner.notify)
    runner = web.AppRunner(make_http_app(settings, app.store, app.alert_book, app.alerts, fax))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Desk(app, "127.0.0.1", port)
    finally:
        await runner.cleanup()
        await app.close()


async def test_signed_multi_mib_body_streamed_in_chunks_is_read_whole(desk: Desk) -> None:
    doc = document(4 * 1024 * 1024)
    body = form("FX-STREAM-1", doc)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), CHUNK):
            yield body[start : start + CHUNK]
            await asyncio.sleep(0.002)  # each chunk its own segments, read separately

    async with (
        ClientSession() as http,
        http.post(desk.url, data=chunks(), headers=desk.headers(body)) as response,
    ):
        assert response.status == 200, await response.text()
        answer = await response.json()
    assert answer["duplicate"] is False
    assert await desk.spooled_documents() == [doc]
    async with desk.app.store.sessions() as session:
        receipt = await session.get(FaxReceipt, "FX-STREAM-1")
    assert receipt is not None
    assert receipt.spool_id == answer["spool_id"]


async def test_body_with_content_length_written_in_pieces_with_pauses(desk: Desk) -> None:
    doc = document(2 * 1024 * 1024 + 12345)
    body = form("FX-STREAM-2", doc)
    pieces = [body[i : i + 200_000] for i in range(0, len(body), 200_000)]
    status, response = await desk.raw(desk.head(desk.headers(body), len(body)), pieces, pause=0.02)
    assert status == 200, response
    assert await desk.spooled_documents() == [doc]
    assert hashlib.sha256(doc).hexdigest() in {
        hashlib.sha256(d).hexdigest() for d in await desk.spooled_documents()
    }


async def test_declared_length_over_the_limit_is_refused_before_reading(desk: Desk) -> None:
    body = form("FX-BIG-1", b"%PDF-1.4 small")
    # The head announces more than the limit and no body follows: an answer can only come
    # from the declared length, without waiting for (or buffering) any of it.
    status, response = await desk.raw(desk.head(desk.headers(body), MAX_BYTES + 1), [], pause=0)
    assert status == 413
    assert b"too large" in response
    assert desk.app.spool.pending() == []


async def test_endless_chunked_body_gets_413_and_nothing_is_kept(desk: Desk) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        head = form("FX-BIG-2", b"%PDF-1.4 ")
        yield head[: -len(f"--{BOUNDARY}--\r\n") - 2]
        while True:
            sent += CHUNK
            yield b"x" * CHUNK
            await asyncio.sleep(0)

    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
               "X-Fax-Signature": sign(SECRET, int(time.time()), b"unknowable")}  # fmt: skip
    async with (
        ClientSession() as http,
        http.post(desk.url, data=endless(), headers=headers) as response,
    ):
        assert response.status == 413
        assert response.headers.get("Connection", "").lower() == "close"
    assert sent >= MAX_BYTES  # it read up to the limit before refusing
    assert desk.app.spool.pending() == []


async def test_trickling_sender_gets_408(desk: Desk) -> None:
    body = form("FX-SLOW-1", document(10_000))
    # Half the body, then nothing for longer than fax.read_timeout_seconds (2 s here).
    status, _ = await desk.raw(
        desk.head(desk.headers(body), len(body)), [body[: len(body) // 2]], pause=0
    )
    assert status == 408
    assert desk.app.spool.pending() == []


async def test_body_cut_short_is_rejected_without_an_error(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    body = form("FX-CUT-1", document(100_000))
    reader, writer = await asyncio.open_connection(desk.host, desk.port)
    writer.write(desk.head(desk.headers(body), len(body)) + body[:50_000])
    await writer.drain()
    writer.write_eof()  # the sender stops short of its Content-Length
    with caplog.at_level(logging.WARNING):
        await asyncio.wait_for(reader.read(), 30)
        writer.close()
        await writer.wait_closed()
        for _ in range(50):  # the handler finishes after the connection is gone
            if any("fax rejected" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.05)
    assert desk.app.spool.pending() == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert any(
        getattr(r, "reason", "") == "the body ended before its declared end" for r in caplog.records
    )
