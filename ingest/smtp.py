"""The SMTP channel: aiosmtpd on the application's own event loop.

The listener decides only what SMTP must decide — is the recipient ours (550 if not),
is the message too large (552), are there too many sessions (421) — and spools. It does
no parsing and no NLP: 250 means "the bytes and envelope are fsynced in the spool", and
everything else happens in the runner. Any internal error answers 451 (try again later)
with a fixed text: exception details never reach the client.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from config.settings import SmtpSettings
from ingest.envelope import Envelope as SpoolEnvelope
from ingest.spool import PRIORITY_NORMAL, PRIORITY_URGENT, GroupCommit, Spool
from le_intake.clock import Clock

log = logging.getLogger("le_intake.smtp")

REPLY_OK = "250 2.0.0 Message accepted for delivery"
REPLY_TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
REPLY_NO_SUCH_USER = "550 5.1.1 Recipient address rejected: not a request address"
REPLY_BUSY = "421 4.7.0 Too many connections, try again later"

# A cheap look at the Subject in the raw header block, to put emergencies first in the
# spool's order. Not a parse: the runner decides what the message really is.
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_EMERGENCY_HINT = re.compile(rb"^subject:[^\n]*emergency[^\n]*disclosure", re.I | re.M)


def spool_priority(raw: bytes) -> int:
    end = _HEADER_END.search(raw, 0, 64 * 1024)
    head = raw[: end.start() if end else 64 * 1024]
    return PRIORITY_URGENT if _EMERGENCY_HINT.search(head) else PRIORITY_NORMAL


def split_address(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().lower().rpartition("@")
    return local, domain


class RequestAddresses:
    """The addresses we take mail for; ``local+anything@domain`` counts as ``local@domain``
    (sub-addresses carry reply tokens)."""

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self.addresses = frozenset(a.lower() for a in addresses)

    def canonical(self, address: str) -> str | None:
        local, domain = split_address(address)
        base = local.split("+", 1)[0]
        candidate = f"{base}@{domain}"
        return candidate if candidate in self.addresses else None


class IntakeHandler:
    def __init__(
        self,
        spool: Spool,
        addresses: RequestAddresses,
        clock: Clock,
        on_spooled: Callable[[str], None] = lambda item_id: None,
    ) -> None:
        self.spool = spool
        self.commit = GroupCommit(spool)
        self.addresses = addresses
        self.clock = clock
        self.on_spooled = on_spooled

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.addresses.canonical(address) is None:
            return REPLY_NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        peer = session.peer
        spool_envelope = SpoolEnvelope(
            mail_from=_safe(envelope.mail_from or ""),
            rcpt_tos=tuple(_safe(r) for r in envelope.rcpt_tos),
            received_at=self.clock.now(),
            peer=f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else _safe(str(peer)),
            helo=_safe(session.host_name or "") or None,
            channel="email",
        )
        # Shielded inside: if the client drops now, the write still finishes, and the
        # runner simply gets a message whose sender never saw 250 (harmless: we keep it).
        item_id = await self.commit.put(raw, spool_envelope, spool_priority(raw))
        self.on_spooled(item_id)
        log.info("spooled", extra={"spool_id": item_id, "size": len(raw)})
        return f"{REPLY_OK} as {item_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp session error", extra={"error": type(error).__name__}, exc_info=error)
        return REPLY_TEMPFAIL


def _safe(value: str) -> str:
    """Envelope strings may carry surrogate-escaped bytes; keep them printable."""
    return value.encode("utf-8", "replace").decode("utf-8", "replace")[:998].replace("\n", " ")


class IntakeSMTP(SMTP):
    """aiosmtpd's server with our line limit and a session counter."""

    def __init__(self, *args: Any, line_limit: int, counter: SessionCounter, **kwargs: Any):
        self.line_length_limit = line_limit
        super().__init__(*args, **kwargs)
        self._counter = counter

    def connection_lost(self, error: Exception | None) -> None:
        self._counter.release()
        super().connection_lost(error)


class SessionCounter:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def acquire(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def release(self) -> None:
        self.active = max(0, self.active - 1)


class _Refuse(asyncio.Protocol):
    """Answers 421 and hangs up: the cap on concurrent sessions."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write((REPLY_BUSY + "\r\n").encode("ascii"))
        transport.close()


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if not (settings.tls_cert_file and settings.tls_key_file):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


async def start_smtp_server(
    settings: SmtpSettings, handler: IntakeHandler, host: str | None = None, port: int | None = None
) -> asyncio.Server:
    loop = asyncio.get_running_loop()
    counter = SessionCounter(settings.max_sessions)
    context = tls_context(settings)

    def factory() -> asyncio.BaseProtocol:
        if not counter.acquire():
            return _Refuse()
        return IntakeSMTP(
            handler,
            line_limit=settings.max_line_bytes,
            counter=counter,
            data_size_limit=settings.max_message_bytes,
            hostname=settings.hostname,
            ident="le-intake",
            timeout=settings.command_timeout_seconds,
            tls_context=context,
            loop=loop,
        )

    return await loop.create_server(
        factory,
        host=settings.host if host is None else host,
        port=settings.port if port is None else port,
    )
