"""The fax provider's webhook: ``POST /fax/inbound``, authenticated, spooled, idempotent.

The provider signs each call: header ``X-Fax-Signature: t=<unix time>,v1=<hex>`` where the
hex is HMAC-SHA256 over ``"<t>." + body`` with the shared secret. Anything unsigned,
wrongly signed or outside the timestamp window gets 401 and a log line, and nothing is kept.
A signed call is turned into one MIME message (the document attached, the provider's
fields in headers) and spooled durably, exactly like SMTP mail, before 200 is answered; a
fax id seen before is answered 200 again without a second spool item.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError
from sqlalchemy.exc import IntegrityError

from cases.models import FaxReceipt
from cases.repository import CaseStore
from config.settings import Settings
from core.clock import Clock
from core.envelope import Envelope
from ingest.spool import PRIORITY_NORMAL, Spool

log = logging.getLogger("le_intake.fax")

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_NUMBER = re.compile(r"^\+?[0-9 ().-]{3,32}$")
_READ_CHUNK = 256 * 1024
_LINGER_BYTES = 1024 * 1024
_LINGER_SECONDS = 1.0


class FaxRejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The header value a provider sends (used by tests and by ``bench``)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(
    secret: str, header: str, body: bytes, now: datetime, tolerance: float
) -> None:
    fields = dict(p.strip().partition("=")[::2] for p in header.split(",") if "=" in p)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        raise FaxRejected(401, "signature without a timestamp") from None
    if abs(now.timestamp() - timestamp) > tolerance:
        raise FaxRejected(401, "signature timestamp outside the allowed window")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), fields.get("v1", "")):
        raise FaxRejected(401, "bad signature")


async def read_body(request: web.BaseRequest, max_bytes: int, seconds: float) -> bytes:
    """The whole request body, or ``FaxRejected``: 413 past ``max_bytes``, 408 when it
    does not arrive within ``seconds``, 400 when the sender stops short.

    ``StreamReader.read(n)`` returns whatever is buffered, not n bytes: a body that comes
    in several TCP segments must be read until EOF, or the signature is checked over a
    prefix. Reading stops one byte past the limit (a declared ``Content-Length`` over it
    is refused before reading anything), so an oversize or endless body is never held
    in memory; the total time bounds a sender that trickles bytes to hold the handler.
    """
    if (request.content_length or 0) > max_bytes:
        raise FaxRejected(413, "too large")
    body = bytearray()
    try:
        async with asyncio.timeout(seconds):
            while True:
                chunk = await request.content.read(min(_READ_CHUNK, max_bytes + 1 - len(body)))
                if not chunk:
                    break
                body += chunk
                if len(body) > max_bytes:
                    raise FaxRejected(413, "too large")
    except TimeoutError:
        raise FaxRejected(408, "the body did not arrive in time") from None
    except (ConnectionError, ClientPayloadError, HttpProcessingError):
        raise FaxRejected(400, "the body ended before its declared end") from None
    if request.content_length is not None and len(body) != request.content_length:
        raise FaxRejected(400, "the body ended before its declared end")
    return bytes(body)


async def refuse_unread(request: web.Request, exc: FaxRejected) -> web.StreamResponse:
    """Answer a request whose body was not read to its end, then close the connection.

    The rest of the body is never read into memory: after the answer, what keeps coming
    is discarded for at most ``_LINGER_BYTES`` or ``_LINGER_SECONDS`` (time for the
    sender to read the answer before the connection goes), never for as long as the
    sender likes — aiohttp's own lingering would read on for ten seconds per request.
    """
    response = web.json_response({"error": exc.reason}, status=exc.status)
    response.force_close()  # Connection: close
    try:
        await response.prepare(request)
        await response.write_eof()
    except ConnectionError:
        return response  # the sender has gone already
    discarded = 0
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_LINGER_SECONDS):
            while discarded < _LINGER_BYTES:
                chunk = await request.content.readany()
                if not chunk:
                    break
                discarded += len(chunk)
    request.protocol.force_close()
    return response


@dataclass(frozen=True)
class InboundFax:
    fax_id: str
    calling: str
    called: str
    pages: int
    received_at: str
    document: bytes
    content_type: str
    filename: str


def parse_form(content_type: str, body: bytes, max_pages: int) -> InboundFax:
    """multipart/form-data → the fields we need, validated."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise FaxRejected(415, "multipart/form-data expected")
    message: Message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
        + body
    )
    fields: dict[str, str] = {}
    document: tuple[bytes, str, str] | None = None
    for part in message.walk():
        if part.is_multipart():
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if name == "document":
            document = (data, part.get_content_type(), part.get_filename() or "fax")
        else:
            fields[name] = data.decode("utf-8", "replace").strip()[:200]
    if document is None or not document[0]:
        raise FaxRejected(400, "no document")
    fax_id = fields.get("fax_id", "")
    if not _SAFE_ID.match(fax_id):
        raise FaxRejected(400, "fax_id missing or malformed")
    for key in ("from", "to"):
        if fields.get(key) and not _NUMBER.match(fields[key]):
            raise FaxRejected(400, f"{key} is not a phone number")
    try:
        pages = int(fields.get("pages") or 0)
    except ValueError:
        raise FaxRejected(400, "pages is not a number") from None
    if pages > max_pages:
        raise FaxRejected(413, f"more than {max_pages} pages")
    data, ctype, filename = document
    if not (data.startswith(b"%PDF") or data[:4] in (b"II*\x00", b"MM\x00*")):
        raise FaxRejected(415, "the document is neither PDF nor TIFF")
    return InboundFax(
        fax_id,
        fields.get("from", ""),
        fields.get("to", ""),
        pages,
        fields.get("received_at", ""),
        data,
        ctype,
        filename,
    )


def as_message(fax: InboundFax, request_address: str) -> bytes:
    """One RFC 5322 message standing for the fax; deterministic, so a re-spooled fax is
    recognised as a duplicate by its sha256."""
    msg = EmailMessage()
    msg["From"] = "fax <fax@fax.le-intake.invalid>"
    msg["To"] = request_address
    msg["Subject"] = f"Fax from {fax.calling or 'unknown number'} ({fax.pages or '?'} pages)"
    msg["Message-ID"] = f"<{fax.fax_id}@fax.le-intake.invalid>"
    msg["X-Fax-Id"] = fax.fax_id
    msg["X-Fax-Calling-Number"] = fax.calling
    msg["X-Fax-Called-Number"] = fax.called
    msg["X-Fax-Received-At"] = fax.received_at
    msg.set_content("Fax received through the provider webhook; the document is attached.\n")
    maintype, _, subtype = (
        "application/pdf" if fax.document.startswith(b"%PDF") else "image/tiff"
    ).partition("/")
    msg.add_attachment(fax.document, maintype=maintype, subtype=subtype, filename=fax.filename)
    return msg.as_bytes()


class FaxWebhook:
    def __init__(
        self,
        settings: Settings,
        spool: Spool,
        store: CaseStore,
        clock: Clock,
        on_spooled: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.spool = spool
        self.store = store
        self.clock = clock
        self.on_spooled = on_spooled

    async def handle(self, request: web.Request) -> web.StreamResponse:
        config = self.settings.fax
        peer = request.remote or "?"
        if not (config.enabled and config.webhook_secret):
            return web.json_response({"error": "fax intake is not configured"}, status=503)
        try:
            body = await read_body(request, config.max_bytes, config.read_timeout_seconds)
        except FaxRejected as exc:
            log.warning("fax rejected", extra={"peer": peer, "reason": exc.reason})
            return await refuse_unread(request, exc)
        try:
            verify_signature(
                config.webhook_secret,
                request.headers.get(config.signature_header, ""),
                body,
                self.clock.now(),
                config.timestamp_tolerance_seconds,
            )
            fax = parse_form(request.headers.get("Content-Type", ""), body, config.max_pages)
        except FaxRejected as exc:
            log.warning("fax rejected", extra={"peer": peer, "reason": exc.reason})
            return web.json_response({"error": exc.reason}, status=exc.status)
        async with self.store.sessions() as session:
            seen = await session.get(FaxReceipt, fax.fax_id)
        if seen is not None:
            return web.json_response(
                {"fax_id": fax.fax_id, "duplicate": True, "spool_id": seen.spool_id}
            )
        raw = as_message(fax, self.settings.smtp.default_request_address)
        envelope = Envelope(
            mail_from="",
            rcpt_tos=(self.settings.smtp.default_request_address,),
            received_at=self.clock.now(),
            peer=peer,
            helo=None,
            channel="fax-webhook",
            extra={
                "fax_id": fax.fax_id,
                "calling": fax.calling,
                "called": fax.called,
                "pages": str(fax.pages),
            },
        )
        spool_id = await asyncio.shield(
            asyncio.to_thread(self.spool.put, raw, envelope, PRIORITY_NORMAL)
        )
        try:
            async with self.store.sessions() as session, session.begin():
                session.add(
                    FaxReceipt(
                        fax_id=fax.fax_id,
                        spool_id=spool_id,
                        received_at=datetime.now(UTC),
                        sha256=hashlib.sha256(raw).hexdigest(),
                    )
                )
        except IntegrityError:
            pass  # a concurrent delivery of the same fax: the store dedups by sha256
        self.on_spooled(spool_id)
        log.info("fax spooled", extra={"spool_id": spool_id, "pages": fax.pages})
        return web.json_response({"fax_id": fax.fax_id, "duplicate": False, "spool_id": spool_id})
