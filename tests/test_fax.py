"""Faxes through real parts: documents rendered like a fax, the aiohttp webhook with HMAC
signatures, the spool and runner, Tesseract OCR, the case store and an alert receiver;
and a fax-gateway email through the real SMTP listener."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import smtplib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from core.clock import SystemClock
from ingest.fax_webhook import FaxWebhook, sign
from ingest.smtp import start_smtp_server
from le_intake.app import App, build_app
from le_intake.http import make_http_app
from tests.conftest import REQUEST_ADDRESS, make_settings
from tests.faxdocs import REQUEST_LINES, pdf_bytes, render_page, tiff_bytes

pytestmark = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (.ci/run installs it)"
)

SECRET = "fax-provider-shared-secret"
BOUNDARY = "----faxboundary7MA4YWxkTrZu0gW"
PLAIN_LINES = [
    "Texas Department of Public Safety - Criminal Investigations",
    "Grand jury subpoena No. 26-GJ-0412",
    "We request subscriber information for the account @lonestar_tips",
    "for the period January 1, 2026 through March 31, 2026.",
    "",
    "Sincerely,",
    "Sgt. Maria Lopez",
]


def form(fields: dict[str, str], document: bytes, filename: str, ctype: str) -> bytes:
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
        )
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="document"; filename="{filename}"'
        f"\r\nContent-Type: {ctype}\r\n\r\n".encode()
        + document
        + b"\r\n"
    )
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


@dataclass
class Hooks:
    pages: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.pages.append(await request.json())
        return web.Response(status=204)


@dataclass
class FaxDesk:
    app: App
    url: str
    smtp_port: int
    hooks: Hooks

    async def post(self, body: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        if signature is not None:
            headers["X-Fax-Signature"] = signature
        async with ClientSession() as http:
            data = io.BytesIO(body)
            async with http.post(f"{self.url}/fax/inbound", data=data, headers=headers) as r:
                return r.status, await r.json()

    async def process(self) -> None:
        await self.app.runner.drain()
        await self.app.alerts.tick()


@pytest.fixture
async def fax_desk(tmp_path: Path) -> AsyncIterator[FaxDesk]:
    hooks = Hooks()
    receiver = web.Application()
    receiver.router.add_post("/hook", hooks.handle)
    receiver_runner = web.AppRunner(receiver)
    await receiver_runner.setup()
    receiver_site = web.TCPSite(receiver_runner, "127.0.0.1", 0)
    await receiver_site.start()
    hook_port = receiver_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = make_settings(
        tmp_path,
        fax={
            "webhook_secret": SECRET,
            "max_bytes": 2_000_000,
            "max_pages": 5,
            "gateway_senders": ["fax-gateway@efax.example"],
        },
        directory=[
            {
                "agency": "Texas DPS Criminal Investigations",
                "phone": "+15124242000",
                "domains": ["dps.texas.gov"],
                "fax": ["+15124242999"],
            }
        ],
        alert_webhook_url=f"http://127.0.0.1:{hook_port}/hook",
    )
    app = await build_app(settings)
    fax = FaxWebhook(settings, app.spool, app.store, app.clock, app.runner.notify)
    runner = web.AppRunner(make_http_app(settings, app.store, app.alert_book, app.alerts, fax))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    smtp = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
    try:
        yield FaxDesk(app, url, smtp.sockets[0].getsockname()[1], hooks)
    finally:
        smtp.close()
        await smtp.wait_closed()
        await runner.cleanup()
        await app.close()
        await receiver_runner.cleanup()


def fields(fax_id: str = "FX-1001", calling: str = "+15124242999") -> dict[str, str]:
    return {
        "fax_id": fax_id,
        "from": calling,
        "to": "+14155550100",
        "pages": "1",
        "received_at": "2026-11-22T10:00:00Z",
    }


def signed(body: bytes, at: float | None = None) -> str:
    return sign(SECRET, int(time.time() if at is None else at), body)


async def test_signed_tiff_fax_becomes_a_held_case_with_identifiers_and_a_page(
    fax_desk: FaxDesk,
) -> None:
    body = form(fields(), tiff_bytes([render_page(REQUEST_LINES)]), "fax.tif", "image/tiff")
    status, answer = await fax_desk.post(body, signed(body))
    assert status == 200
    assert answer["duplicate"] is False
    await fax_desk.process()
    [summary] = await fax_desk.app.store.list_cases()
    case = await fax_desk.app.store.get_case(summary["id"])
    assert case is not None
    assert case["channel"] == "fax-webhook"
    assert case["status"] == "held"  # no authenticated sender: staff call back first
    assert case["emergency"] is True  # the cover sheet reads "Emergency Disclosure Request"
    # the calling number is the directory's, but a caller id is a claim, not the agency
    assert case["agency"] is None
    claim = next(e for e in case["events"] if e["code"] == "fax_number_in_directory")
    assert "claims to be from Texas DPS Criminal Investigations" in claim["detail"]
    subjects = {(i["kind"], i["value"]) for i in case["identifiers"] if i["role"] == "subject"}
    assert {
        ("username", "lonestar_tips"),
        ("phone", "+15125550147"),
        ("user_id", "88123456"),
    } <= subjects
    reasons = case["messages"][0]["reasons"]
    assert {"fax_ocr", "fax_unverified", "fax_number_in_directory", "emergency_cover_sheet"} <= set(
        reasons
    )
    [removed] = case["messages"][0]["attachments_removed"]
    assert removed["sha256"] == hashlib.sha256(tiff_bytes([render_page(REQUEST_LINES)])).hexdigest()
    [page] = fax_desk.hooks.pages
    assert page["alert"]["kind"] == "unverified_emergency"
    assert page["alert"]["authentication"] == "unverified"


async def test_pdf_fax_that_is_not_an_emergency(fax_desk: FaxDesk) -> None:
    body = form(
        fields("FX-2002", "+12065550111"),
        pdf_bytes([render_page(PLAIN_LINES)]),
        "fax.pdf",
        "application/pdf",
    )
    status, _ = await fax_desk.post(body, signed(body))
    assert status == 200
    await fax_desk.process()
    [summary] = await fax_desk.app.store.list_cases()
    case = await fax_desk.app.store.get_case(summary["id"])
    assert case is not None
    assert case["emergency"] is False
    assert "fax_number_unknown" in case["messages"][0]["reasons"]
    assert ("username", "lonestar_tips") in {(i["kind"], i["value"]) for i in case["identifiers"]}
    assert fax_desk.hooks.pages == []


@pytest.mark.parametrize(
    ("signature", "why"),
    [
        (None, "missing"),
        ("t=1,v1=00", "old and wrong"),
        ("garbage", "malformed"),
        ("WRONG", "wrong secret"),
        ("REPLAY", "outside the window"),
    ],
)
async def test_bad_signatures_get_401_and_nothing_is_kept(
    fax_desk: FaxDesk, signature: str | None, why: str
) -> None:
    body = form(fields(), b"%PDF-1.4 tiny", "fax.pdf", "application/pdf")
    if signature == "WRONG":
        signature = sign("not-the-secret", int(time.time()), body)
    elif signature == "REPLAY":
        signature = signed(body, at=time.time() - 3600)
    status, answer = await fax_desk.post(body, signature)
    assert status == 401, why
    assert "error" in answer
    assert fax_desk.app.spool.pending() == []


async def test_body_changed_after_signing_is_rejected(fax_desk: FaxDesk) -> None:
    body = form(fields(), b"%PDF-1.4 tiny", "fax.pdf", "application/pdf")
    status, _ = await fax_desk.post(body.replace(b"FX-1001", b"FX-6666"), signed(body))
    assert status == 401


async def test_duplicate_fax_id_is_idempotent(fax_desk: FaxDesk) -> None:
    body = form(fields("FX-3003"), b"%PDF-1.4 tiny", "fax.pdf", "application/pdf")
    first = await fax_desk.post(body, signed(body))
    second = await fax_desk.post(body, signed(body))
    assert first[0] == second[0] == 200
    assert second[1]["duplicate"] is True
    assert second[1]["spool_id"] == first[1]["spool_id"]
    assert len(fax_desk.app.spool.pending()) == 1


async def test_size_page_and_type_limits(fax_desk: FaxDesk) -> None:
    big = form(fields("FX-4004"), b"%PDF-1.4 " + b"x" * 2_100_000, "fax.pdf", "application/pdf")
    assert (await fax_desk.post(big, signed(big)))[0] == 413
    many = form({**fields("FX-4005"), "pages": "50"}, b"%PDF-1.4 x", "f.pdf", "application/pdf")
    assert (await fax_desk.post(many, signed(many)))[0] == 413
    html = form(fields("FX-4006"), b"<html>not a fax</html>", "f.html", "text/html")
    assert (await fax_desk.post(html, signed(html)))[0] == 415
    no_id = form({"from": "+15125550100"}, b"%PDF-1.4 x", "f.pdf", "application/pdf")
    assert (await fax_desk.post(no_id, signed(no_id)))[0] == 400
    assert fax_desk.app.spool.pending() == []


async def send_gateway_email(
    fax_desk: FaxDesk,
    auth_header: str | None,
    subject: str,
    message_id: str,
    mail_from: str,
) -> None:
    """A fax-gateway email with a PDF fax attached, over SMTP from the trusted peer."""
    msg = EmailMessage()
    if auth_header:
        msg["Authentication-Results"] = auth_header
    msg["From"] = "eFax Service <fax-gateway@efax.example>"
    msg["To"] = REQUEST_ADDRESS
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("You have received a 1 page fax. See the attachment.\n")
    msg.add_attachment(
        pdf_bytes([render_page(REQUEST_LINES)]),
        maintype="application",
        subtype="pdf",
        filename="fax-1.pdf",
    )

    def go() -> None:
        with smtplib.SMTP("127.0.0.1", fax_desk.smtp_port, timeout=30) as client:
            client.sendmail(mail_from, [REQUEST_ADDRESS], msg.as_bytes())

    await asyncio.to_thread(go)
    await fax_desk.process()


async def test_fax_gateway_email_is_ocrd_like_a_fax(fax_desk: FaxDesk) -> None:
    await send_gateway_email(
        fax_desk,
        # as the boundary MTA hands it over: the gateway's own domain authenticated
        "le-intake.local; dkim=pass header.d=efax.example; dmarc=pass header.from=efax.example",
        "New fax from +1 512-424-2999, 1 page",
        "<efax-1@efax.example>",
        "bounce@efax.example",
    )
    [summary] = await fax_desk.app.store.list_cases()
    case = await fax_desk.app.store.get_case(summary["id"])
    assert case is not None
    assert case["channel"] == "fax-email"
    assert case["status"] == "held"
    assert case["emergency"] is True
    # the number in the Subject is text anyone can type: no calling number, no agency
    assert case["agency"] is None
    assert case["sender"] == "fax:unknown"
    assert "fax_number_in_directory" not in case["messages"][0]["reasons"]
    assert ("username", "lonestar_tips") in {(i["kind"], i["value"]) for i in case["identifiers"]}
    assert case["messages"][0]["attachments_removed"][0]["filename"] == "fax-1.pdf"


def test_webhook_without_a_secret_is_closed(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert settings.fax.webhook_secret is None  # the demo config: 503 until configured
    assert SystemClock().now()  # (clock seam used by the webhook's replay window)


@pytest.mark.parametrize(
    "auth_header",
    [
        None,  # a bare forged From, from any MAIL FROM
        "le-intake.local; dkim=pass header.d=attacker.example; dmarc=fail header.from=efax.example",
    ],
)
async def test_a_forged_fax_gateway_from_is_ordinary_mail(
    fax_desk: FaxDesk, auth_header: str | None
) -> None:
    """Anyone can write From: fax-gateway@efax.example: without the gateway's domain
    authenticated, the mail is not a fax, the gate decides (efax.example is no agency),
    and the number typed into the Subject names no agency and pages nobody."""
    await send_gateway_email(
        fax_desk,
        auth_header,
        "New fax from +1 512-424-2999, 1 page: Emergency Disclosure Request",
        "<forged-fax@attacker.example>",
        "anyone@attacker.example",
    )
    assert await fax_desk.app.store.list_cases() == []
    [row] = await fax_desk.app.store.messages_by_message_id("<forged-fax@attacker.example>")
    assert row.outcome == "dropped"
    assert row.channel == "email"
    assert {"fax_gateway_unauthenticated", "non_le_domain"} <= set(row.reasons)
    assert fax_desk.hooks.pages == []
