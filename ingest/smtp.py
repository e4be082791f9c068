"""The SMTP channel: aiosmtpd on the application's own event loop.

The listener decides only what SMTP must decide — is the recipient ours (550 if not),
is the message too large (552), are there too many sessions (421) — and spools. It does
no parsing and no NLP: 250 means "the bytes and envelope are fsynced in the spool", and
everything else happens in the runner. Any internal error answers 451 (try again later)
with a fixed text: exception details never reach the client.

It is also the part that faces hostile clients (RFC 5321 §4.5.3), so it bounds what a
client may hold: sessions per address with a share kept free for the boundary MTA
(``auth.trusted_peers``), repeats of the cheap commands, how long a session lives, how long
a command line is, how many recipients a message has, how long DATA may stall or last. It
refuses envelope addresses with control characters or non-LDH domains, and header blocks
that two parsers would read two ways, before anything reaches the spool.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import re
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session, syntax

from config.settings import SmtpSettings
from core.addresses import RequestAddresses
from core.clock import Clock
from core.envelope import Envelope as SpoolEnvelope
from ingest.header_block import header_block_problem
from ingest.spool import PRIORITY_NORMAL, PRIORITY_URGENT, GroupCommit, Spool

log = logging.getLogger("le_intake.smtp")

REPLY_OK = "250 2.0.0 Message accepted for delivery"
REPLY_TEMPFAIL = "451 4.3.0 Temporary failure, please try again later"
REPLY_NO_SUCH_USER = "550 5.1.1 Recipient address rejected: not a request address"
REPLY_BUSY = "421 4.7.0 Too many connections, try again later"
REPLY_PEER_BUSY = "421 4.7.0 Too many connections from your address, try again later"
REPLY_IDLE_TIMEOUT = "421 4.4.2 Timeout waiting for a command, closing connection"
REPLY_DATA_TIMEOUT = "421 4.4.2 Timeout during DATA, closing connection"
REPLY_SESSION_TOO_LONG = "421 4.4.2 Session time limit reached, closing connection"
REPLY_LINE_TOO_LONG = "500 5.5.2 Line too long"
REPLY_BAD_ADDRESS = "501 5.1.3 Bad address syntax"
REPLY_BAD_HELO = "501 5.5.4 Bad HELO/EHLO argument"
REPLY_TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
REPLY_MALFORMED_HEADER = "550 5.6.0 Malformed header block: {reason}"

# aiosmtpd's own replies that we word as RFC 5321 asks: a command line over its limit, and
# an address its parser cannot read (a syntax error is 501; 553 means "not allowed").
_REWORDED = {
    "500 Command line too long": REPLY_LINE_TOO_LONG,
    "553 5.1.3 Error: malformed address": REPLY_BAD_ADDRESS,
}
# The commands a client can repeat without ever sending mail (each resets the idle timer):
# limited per session by smtp.command_call_limit. The others (MAIL, RCPT, DATA, QUIT) are
# bounded by the recipient cap and the session lifetime instead.
_LIMITED_COMMANDS = ("NOOP", "RSET", "HELP", "VRFY", "EXPN", "HELO", "EHLO", "STARTTLS", "AUTH")
_UNLIMITED = 2**31
# Above this size the header-block check runs in a thread: it walks the header block line
# by line in Python (~0.5 s for a 1 MiB block of short lines), which must not stall the
# other sessions on the loop. Below it the check takes well under a millisecond.
_HEADER_CHECK_INLINE_BYTES = 16 * 1024

# A cheap look at the Subject in the raw header block, to put emergencies first in the
# spool's order. Not a parse: the runner decides what the message really is.
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_EMERGENCY_HINT = re.compile(rb"^subject:[^\n]*emergency[^\n]*disclosure", re.I | re.M)

# C0 controls and DEL. In an envelope address they are never legitimate; a trailing CR
# (a shell variable read from a CRLF file) is the common accident, NUL the common attack.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# RFC 5321 sub-domain: letters, digits and hyphens, not starting or ending with a hyphen.
_LDH_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_NULL_SENDER = "<>"  # what aiosmtpd's parser returns for MAIL FROM:<> (bounces)
# RFC 5321 §4.5.3.1.3 allows a path of 256 octets with its angle brackets: 254 inside.
_MAX_ADDRESS = 254


# Emergencies nobody has vouched for yet: ahead of ordinary mail, behind the ones our
# boundary MTA authenticated, so a flood of forged emergencies cannot delay a real one.
PRIORITY_UNVERIFIED_URGENT = 3


def spool_priority(raw: bytes, vouched: Callable[[], bool] = lambda: True) -> int:
    """The spool lane: an emergency subject goes first when ``vouched`` says the boundary
    MTA already authenticated the sender, else to the lower emergency lane."""
    end = _HEADER_END.search(raw, 0, 64 * 1024)
    head = raw[: end.start() if end else 64 * 1024]
    if not _EMERGENCY_HINT.search(head):
        return PRIORITY_NORMAL
    return PRIORITY_URGENT if vouched() else PRIORITY_UNVERIFIED_URGENT


def domain_problem(domain: str) -> str | None:
    """Why ``domain`` is not an RFC 5321 domain (LDH labels, or an address literal), or
    None. ``evil.example%fbi.gov`` is refused: %-hacks and other non-LDH bytes let the
    envelope name a domain that different readers cut in different places."""
    if domain.startswith("[") and domain.endswith("]"):
        literal = domain[1:-1]
        try:
            if literal[:5].lower() == "ipv6:":
                ipaddress.IPv6Address(literal[5:])
            else:
                ipaddress.IPv4Address(literal)
        except ValueError:
            return "bad address literal"
        return None
    if not domain:
        return "empty domain"
    if len(domain) > 253:
        return "domain too long"
    if not all(_LDH_LABEL.match(label) for label in domain.split(".")):
        return "domain labels are not letters, digits and hyphens"
    return None


def address_problem(address: str, *, domain_required: bool) -> str | None:
    """Why an envelope address is refused with 501, or None.

    Control characters anywhere (CR, LF, NUL, any C0, DEL), more than 254 octets and a
    malformed domain are refused. ``domain_required`` is for MAIL FROM (RFC 5321 has no
    bare local part there; the null sender ``<>`` of bounces is fine); RCPT TO without a
    domain is left to the recipient check (550), as RFC 5321 lets ``<postmaster>`` through
    the syntax.
    """
    if _CONTROL.search(address):
        return "control character in address"
    if address == _NULL_SENDER:
        return None
    if len(address) > _MAX_ADDRESS:
        return "address too long"
    local, at, domain = address.rpartition("@")
    if not at:
        return "address has no domain" if domain_required else None
    if not local:
        return "empty local part"
    return domain_problem(domain)


def _peer_text(peer: object) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return _safe(str(peer))


# The settings a handler falls back to when it is driven by a plain aiosmtpd SMTP.
_DEFAULT_SMTP = SmtpSettings()


class IntakeHandler:
    def __init__(
        self,
        spool: Spool,
        addresses: RequestAddresses,
        clock: Clock,
        on_spooled: Callable[[str], None] = lambda item_id: None,
        vouched: Callable[[bytes, str], bool] = lambda raw, peer: False,
    ) -> None:
        self.spool = spool
        self.commit = GroupCommit(spool)
        self.addresses = addresses
        self.clock = clock
        self.on_spooled = on_spooled
        # Does the boundary MTA's Authentication-Results pass this From? (urgent lane)
        self.vouched = vouched

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """Refuse a sender address that is not clean RFC 5321 syntax (501), so nothing
        downstream (gate, replies, logs) ever sees a CR, NUL or ``%``-domain in it.
        Defining this hook means aiosmtpd leaves recording the sender to us."""
        problem = address_problem(address, domain_required=True)
        if problem is not None:
            _refused(problem, session, "MAIL")
            return REPLY_BAD_ADDRESS
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        problem = address_problem(address, domain_required=False)
        if problem is not None:
            _refused(problem, session, "RCPT")
            return REPLY_BAD_ADDRESS
        if self.addresses.canonical(address) is None:
            return REPLY_NO_SUCH_USER
        # One recipient once, whatever its case: a repeat is answered 250 (RFC 5321 lets
        # the server accept duplicates) but not stored again.
        key = address.lower()
        if any(known.lower() == key for known in envelope.rcpt_tos):
            return "250 2.1.5 OK"
        if len(envelope.rcpt_tos) >= _settings_of(server).max_recipients:
            _refused("too many recipients", session, "RCPT")
            return REPLY_TOO_MANY_RCPTS
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if isinstance(server, IntakeSMTP):
            server.end_of_data()
        raw = envelope.original_content or envelope.content
        if not isinstance(raw, bytes):
            raw = str(raw).encode("utf-8", "surrogateescape")
        strict = _settings_of(server).strict_header_newlines
        if len(raw) <= _HEADER_CHECK_INLINE_BYTES:
            problem = header_block_problem(raw, strict)
        else:
            problem = await asyncio.to_thread(header_block_problem, raw, strict)
        if problem is not None:
            # Permanent: the same bytes would be refused again. Nothing is spooled, and
            # the line says why and from where, never what the message said.
            _refused(problem, session, "DATA")
            return REPLY_MALFORMED_HEADER.format(reason=problem)
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
        priority = spool_priority(raw, lambda: self.vouched(raw, spool_envelope.peer or ""))
        item_id = await self.commit.put(raw, spool_envelope, priority)
        self.on_spooled(item_id)
        log.info("spooled", extra={"spool_id": item_id, "size": len(raw)})
        return f"{REPLY_OK} as {item_id}"

    async def handle_exception(self, error: Exception) -> str:
        log.error("smtp session error", extra={"error": type(error).__name__}, exc_info=error)
        return REPLY_TEMPFAIL


def _settings_of(server: SMTP) -> SmtpSettings:
    return server.settings if isinstance(server, IntakeSMTP) else _DEFAULT_SMTP


def _refused(reason: str, session: Session | None, command: str) -> None:
    """One line per refusal: the reason, the command and the peer; no content."""
    peer = _peer_text(session.peer) if session is not None else "?"
    log.info("smtp refused", extra={"reason": reason, "command": command, "peer": peer})


def _safe(value: str) -> str:
    """Envelope strings may carry surrogate-escaped bytes or control characters (a HELO
    name is free text); keep them printable and one line."""
    text = value.encode("utf-8", "replace").decode("utf-8", "replace")[:998]
    return _CONTROL.sub(" ", text)


def _set_read_limit(reader: asyncio.StreamReader, limit: int) -> None:
    """asyncio fixes a StreamReader's limit at construction (``_limit``: the longest line
    ``readuntil`` returns, and twice it is the buffer level at which reading pauses).
    aiosmtpd reads commands and DATA through one reader, so the limit is switched around
    DATA: a command line is refused at a few KiB instead of being buffered up to the DATA
    line limit (25 MiB by default) on every junk connection."""
    reader._limit = limit  # type: ignore[attr-defined]


def _path_problem(arg: str | None, keyword: str) -> str | None:
    """What is wrong with a MAIL/RCPT argument before aiosmtpd parses it, or None.

    Checked on the raw argument because aiosmtpd's address parser silently drops some
    controls (``<a@b\r>`` becomes ``a@b``) and reads an unclosed ``<a@b`` as ``a@b`` — what
    is left of the command when a LF inside the address ended the line early.
    """
    if arg is None:
        return None
    if _CONTROL.search(arg):
        return "control character in address"
    if arg[: len(keyword)].upper() == keyword:
        path = arg[len(keyword) :].lstrip()
        if path.startswith("<") and ">" not in path:
            return "unterminated path"
    return None


def _call_limits(limit: int) -> dict[str, int]:
    return {**dict.fromkeys(_LIMITED_COMMANDS, limit), "*": _UNLIMITED}


class IntakeSMTP(SMTP):
    """aiosmtpd's server with our limits and timers.

    Timers: between commands, ``command_timeout_seconds`` of silence closes the session
    (aiosmtpd's idle timer, restarted by each command). In DATA the idle timer becomes
    RFC 5321's: at most ``data_block_timeout_seconds`` between two blocks of data and
    ``final_dot_timeout_seconds`` from the 354 to the final dot, so a slow but steady
    sender of a large message gets through and one that stops is cut off without a 250.
    ``max_session_seconds`` bounds the whole session (a transaction under way finishes
    first: DATA has its own deadline). Every close by timer sends a 421 first.
    """

    def __init__(
        self,
        handler: Any,
        *,
        settings: SmtpSettings,
        trusted: bool,
        on_close: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        self.settings = settings
        self.trusted = trusted
        # aiosmtpd sizes its one StreamReader from line_length_limit at construction:
        # start at the command-line cap; DATA switches to max_line_bytes (_enter_data).
        self.line_length_limit = settings.max_command_line_bytes
        # Per instance: aiosmtpd keeps these on the class, shared by all sessions, and
        # compares each command with them only after reading it whole.
        self.command_size_limit = settings.max_command_line_bytes
        limit = settings.max_command_line_bytes
        self.command_size_limits = collections.defaultdict(lambda: limit)
        super().__init__(
            handler,
            data_size_limit=settings.max_message_bytes,
            hostname=settings.hostname,
            timeout=settings.command_timeout_seconds,
            # the boundary MTA reuses sessions (RSET before each reuse): no call limit
            command_call_limit=None if trusted else _call_limits(settings.command_call_limit),
            **kwargs,
        )
        self._on_close: Callable[[], None] | None = on_close
        self._in_data = False  # reading DATA: the data-block and final-dot timers apply
        self._in_transaction = False  # inside the DATA command, reply not yet sent
        self._data_started = 0.0
        self._last_data = 0.0
        self._expired = False
        self._lifetime: asyncio.TimerHandle | None = None

    # -- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._lifetime is None and self.transport is None
        super().connection_made(transport)
        if first:  # not the second call that STARTTLS makes
            self._lifetime = self.loop.call_later(
                self.settings.max_session_seconds, self._lifetime_over
            )

    def connection_lost(self, error: Exception | None) -> None:
        if self._lifetime is not None:
            self._lifetime.cancel()
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if self._in_data:
            self._last_data = self.loop.time()
        super().data_received(data)

    async def push(self, status: Any) -> None:
        await super().push(_REWORDED.get(status, status) if isinstance(status, str) else status)

    def _close_with(self, reply: str, reason: str) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        peer = _peer_text(self.session.peer) if self.session is not None else "?"
        log.info("smtp session closed", extra={"reason": reason, "peer": peer})
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(reply.encode("ascii") + b"\r\n")
        transport.close()  # flushes the reply; connection_lost cancels the handler

    # -- timers -------------------------------------------------------------------------
    def _timeout_cb(self) -> None:
        """aiosmtpd's idle timer fired (also armed by _enter_data for DATA)."""
        if self.transport is None:
            return
        if not self._in_data:
            self._close_with(REPLY_IDLE_TIMEOUT, "idle timeout")
            return
        now = self.loop.time()
        final = self._data_started + self.settings.final_dot_timeout_seconds
        block = self._last_data + self.settings.data_block_timeout_seconds
        deadline = min(final, block)
        if now < deadline:  # data arrived since the timer was armed
            self._timeout_handle = self.loop.call_later(deadline - now, self._timeout_cb)
            return
        reason = "final-dot timeout" if final <= block else "data-block timeout"
        self._close_with(REPLY_DATA_TIMEOUT, reason)

    def _lifetime_over(self) -> None:
        if self._in_transaction:
            self._expired = True  # closed right after this message's reply
            return
        self._close_with(REPLY_SESSION_TOO_LONG, "session time limit")

    def _enter_data(self) -> None:
        now = self.loop.time()
        self._data_started = self._last_data = now
        self._in_data = self._in_transaction = True
        self.line_length_limit = self.settings.max_line_bytes
        _set_read_limit(self._reader, self.settings.max_line_bytes)
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        first = min(
            self.settings.data_block_timeout_seconds, self.settings.final_dot_timeout_seconds
        )
        self._timeout_handle = self.loop.call_later(first, self._timeout_cb)

    def end_of_data(self) -> None:
        """The final dot is in (the handler calls this): from here to the reply, the
        ordinary command timeout applies instead of the DATA timers."""
        self._in_data = False
        if self.transport is not None:
            self._reset_timeout()

    def _leave_data(self) -> None:
        self._in_data = self._in_transaction = False
        self.line_length_limit = self.settings.max_command_line_bytes
        _set_read_limit(self._reader, self.settings.max_command_line_bytes)
        if self.transport is None or self.transport.is_closing():
            return  # lost or closed meanwhile: no timer on a dead session
        self._reset_timeout()
        if self._expired:
            self._close_with(REPLY_SESSION_TOO_LONG, "session time limit")

    # -- commands -----------------------------------------------------------------------
    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._enter_data()
        try:
            await super().smtp_DATA(arg)
        finally:
            self._leave_data()

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        problem = _path_problem(arg, "FROM:")
        if problem is not None:
            _refused(problem, self.session, "MAIL")
            await self.push(REPLY_BAD_ADDRESS)
            return
        await super().smtp_MAIL(arg)

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        problem = _path_problem(arg, "TO:")
        if problem is not None:
            _refused(problem, self.session, "RCPT")
            await self.push(REPLY_BAD_ADDRESS)
            return
        await super().smtp_RCPT(arg)

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str) -> None:
        if hostname and _CONTROL.search(hostname):
            await self.push(REPLY_BAD_HELO)
            return
        await super().smtp_HELO(hostname)

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str) -> None:
        if hostname and _CONTROL.search(hostname):
            await self.push(REPLY_BAD_HELO)
            return
        await super().smtp_EHLO(hostname)


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def peer_identity(peer: object) -> tuple[str, IPAddress | None]:
    """The key sessions are counted under, and the address if the peer has one.

    IPv4-mapped IPv6 addresses count as their IPv4 address; other IPv6 addresses count by
    their /64, the block one host is usually given, so one client cannot dodge the
    per-peer cap by rotating through its own addresses.
    """
    host = peer[0] if isinstance(peer, tuple) and peer else peer
    text = str(host)
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text, None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False)), address
    return str(address), address


class SessionLimits:
    """Who may open a session now.

    At most ``max_sessions`` in all. Trusted peers (the boundary MTA, ``auth.trusted_peers``)
    may use all of them; everyone else shares what is left after
    ``floor(max_sessions * trusted_reserved_share)`` slots kept for the trusted, and no one
    untrusted address holds more than ``max_sessions_per_peer``. So strangers, however
    many, can never lock the boundary MTA out.
    """

    def __init__(self, settings: SmtpSettings, trusted_peers: Iterable[str] = ()) -> None:
        self.max_sessions = settings.max_sessions
        self.reserved = int(settings.max_sessions * settings.trusted_reserved_share)
        self.max_per_peer = settings.max_sessions_per_peer
        self._trusted_names: set[str] = set()
        self._trusted_addresses: set[IPAddress] = set()
        for name in trusted_peers:
            key, address = peer_identity(name.strip())
            if address is None:
                self._trusted_names.add(key)
            else:
                self._trusted_addresses.add(address)
        self.active = 0
        self.untrusted = 0
        self._by_peer: dict[str, int] = {}

    def identify(self, peer: object) -> tuple[str, bool]:
        key, address = peer_identity(peer)
        trusted = (
            address in self._trusted_addresses
            if address is not None
            else key in self._trusted_names
        )
        return key, trusted

    def admit(self, key: str, trusted: bool) -> str | None:
        """Take a slot; or the 421 reply that refuses one."""
        if self.active >= self.max_sessions:
            return REPLY_BUSY
        if not trusted:
            if self.untrusted >= self.max_sessions - self.reserved:
                return REPLY_BUSY
            held = self._by_peer.get(key, 0)
            if held >= self.max_per_peer:
                return REPLY_PEER_BUSY
            self._by_peer[key] = held + 1
            self.untrusted += 1
        self.active += 1
        return None

    def release(self, key: str, trusted: bool) -> None:
        self.active = max(0, self.active - 1)
        if trusted:
            return
        self.untrusted = max(0, self.untrusted - 1)
        held = self._by_peer.pop(key, 0) - 1
        if held > 0:
            self._by_peer[key] = held


class _Admission(asyncio.Protocol):
    """First protocol of every connection: knows the peer (a protocol factory does not),
    takes a slot or answers 421 and hangs up, and hands an admitted connection over to a
    new IntakeSMTP. Refusing here costs no aiosmtpd session set-up."""

    def __init__(
        self, limits: SessionLimits, build: Callable[[bool, Callable[[], None]], IntakeSMTP]
    ) -> None:
        self.limits = limits
        self.build = build

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        key, trusted = self.limits.identify(peer)
        refusal = self.limits.admit(key, trusted)
        if refusal is not None:
            reason = refusal.split(" ", 2)[2]
            log.info("smtp refused", extra={"reason": reason, "peer": _peer_text(peer)})
            if isinstance(transport, asyncio.WriteTransport):
                transport.write((refusal + "\r\n").encode("ascii"))
            transport.close()
            return
        try:
            smtp = self.build(trusted, lambda: self.limits.release(key, trusted))
        except Exception:
            self.limits.release(key, trusted)
            transport.close()
            raise
        transport.set_protocol(smtp)
        smtp.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        """Bytes a refused client sent before the close: ignored."""


def tls_context(settings: SmtpSettings) -> ssl.SSLContext | None:
    if not (settings.tls_cert_file and settings.tls_key_file):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context


async def start_smtp_server(
    settings: SmtpSettings,
    handler: IntakeHandler,
    host: str | None = None,
    port: int | None = None,
    *,
    trusted_peers: Iterable[str] = (),
) -> asyncio.Server:
    """Listen for SMTP. ``trusted_peers`` is ``auth.trusted_peers``: the boundary MTA,
    which gets the reserved session share and no per-peer or command-call limit."""
    loop = asyncio.get_running_loop()
    limits = SessionLimits(settings, trusted_peers)
    context = tls_context(settings)

    def build(trusted: bool, on_close: Callable[[], None]) -> IntakeSMTP:
        return IntakeSMTP(
            handler,
            settings=settings,
            trusted=trusted,
            on_close=on_close,
            ident="le-intake",
            tls_context=context,
            loop=loop,
        )

    return await loop.create_server(
        lambda: _Admission(limits, build),
        host=settings.host if host is None else host,
        port=settings.port if port is None else port,
    )
