"""The SMTP listener under hostile clients (RFC 5321 §4.5.3) and envelope hygiene.

Every test drives a real aiosmtpd listener on loopback with real sockets (hand-written
SMTP where a well-behaved client could not say it, smtplib where it can) and looks at the
real spool. Strangers connect from other loopback addresses (127.0.0.2, …); 127.0.0.1 is
the trusted peer (the boundary MTA). Timeouts are configured small so each test takes
seconds; nothing asserts on time, only on what the server answered and kept.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import select
import smtplib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from config.settings import SmtpSettings
from core.addresses import RequestAddresses
from core.clock import SystemClock
from core.envelope import Envelope
from ingest.smtp import (
    REPLY_BAD_ADDRESS,
    REPLY_BUSY,
    REPLY_DATA_TIMEOUT,
    REPLY_IDLE_TIMEOUT,
    REPLY_LINE_TOO_LONG,
    REPLY_PEER_BUSY,
    REPLY_SESSION_TOO_LONG,
    REPLY_TOO_MANY_RCPTS,
    IntakeHandler,
    SessionLimits,
    address_problem,
    domain_problem,
    peer_identity,
    start_smtp_server,
)
from ingest.spool import Spool
from le_intake.logs import JsonFormatter
from tests.conftest import LE_SENDER, REQUEST_ADDRESS, make_settings

TRUSTED = "127.0.0.1"
T = TypeVar("T")


@dataclass
class Server:
    port: int
    spool: Spool
    settings: SmtpSettings

    def spooled(self) -> list[tuple[bytes, Envelope]]:
        """What the spool holds: acknowledged items in new/, and nothing half-written."""
        assert list(self.spool.tmp.iterdir()) == []
        items = []
        for item_id in self.spool.pending():
            item = self.spool.claim(item_id)
            assert item is not None
            items.append(item.read())
        return items


@asynccontextmanager
async def listening(tmp_path: Path, **smtp: Any) -> AsyncIterator[Server]:
    """The listener as ``le-intake serve`` builds it (the app's IntakeHandler on a real
    spool), with ``auth.trusted_peers`` handed in, on a free loopback port."""
    settings = make_settings(tmp_path, smtp=smtp)
    spool = Spool(settings.spool_dir)
    handler = IntakeHandler(spool, RequestAddresses(settings.smtp.request_addresses), SystemClock())
    server = await start_smtp_server(
        settings.smtp, handler, "127.0.0.1", 0, trusted_peers=(TRUSTED, "::1", "replay")
    )
    try:
        yield Server(server.sockets[0].getsockname()[1], spool, settings.smtp)
    finally:
        server.close()
        await server.wait_closed()


class Client:
    """A hand-driven SMTP client from a chosen loopback address."""

    def __init__(self, port: int, source: str = TRUSTED, timeout: float = 15) -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
        )
        self.reader = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self) -> bytes:
        """One (possibly multi-line) reply; b"" once the server has closed."""
        text = b""
        while True:
            try:
                line = self.reader.readline()
            except ConnectionResetError:
                return text
            text += line
            if len(line) < 4 or line[3:4] != b"-":
                return text

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def command(self, line: bytes) -> bytes:
        self.send(line + b"\r\n")
        return self.reply()

    def envelope(self, mail_from: bytes = LE_SENDER.encode(), rcpt: bytes = b"") -> None:
        assert self.command(b"EHLO client.test").startswith(b"250")
        assert self.command(b"MAIL FROM:<" + mail_from + b">").startswith(b"250")
        rcpt = rcpt or REQUEST_ADDRESS.encode()
        assert self.command(b"RCPT TO:<" + rcpt + b">").startswith(b"250")

    def server_closed(self) -> bool:
        try:
            return self.reader.read() == b""
        except (ConnectionResetError, TimeoutError):
            return False

    def readable(self) -> bool:
        return bool(select.select([self.sock], [], [], 0)[0])

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def in_thread(func: Callable[[], T]) -> T:
    return await asyncio.to_thread(func)


def line(reply: str) -> bytes:
    return reply.encode("ascii") + b"\r\n"


def crlf_message(headers: bytes = b"", body: bytes = b"Please preserve the records.\r\n") -> bytes:
    return (
        b"From: Agent Smith <agent.smith@fbi.gov>\r\nTo: lawenforcement@example-platform.com\r\n"
        + headers
        + b"Subject: Subpoena\r\nMessage-ID: <hostile@fbi.gov>\r\n\r\n"
        + body
    )


def smtplib_send(port: int, raw: bytes, rcpt: list[str] | None = None) -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as client:
        return client.sendmail(LE_SENDER, rcpt or [REQUEST_ADDRESS], raw)


# -- 1. sessions: per-peer cap, reserve for the trusted, call limits, lifetime ------------


async def test_strangers_cannot_lock_out_the_trusted_peer(tmp_path: Path) -> None:
    """max_sessions=5 with one slot reserved: four strangers idling with NOOP fill their
    share, a fifth stranger gets 421, and the boundary MTA still gets in and delivers."""
    async with listening(
        tmp_path, max_sessions=5, trusted_reserved_share=0.2, max_sessions_per_peer=2
    ) as server:

        def scenario() -> None:
            strangers = [Client(server.port, f"127.0.0.{2 + n // 2}") for n in range(4)]
            try:
                for client in strangers:
                    assert client.greeting.startswith(b"220")
                    assert client.command(b"NOOP").startswith(b"250")
                with Client(server.port, "127.0.0.9") as late:
                    assert late.greeting == line(REPLY_BUSY)
                    assert late.server_closed()
                with Client(server.port, TRUSTED) as mta:
                    assert mta.greeting.startswith(b"220")
                    mta.envelope()
                    assert mta.command(b"DATA").startswith(b"354")
                    mta.send(crlf_message() + b".\r\n")
                    assert mta.reply().startswith(b"250")
            finally:
                for client in strangers:
                    client.close()

        await in_thread(scenario)
        assert len(server.spooled()) == 1


async def test_one_address_holds_at_most_max_sessions_per_peer(tmp_path: Path) -> None:
    async with listening(tmp_path, max_sessions=20, max_sessions_per_peer=2) as server:

        def scenario() -> None:
            first, second = Client(server.port, "127.0.0.2"), Client(server.port, "127.0.0.2")
            assert first.greeting.startswith(b"220")
            assert second.greeting.startswith(b"220")
            with Client(server.port, "127.0.0.2") as third:
                assert third.greeting == line(REPLY_PEER_BUSY)
                assert third.server_closed()
            with Client(server.port, "127.0.0.3") as other:
                assert other.greeting.startswith(b"220")
            assert first.command(b"QUIT").startswith(b"221")
            first.close()
            # the slot is given back when the session ends
            for _ in range(50):
                with Client(server.port, "127.0.0.2") as again:
                    if again.greeting.startswith(b"220"):
                        break
                time.sleep(0.05)
            else:
                pytest.fail("the released slot was never given back")
            second.close()

        await in_thread(scenario)


async def test_trusted_peer_is_not_capped_per_peer_and_may_use_every_slot(
    tmp_path: Path,
) -> None:
    async with listening(
        tmp_path, max_sessions=4, max_sessions_per_peer=1, trusted_reserved_share=0.5
    ) as server:

        def scenario() -> None:
            mta = [Client(server.port, TRUSTED) for _ in range(4)]
            try:
                assert all(c.greeting.startswith(b"220") for c in mta)
                with Client(server.port, TRUSTED) as fifth:
                    assert fifth.greeting == line(REPLY_BUSY)  # the total still holds
            finally:
                for client in mta:
                    client.close()

        await in_thread(scenario)


def test_session_limits_count_ipv6_by_64_and_mapped_ipv4_as_ipv4() -> None:
    assert peer_identity(("2001:db8:1:2::5", 25, 0, 0))[0] == "2001:db8:1:2::/64"
    assert peer_identity(("2001:db8:1:2:ffff::9", 25, 0, 0))[0] == "2001:db8:1:2::/64"
    assert peer_identity(("::ffff:192.0.2.7", 25, 0, 0))[0] == "192.0.2.7"
    limits = SessionLimits(SmtpSettings(max_sessions=10, max_sessions_per_peer=2), ["::1"])
    assert limits.identify(("::1", 25, 0, 0)) == ("::/64", True)
    assert limits.identify(("0:0::1", 25, 0, 0))[1] is True
    assert limits.identify(("::2", 25, 0, 0))[1] is False
    a, b, c = (limits.identify((f"2001:db8::{n}", 25, 0, 0)) for n in (1, 2, 3))
    assert limits.admit(*a) is None
    assert limits.admit(*b) is None
    assert limits.admit(*c) == REPLY_PEER_BUSY  # the same /64
    limits.release(*a)
    assert limits.admit(*c) is None


@pytest.mark.parametrize("command", [b"NOOP", b"RSET", b"HELP", b"VRFY <someone@fbi.gov>"])
async def test_repeated_cheap_commands_are_limited_per_session(
    tmp_path: Path, command: bytes
) -> None:
    async with listening(tmp_path, command_call_limit=5) as server:

        def scenario() -> None:
            with Client(server.port, "127.0.0.2") as stranger:
                for _ in range(5):
                    assert stranger.command(command)[:1] in (b"2", b"5")
                name = command.split()[0].decode()
                assert stranger.command(command) == line(f"421 4.7.0 {name} sent too many times")
                assert stranger.server_closed()
            with Client(server.port, TRUSTED) as mta:  # the boundary MTA is not limited
                for _ in range(8):
                    assert mta.command(command)[:1] in (b"2", b"5")

        await in_thread(scenario)


async def test_session_lifetime_ends_a_noop_keepalive_with_421(tmp_path: Path) -> None:
    async with listening(tmp_path, max_session_seconds=1.0, command_call_limit=1000) as server:

        def scenario() -> bytes:
            with Client(server.port, "127.0.0.2") as client:
                for _ in range(200):
                    reply = client.command(b"NOOP")
                    if not reply.startswith(b"250"):
                        assert client.server_closed()
                        return reply
                    time.sleep(0.05)
            return b"never closed"

        assert await in_thread(scenario) == line(REPLY_SESSION_TOO_LONG)


async def test_session_lifetime_lets_the_message_under_way_finish(tmp_path: Path) -> None:
    """The limit falls during DATA: the message is still accepted (250, spooled), and the
    421 comes right after it."""
    async with listening(tmp_path, max_session_seconds=1.0) as server:

        def scenario() -> tuple[bytes, bytes]:
            with Client(server.port, "127.0.0.2") as client:
                client.envelope()
                assert client.command(b"DATA").startswith(b"354")
                client.send(crlf_message(body=b""))
                for n in range(8):
                    client.send(b"line %d of a slow request\r\n" % n)
                    time.sleep(0.25)
                client.send(b".\r\n")
                accepted, closing = client.reply(), client.reply()
                assert client.server_closed()
                return accepted, closing

        accepted, closing = await in_thread(scenario)
        assert accepted.startswith(b"250 2.0.0")
        assert closing == line(REPLY_SESSION_TOO_LONG)
        [(raw, _)] = server.spooled()
        assert raw.endswith(b"line 7 of a slow request\r\n")


async def test_idle_session_is_closed_with_421(tmp_path: Path) -> None:
    async with listening(tmp_path, command_timeout_seconds=0.5) as server:

        def scenario() -> bytes:
            with Client(server.port, "127.0.0.2") as client:
                reply = client.reply()  # sent nothing: the server speaks first
                assert client.server_closed()
                return reply

        assert await in_thread(scenario) == line(REPLY_IDLE_TIMEOUT)


# -- 2. DATA timers: data-block and final-dot instead of the command timeout ---------------


async def test_slow_but_steady_sender_of_a_large_message_is_accepted(tmp_path: Path) -> None:
    """DATA lasts several command timeouts; each block comes well within the data-block
    timeout, so the message is accepted."""
    async with listening(
        tmp_path, command_timeout_seconds=0.5, data_block_timeout_seconds=2.0
    ) as server:
        block = b"x" * 998 + b"\r\n"

        def scenario() -> bytes:
            with Client(server.port, "127.0.0.2") as client:
                client.envelope()
                assert client.command(b"DATA").startswith(b"354")
                client.send(crlf_message(body=b""))
                for _ in range(12):
                    client.send(block * 20)  # 20 KB a block, 4 blocks a second
                    time.sleep(0.25)
                client.send(b".\r\n")
                reply = client.reply()
                assert client.command(b"QUIT").startswith(b"221")
                return reply

        assert (await in_thread(scenario)).startswith(b"250 2.0.0")
        [(raw, _)] = server.spooled()
        assert raw.count(block) == 12 * 20


async def test_sender_that_stops_mid_data_is_cut_off_and_nothing_is_spooled(
    tmp_path: Path,
) -> None:
    async with listening(
        tmp_path, command_timeout_seconds=30, data_block_timeout_seconds=0.5
    ) as server:

        def scenario() -> bytes:
            with Client(server.port, "127.0.0.2") as client:
                client.envelope()
                assert client.command(b"DATA").startswith(b"354")
                client.send(crlf_message(body=b"half a request\r\n" * 100))
                reply = client.reply()  # then silence: no final dot
                assert client.server_closed()
                return reply

        assert await in_thread(scenario) == line(REPLY_DATA_TIMEOUT)
        assert server.spooled() == []


async def test_trickle_that_never_ends_is_cut_at_the_final_dot_timeout(tmp_path: Path) -> None:
    async with listening(
        tmp_path, data_block_timeout_seconds=1.0, final_dot_timeout_seconds=1.5
    ) as server:

        def scenario() -> bytes:
            with Client(server.port, "127.0.0.2") as client:
                client.envelope()
                assert client.command(b"DATA").startswith(b"354")
                client.send(crlf_message(body=b""))
                for _ in range(100):
                    if client.readable():
                        break
                    try:
                        client.send(b"one more line\r\n")
                    except OSError:
                        break
                    time.sleep(0.1)
                return client.reply()

        assert await in_thread(scenario) == line(REPLY_DATA_TIMEOUT)
        assert server.spooled() == []


# -- 3. command lines have their own small limit; DATA lines keep theirs -------------------


async def test_long_command_lines_get_500_and_the_session_goes_on(tmp_path: Path) -> None:
    async with listening(tmp_path) as server:

        def scenario() -> None:
            with Client(server.port, "127.0.0.2") as client:
                assert client.command(b"EHLO client.test").startswith(b"250")
                assert client.command(b"NOOP " + b"x" * 5000) == line(REPLY_LINE_TOO_LONG)
                # a MiB of junk without a line end is read and dropped, not kept
                for _ in range(16):
                    client.send(b"j" * 65536)
                assert client.command(b"") == line(REPLY_LINE_TOO_LONG)
                # long parameters within the cap still work
                assert client.command(b"NOOP " + b"p" * 3000).startswith(b"250")
                assert client.command(b"MAIL FROM:<" + LE_SENDER.encode() + b">").startswith(b"250")

        await in_thread(scenario)


async def test_data_lines_keep_their_own_large_limit(tmp_path: Path) -> None:
    async with listening(tmp_path) as server:
        raw = crlf_message(body=b"account @long_liner " + b"y" * 300_000 + b"\r\n")
        assert await in_thread(lambda: smtplib_send(server.port, raw)) == {}
        [(spooled, _)] = server.spooled()
        assert spooled == raw


async def test_data_line_over_max_line_bytes_is_still_refused(tmp_path: Path) -> None:
    async with listening(tmp_path, max_line_bytes=10_000) as server:
        raw = crlf_message(body=b"z" * 20_000 + b"\r\n")
        with pytest.raises(smtplib.SMTPDataError) as error:
            await in_thread(lambda: smtplib_send(server.port, raw))
        assert error.value.smtp_code == 500
        assert server.spooled() == []


# -- 4. recipients: at most max_recipients, de-duplicated ----------------------------------


async def test_recipients_are_capped_with_452(tmp_path: Path) -> None:
    async with listening(tmp_path) as server:

        def scenario() -> None:
            with Client(server.port, "127.0.0.2") as client:
                assert client.command(b"EHLO client.test").startswith(b"250")
                assert client.command(b"MAIL FROM:<agent.smith@fbi.gov>").startswith(b"250")
                for n in range(100):
                    rcpt = b"RCPT TO:<lawenforcement+r%d@example-platform.com>" % n
                    assert client.command(rcpt).startswith(b"250")
                extra = b"RCPT TO:<lawenforcement+r100@example-platform.com>"
                assert client.command(extra) == line(REPLY_TOO_MANY_RCPTS)
                # a repeat of one already taken is still fine
                again = b"RCPT TO:<LawEnforcement+R7@Example-Platform.com>"
                assert client.command(again).startswith(b"250")
                assert client.command(b"DATA").startswith(b"354")
                client.send(crlf_message() + b".\r\n")
                assert client.reply().startswith(b"250")

        await in_thread(scenario)
        [(_, envelope)] = server.spooled()
        assert len(envelope.rcpt_tos) == 100
        assert envelope.rcpt_tos[7] == "lawenforcement+r7@example-platform.com"


async def test_duplicate_recipients_are_stored_once_whatever_their_case(tmp_path: Path) -> None:
    async with listening(tmp_path) as server:
        rcpts = [
            "lawenforcement@example-platform.com",
            "LawEnforcement@Example-Platform.COM",
            "inquiries@example-platform.com",
            "lawenforcement@example-platform.com",
        ]
        assert await in_thread(lambda: smtplib_send(server.port, crlf_message(), rcpts)) == {}
        [(_, envelope)] = server.spooled()
        assert envelope.rcpt_tos == (
            "lawenforcement@example-platform.com",
            "inquiries@example-platform.com",
        )


async def test_recipient_cap_is_configurable_and_per_message(tmp_path: Path) -> None:
    async with listening(tmp_path, max_recipients=2) as server:
        rcpts = [f"lawenforcement+{n}@example-platform.com" for n in range(3)]
        refused = await in_thread(lambda: smtplib_send(server.port, crlf_message(), rcpts))
        assert refused == {rcpts[2]: (452, b"4.5.3 Too many recipients")}
        # The next transaction starts from zero.
        assert await in_thread(lambda: smtplib_send(server.port, crlf_message(), rcpts[:2])) == {}
        assert [len(envelope.rcpt_tos) for _, envelope in server.spooled()] == [2, 2]


# -- 5. envelope addresses: no control characters, LDH domains -----------------------------

BAD_SENDERS = [
    b"<agent.smith@fbi.gov\r>",
    b"<agent.smith\x00@fbi.gov>",
    b"<agent.smith@fbi.gov\x7f>",
    b"<agent.smith@fbi.gov\x1b[0m>",
    b"<agent\t.smith@fbi.gov>",
    b'<"agent\x01smith"@fbi.gov>',
    b"<agent@evil.example%fbi.gov>",
    b"<agent@fbi..gov>",
    b"<agent@-fbi.gov>",
    b"<agent@fbi_gov.example>",
    b"<agent@fbi.gov.>",
    b"<agent@[999.1.1.1]>",
    b"<agent@[IPv6:not-an-address]>",
    b"<agent>",
    b"<agent@" + b"a" * 64 + b".gov>",
    b"<" + b"a" * 250 + b"@fbi.gov>",
    b"<agent@fbi.gov",  # what is left when a LF inside the address ends the line
]


@pytest.mark.parametrize("sender", BAD_SENDERS, ids=repr)
async def test_bad_sender_addresses_get_501_at_mail(tmp_path: Path, sender: bytes) -> None:
    async with listening(tmp_path) as server:

        def scenario() -> tuple[bytes, bytes]:
            with Client(server.port, "127.0.0.2") as client:
                assert client.command(b"EHLO client.test").startswith(b"250")
                refused = client.command(b"MAIL FROM:" + sender)
                # the session goes on, and the refused sender left no trace in it
                after = client.command(b"MAIL FROM:<agent.smith@fbi.gov>")
                return refused, after

        refused, after = await in_thread(scenario)
        assert refused == line(REPLY_BAD_ADDRESS)
        assert after.startswith(b"250")


@pytest.mark.parametrize(
    "sender",
    [
        b"<>",
        b"<agent@[192.0.2.1]>",
        b"<agent@[IPv6:2001:db8::1]>",
        b'<"agent smith"@fbi.gov>',
        b"<Agent.Smith@CYBER.FBI.GOV>",
        b"<a-b_c+d@xn--bcher-kva.example>",
    ],
    ids=repr,
)
async def test_good_sender_addresses_are_accepted(tmp_path: Path, sender: bytes) -> None:
    async with listening(tmp_path) as server:

        def scenario() -> bytes:
            with Client(server.port, "127.0.0.2") as client:
                assert client.command(b"EHLO client.test").startswith(b"250")
                return client.command(b"MAIL FROM:" + sender)

        assert (await in_thread(scenario)).startswith(b"250")


async def test_recipient_with_a_trailing_cr_gets_501_and_is_not_stored(tmp_path: Path) -> None:
    """The reproduced case: a token address read from a CRLF file keeps its CR."""
    async with listening(tmp_path) as server:
        token = b"lawenforcement+abcdefghijklmnopqrstuvwxyz@example-platform.com"

        def scenario() -> None:
            with Client(server.port, "127.0.0.2") as client:
                assert client.command(b"EHLO client.test").startswith(b"250")
                assert client.command(b"MAIL FROM:<agent.smith@fbi.gov>").startswith(b"250")
                for bad in (token + b"\r", token + b"\x00", b"\x7f" + token, b"a\x01@fbi.gov"):
                    assert client.command(b"RCPT TO:<" + bad + b">") == line(REPLY_BAD_ADDRESS)
                assert client.command(b"RCPT TO:<lawenforcement@example-platform.com>").startswith(
                    b"250"
                )
                assert client.command(b"DATA").startswith(b"354")
                client.send(crlf_message() + b".\r\n")
                assert client.reply().startswith(b"250")

        await in_thread(scenario)
        [(_, envelope)] = server.spooled()
        assert envelope.rcpt_tos == ("lawenforcement@example-platform.com",)


async def test_helo_with_control_characters_is_refused(tmp_path: Path) -> None:
    async with listening(tmp_path) as server:

        def scenario() -> tuple[bytes, bytes]:
            with Client(server.port, "127.0.0.2") as client:
                bad = client.command(b"EHLO client\x00.test")
                return bad, client.command(b"EHLO client.test")

        bad, good = await in_thread(scenario)
        assert bad.startswith(b"501 5.5.4")
        assert good.startswith(b"250")


def test_address_problem_names_the_reason() -> None:
    assert address_problem("agent@fbi.gov\r", domain_required=True) == (
        "control character in address"
    )
    assert address_problem("agent@evil.example%fbi.gov", domain_required=True) == (
        "domain labels are not letters, digits and hyphens"
    )
    assert address_problem("postmaster", domain_required=False) is None
    assert address_problem("postmaster", domain_required=True) == "address has no domain"
    assert address_problem("@fbi.gov", domain_required=True) == "empty local part"
    assert domain_problem("a." * 126 + "gov") == "domain too long"
    assert domain_problem("[IPv6:2001:db8::1]") is None
    assert domain_problem("[192.0.2.300]") == "bad address literal"
    assert address_problem("a" * 245 + "@fbi.gov", domain_required=True) is None
    assert address_problem("a" * 247 + "@fbi.gov", domain_required=True) == "address too long"


# -- 6. header blocks that two parsers read two ways are refused at the end of DATA --------


async def test_bare_cr_in_a_header_gets_550_and_nothing_is_spooled(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``X-Note: x\\rFrom: …``: Python's parser sees a second From, dkimpy and most MTAs
    one header. Refused permanently, logged with the reason and peer, never the body."""
    caplog.set_level(logging.INFO, logger="le_intake.smtp")
    raw = (
        b"X-Note: x\rFrom: Agent Smith <agent.smith@fbi.gov>\r\n"
        b"From: someone@gmail.com\r\nTo: lawenforcement@example-platform.com\r\n"
        b"Subject: Emergency Disclosure Request\r\n\r\nsecret-body-marker @target\r\n"
    )
    async with listening(tmp_path) as server:
        with pytest.raises(smtplib.SMTPDataError) as error:
            await in_thread(lambda: smtplib_send(server.port, raw))
        assert error.value.smtp_code == 550
        assert (
            error.value.smtp_error == b"5.6.0 Malformed header block: bare CR in the header block"
        )
        assert server.spooled() == []
    [record] = [r for r in caplog.records if r.getMessage() == "smtp refused"]
    assert record.__dict__["reason"] == "bare CR in the header block"
    assert record.__dict__["command"] == "DATA"
    assert record.__dict__["peer"].startswith("127.0.0.1:")
    formatted = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "secret-body-marker" not in formatted


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (b"X-Note: x\nFrom: Agent Smith <agent.smith@fbi.gov>\r\n", "bare LF in the header block"),
        (
            b"this line is not a header field\r\n",
            "a line in the header block is not a header field",
        ),
        (b"Subject : spaced\r\n", "a line in the header block is not a header field"),
    ],
)
async def test_ambiguous_header_blocks_get_550(tmp_path: Path, headers: bytes, reason: str) -> None:
    async with listening(tmp_path) as server:
        with pytest.raises(smtplib.SMTPDataError) as error:
            await in_thread(lambda: smtplib_send(server.port, crlf_message(headers=headers)))
        assert error.value.smtp_code == 550
        assert error.value.smtp_error == f"5.6.0 Malformed header block: {reason}".encode()
        assert server.spooled() == []


async def test_header_block_starting_with_a_continuation_gets_550(tmp_path: Path) -> None:
    async with listening(tmp_path) as server:
        raw = b" folded onto nothing\r\n" + crlf_message()
        with pytest.raises(smtplib.SMTPDataError) as error:
            await in_thread(lambda: smtplib_send(server.port, raw))
        assert error.value.smtp_code == 550
        assert server.spooled() == []


async def test_normal_message_and_bare_lf_only_in_the_body_are_accepted(tmp_path: Path) -> None:
    async with listening(tmp_path) as server:
        normal = crlf_message()
        lf_body = crlf_message(body=b"first line\nsecond line\nthird\n")
        assert await in_thread(lambda: smtplib_send(server.port, normal)) == {}
        assert await in_thread(lambda: smtplib_send(server.port, lf_body)) == {}
        spooled = sorted(raw for raw, _ in server.spooled())
        assert spooled == sorted([normal, lf_body + b"\r\n"])


async def test_large_ambiguous_header_block_is_refused_too(tmp_path: Path) -> None:
    """Above the inline threshold the check runs in a thread; the verdict is the same."""
    async with listening(tmp_path) as server:
        filler = b"".join(b"X-Filler-%d: %s\r\n" % (n, b"f" * 60) for n in range(2000))
        raw = crlf_message(headers=filler + b"X-Note: x\rFrom: agent.smith@fbi.gov\r\n")
        with pytest.raises(smtplib.SMTPDataError) as error:
            await in_thread(lambda: smtplib_send(server.port, raw))
        assert error.value.smtp_code == 550
        assert server.spooled() == []


async def test_uniform_lf_headers_pass_by_default_and_are_refused_when_strict(
    tmp_path: Path,
) -> None:
    raw = crlf_message().replace(b"\r\n", b"\n")
    async with listening(tmp_path / "default") as server:
        assert await in_thread(lambda: smtplib_send(server.port, raw)) == {}
        assert len(server.spooled()) == 1
    async with listening(tmp_path / "strict", strict_header_newlines=True) as server:
        with pytest.raises(smtplib.SMTPDataError) as error:
            await in_thread(lambda: smtplib_send(server.port, raw))
        assert (
            error.value.smtp_error == b"5.6.0 Malformed header block: bare LF in the header block"
        )
        assert server.spooled() == []


# -- the listener keeps serving while hostile sessions run ---------------------------------


async def test_hostile_sessions_do_not_stall_a_real_sender(tmp_path: Path) -> None:
    async with listening(
        tmp_path, data_block_timeout_seconds=5.0, max_session_seconds=30.0
    ) as server:

        def hostile() -> list[Client]:
            clients = []
            for _ in range(3):  # junk without a line end, a MiB each
                junk = Client(server.port, "127.0.0.2")
                for _ in range(16):
                    junk.send(b"j" * 65536)
                clients.append(junk)
            for _ in range(3):  # DATA begun, then silence
                stalled = Client(server.port, "127.0.0.3")
                stalled.envelope()
                assert stalled.command(b"DATA").startswith(b"354")
                stalled.send(b"Subject: half\r\n")
                clients.append(stalled)
            ambiguous = Client(server.port, "127.0.0.4")
            ambiguous.envelope()
            assert ambiguous.command(b"DATA").startswith(b"354")
            ambiguous.send(b"X-Note: x\rFrom: a@fbi.gov\r\n\r\nbody\r\n.\r\n")
            assert ambiguous.reply().startswith(b"550 5.6.0")
            clients.append(ambiguous)
            return clients

        clients = await in_thread(hostile)
        try:
            assert await in_thread(lambda: smtplib_send(server.port, crlf_message())) == {}
        finally:
            for client in clients:
                client.close()
        assert len(server.spooled()) == 1


# -- the same limits and timers after STARTTLS --------------------------------------------


def self_signed(tmp_path: Path) -> tuple[str, str]:
    """A throw-away certificate for le-intake.local (cryptography is a dev dependency)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "le-intake.local")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


async def test_after_starttls_limits_and_data_timers_still_apply(tmp_path: Path) -> None:
    """STARTTLS makes aiosmtpd call connection_made again and feeds decrypted data through
    data_received: the command-line cap, the recipient rules and the DATA timers (a slow
    sender longer than the command timeout is accepted) hold over TLS too."""
    cert_file, key_file = self_signed(tmp_path)
    async with listening(
        tmp_path,
        tls_cert_file=cert_file,
        tls_key_file=key_file,
        command_timeout_seconds=0.5,
        data_block_timeout_seconds=2.0,
    ) as server:

        def scenario() -> tuple[bytes, bytes, bytes]:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with smtplib.SMTP("127.0.0.1", server.port, timeout=15) as client:
                client.ehlo("client.test")
                assert client.starttls(context=context)[0] == 220
                client.ehlo("client.test")
                long_line = client.docmd("NOOP", "x" * 5000)
                assert client.docmd("MAIL FROM:<agent.smith@fbi.gov>")[0] == 250
                bad_rcpt = client.docmd("RCPT TO:<lawenforcement@example-platform.com\x00>")
                assert client.docmd("RCPT TO:<lawenforcement@example-platform.com>")[0] == 250
                assert client.docmd("DATA")[0] == 354
                client.send(crlf_message(body=b""))
                for n in range(6):
                    client.send(b"slow line %d\r\n" % n)
                    time.sleep(0.25)
                client.send(b".\r\n")
                code, text = client.getreply()
                return b"%d %s" % long_line, b"%d %s" % bad_rcpt, b"%d %s" % (code, text)

        long_line, bad_rcpt, accepted = await in_thread(scenario)
        assert long_line == REPLY_LINE_TOO_LONG.encode()
        assert bad_rcpt == REPLY_BAD_ADDRESS.encode()
        assert accepted.startswith(b"250 2.0.0")
        [(raw, envelope)] = server.spooled()
        assert raw.endswith(b"slow line 5\r\n")
        assert envelope.rcpt_tos == ("lawenforcement@example-platform.com",)
