"""The SMTP road through real parts: aiosmtpd on a loopback port, smtplib, SQLite."""

from __future__ import annotations

import asyncio
import smtplib
import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cases.models import Case, MessageRecord
from config.settings import Settings
from ingest.smtp import start_smtp_server
from le_intake.app import build_app
from tests.conftest import LE_SENDER, REQUEST_ADDRESS, Listener, make_settings, request_message


async def count(listener: Listener, model: type[Case] | type[MessageRecord]) -> int:
    async with listener.app.store.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_le_mail_is_accepted_and_becomes_a_case(listener: Listener) -> None:
    raw = request_message(attachments=[("subpoena.pdf", "application/pdf", b"%PDF-1.4\n...")])
    refused = await listener.send(raw, LE_SENDER, [REQUEST_ADDRESS])
    assert refused == {}
    assert await listener.app.runner.drain() == 1

    cases = await listener.app.store.list_cases()
    assert len(cases) == 1
    case = await listener.app.store.get_case(cases[0]["id"])
    assert case is not None
    assert case["status"] == "awaiting_confirmation"
    assert case["sender"] == LE_SENDER
    [message] = case["messages"]
    assert message["attachments_removed"][0]["filename"] == "subpoena.pdf"
    assert message["attachments_removed"][0]["sniffed_type"] == "application/pdf"
    subjects = {(i["kind"], i["value"]) for i in case["identifiers"] if i["role"] == "subject"}
    assert subjects == {("username", "target_account"), ("user_id", "12345")}
    assert [e["code"] for e in case["events"]][:1] == ["created"]
    # The spool is empty once the store has the message.
    assert listener.app.spool.pending() == []
    assert list(listener.app.spool.cur.iterdir()) == []


async def test_non_le_mail_is_accepted_at_smtp_then_dropped_without_reply(
    listener: Listener, settings: Settings
) -> None:
    raw = request_message(sender="someone@gmail.com", message_id="<x1@gmail.com>")
    assert await listener.send(raw, "someone@gmail.com", [REQUEST_ADDRESS]) == {}
    await listener.app.runner.drain()

    assert await count(listener, Case) == 0
    async with listener.app.store.sessions() as session:
        row = (await session.execute(select(MessageRecord))).scalar_one()
    assert row.outcome == "dropped"
    assert "non_le_domain" in row.reasons
    assert row.text_body is None  # no body kept for disregarded mail
    outbox = Path(settings.outbox.folder)
    assert not outbox.exists() or list(outbox.iterdir()) == []


async def test_unknown_recipient_gets_550(listener: Listener) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await listener.send(request_message(), LE_SENDER, ["someone-else@example-platform.com"])
    assert refused.value.recipients["someone-else@example-platform.com"][0] == 550


async def test_sub_address_of_a_request_address_is_accepted(listener: Listener) -> None:
    rcpt = "lawenforcement+abc123@example-platform.com"
    assert await listener.send(request_message(), LE_SENDER, [rcpt]) == {}


async def test_oversized_message_gets_552(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, smtp={"max_message_bytes": 10_000})
    app = await build_app(settings)
    server = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        big = request_message(body="x" * 20_000)

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.ehlo()
                assert client.has_extn("size")
                assert int(client.esmtp_features["size"]) == 10_000
                client.sendmail(LE_SENDER, [REQUEST_ADDRESS], big)

        with pytest.raises(smtplib.SMTPResponseException) as error:
            await asyncio.to_thread(send)
        assert error.value.smtp_code == 552
        assert app.spool.pending() == []
    finally:
        server.close()
        await server.wait_closed()
        await app.close()


def _raw_session(port: int, lines: list[bytes]) -> list[bytes]:
    """A hand-driven SMTP session: send each chunk, read one reply after each."""
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def reply() -> bytes:
            text = b""
            while True:
                line = reader.readline()
                text += line
                if len(line) < 4 or line[3:4] != b"-":
                    return text

        replies.append(reply())
        for chunk in lines:
            sock.sendall(chunk)
            replies.append(reply())
    return replies


async def test_smuggled_end_of_data_does_not_end_the_message(listener: Listener) -> None:
    """CVE-2024-27305: a bare LF before the dot must not end DATA."""
    body = (
        b"From: agent.smith@fbi.gov\r\nTo: lawenforcement@example-platform.com\r\n"
        b"Subject: real\r\nMessage-ID: <smuggle@fbi.gov>\r\n\r\nhello\n.\r\n"
        b"MAIL FROM:<evil@gmail.com>\r\nRCPT TO:<lawenforcement@example-platform.com>\r\n"
        b"DATA\r\nFrom: evil@gmail.com\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
    )
    replies = await asyncio.to_thread(
        _raw_session,
        listener.port,
        [
            b"EHLO client.test\r\n",
            b"MAIL FROM:<agent.smith@fbi.gov>\r\n",
            b"RCPT TO:<lawenforcement@example-platform.com>\r\n",
            b"DATA\r\n",
            body,
            b"QUIT\r\n",
        ],
    )
    assert replies[4].startswith(b"354")
    assert replies[5].startswith(b"250")
    assert len(listener.app.spool.pending()) == 1
    [_item_id] = listener.app.spool.pending()
    raw, _ = listener.app.spool.claim_next().read()  # type: ignore[union-attr]
    assert b"smuggled" in raw  # it stayed inside the one message


async def test_same_message_twice_makes_one_record(listener: Listener) -> None:
    raw = request_message(message_id="<twice@fbi.gov>")
    await listener.send(raw, LE_SENDER, [REQUEST_ADDRESS])
    await listener.send(raw, LE_SENDER, [REQUEST_ADDRESS])
    assert await listener.app.runner.drain() == 2
    assert await count(listener, Case) == 1
    assert await count(listener, MessageRecord) == 1


async def test_same_message_id_resent_with_other_bytes_is_a_duplicate(listener: Listener) -> None:
    await listener.send(request_message(message_id="<m@fbi.gov>"), LE_SENDER, [REQUEST_ADDRESS])
    resent = request_message(message_id="<m@fbi.gov>", subject="Subpoena (resent)")
    await listener.send(resent, LE_SENDER, [REQUEST_ADDRESS])
    await listener.app.runner.drain()
    assert await count(listener, MessageRecord) == 1


async def test_reply_joins_the_case_of_the_message_it_answers(listener: Listener) -> None:
    await listener.send(request_message(message_id="<first@fbi.gov>"), LE_SENDER, [REQUEST_ADDRESS])
    reply = request_message(
        message_id="<second@fbi.gov>",
        subject="Re: Subpoena for subscriber information",
        body="Adding the account @second_target.\n",
    ).replace(b"Message-ID:", b"In-Reply-To: <first@fbi.gov>\nMessage-ID:", 1)
    await listener.send(reply, LE_SENDER, [REQUEST_ADDRESS])
    await listener.app.runner.drain()
    [case] = await listener.app.store.list_cases()
    full = await listener.app.store.get_case(case["id"])
    assert full is not None
    assert [m["outcome"] for m in full["messages"]] == ["accepted", "followup"]
    assert {"target_account", "second_target"} <= {i["value"] for i in full["identifiers"]}


async def test_long_lines_are_accepted(listener: Listener) -> None:
    body = "account @long_liner " + "x" * 5000 + "\n"
    assert await listener.send(request_message(body=body), LE_SENDER, [REQUEST_ADDRESS]) == {}


async def test_too_many_sessions_get_421(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, smtp={"max_sessions": 1})
    app = await build_app(settings)
    server = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        first = await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 10)
        try:
            assert (await asyncio.to_thread(first.recv, 1024)).startswith(b"220")
            greeting = await asyncio.to_thread(_raw_session, port, [])
            assert greeting[0].startswith(b"421")
        finally:
            first.close()
        await asyncio.sleep(0.1)
        greeting = await asyncio.to_thread(_raw_session, port, [b"QUIT\r\n"])
        assert greeting[0].startswith(b"220")
    finally:
        server.close()
        await server.wait_closed()
        await app.close()


async def test_internal_error_answers_451_without_details(listener: Listener) -> None:
    spool = listener.app.spool
    spool.tmp.rmdir()  # the spool cannot write: a fault we did not plan for
    spool.tmp.write_text("not a directory")
    with pytest.raises(smtplib.SMTPDataError) as error:
        await listener.send(request_message(), LE_SENDER, [REQUEST_ADDRESS])
    assert error.value.smtp_code == 451
    assert b"Error" not in error.value.smtp_error
    assert b"NotADirectory" not in error.value.smtp_error


async def test_unauthenticated_le_mail_is_held_not_answered(listener: Listener) -> None:
    raw = request_message(message_id="<noauth@fbi.gov>", authenticated=False)
    await listener.send(raw, LE_SENDER, [REQUEST_ADDRESS])
    await listener.app.runner.drain()
    [case] = await listener.app.store.list_cases()
    assert case["status"] == "held"
    assert case["sender_auth"] == "none"
    async with listener.app.store.sessions() as session:
        row = (await session.execute(select(MessageRecord))).scalar_one()
    assert row.outcome == "held"
    assert "sender_unverified" in row.reasons


async def test_large_bare_lf_message_is_accepted(listener: Listener) -> None:
    """Some clients send LF-only bodies; aiosmtpd splits on CRLF, so the body is one long
    "line". It must not be refused with a permanent 500."""
    raw = request_message(body="line of a long request\n" * 5000)
    assert b"\r\n" not in raw
    assert len(raw) > 100_000
    assert await listener.send(raw, LE_SENDER, [REQUEST_ADDRESS]) == {}
    assert await listener.app.runner.drain() == 1
