"""The challenge-response conversation through real parts.

A real listener takes the request; the automated response goes through the outbox to a
real aiosmtpd sink standing in for the relay; the test replies to it through the listener
as the sender would; the case opens. Time is a FakeClock, so expiry needs no sleeping.
"""

from __future__ import annotations

import asyncio
import email
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP
from sqlalchemy import select

from cases.models import OutboxMessage
from core.clock import FakeClock
from ingest.smtp import start_smtp_server
from le_intake.app import App, build_app
from tests.conftest import LE_SENDER, REQUEST_ADDRESS, make_settings, request_message


@dataclass
class RelaySink:
    """A stand-in relay: records what it accepts; can be told to be down (421/451)."""

    received: list[Message] = field(default_factory=list)
    down: bool = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.down:
            return "451 4.3.0 relay busy, try later"
        self.received.append(email.message_from_bytes(envelope.original_content))
        return "250 OK"


@dataclass
class Desk:
    app: App
    clock: FakeClock
    port: int
    relay: RelaySink

    async def send(
        self, raw: bytes, rcpt: str = REQUEST_ADDRESS, mail_from: str = LE_SENDER
    ) -> None:
        def go() -> None:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                client.sendmail(mail_from, [rcpt], raw)

        await asyncio.to_thread(go)
        await self.app.runner.drain()
        await self.app.outbox.deliver_due()

    async def case(self, case_id: str | None = None) -> dict[str, Any]:
        cases = await self.app.store.list_cases()
        chosen = case_id or cases[0]["id"]
        data = await self.app.store.get_case(chosen)
        assert data is not None
        return data


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    relay = RelaySink()
    loop = asyncio.get_running_loop()
    relay_server = await loop.create_server(lambda: SMTP(relay, loop=loop), "127.0.0.1", 0)
    relay_port = relay_server.sockets[0].getsockname()[1]
    settings = make_settings(
        tmp_path,
        outbox={"transport": "smtp", "relay_host": "127.0.0.1", "relay_port": relay_port,
                "retry_delays_seconds": [60, 300]},
        replies={"max_per_sender_per_day": 3},
    )  # fmt: skip
    clock = FakeClock()
    app = await build_app(settings, clock=clock)
    server = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
    try:
        yield Desk(app, clock, server.sockets[0].getsockname()[1], relay)
    finally:
        server.close()
        await server.wait_closed()
        relay_server.close()
        await relay_server.wait_closed()
        await app.close()


def reply_to(response: Message, body: str = "I confirm this request.", sender: str = LE_SENDER,
             extra: dict[str, str] | None = None,
             subject: str | None = None) -> tuple[bytes, str]:  # fmt: skip
    """The sender's reply to our response: to its Reply-To, quoting it, In-Reply-To it."""
    msg = EmailMessage()
    domain = sender.rpartition("@")[2]
    msg["Authentication-Results"] = (
        f"le-intake.local; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
    )
    msg["From"] = sender
    msg["To"] = "".join(str(response["Reply-To"]).split())
    msg["Subject"] = subject or "Re: " + " ".join(str(response["Subject"]).split())
    msg["Message-ID"] = f"<reply-{abs(hash((body, sender)))}@{domain}>"
    msg["In-Reply-To"] = "".join(str(response["Message-ID"]).split())  # unfold
    for name, value in (extra or {}).items():
        msg[name] = value
    quoted = "\n".join("> " + line for line in str(response.get_payload()).splitlines())
    msg.set_content(f"{body}\n\n{quoted}\n")
    return msg.as_bytes(), "".join(str(response["Reply-To"]).split())


async def test_request_response_reply_opens_the_case(desk: Desk) -> None:
    raw = request_message(attachments=[("order.pdf", "application/pdf", b"%PDF-1.4 x")])
    await desk.send(raw)
    case = await desk.case()
    assert case["status"] == "awaiting_confirmation"
    [response] = desk.relay.received
    assert response["To"] == LE_SENDER
    assert response["Auto-Submitted"] == "auto-replied"
    assert response["In-Reply-To"] == "<req-1@fbi.gov>"
    assert str(response["Reply-To"]).startswith("lawenforcement+")
    assert case["id"] in str(response["Subject"])
    text = " ".join(str(response.get_payload()).split())
    assert "order.pdf" in text  # the sender is told what was removed
    assert "the request must be written in the body" in text

    reply, rcpt = reply_to(response)
    await desk.send(reply, rcpt=rcpt)
    case = await desk.case(case["id"])
    assert case["status"] == "open"
    assert [m["outcome"] for m in case["messages"]] == ["accepted", "confirmed"]
    assert "confirmed" in [e["code"] for e in case["events"]]
    assert len(desk.relay.received) == 1  # the confirmation itself is not answered


async def test_token_in_the_body_alone_confirms(desk: Desk) -> None:
    await desk.send(request_message())
    [response] = desk.relay.received
    reply, _ = reply_to(response)
    reply = reply.replace(b"In-Reply-To:", b"X-Old-In-Reply-To:")
    await desk.send(reply)  # to the plain request address: only the quoted token remains
    assert (await desk.case())["status"] == "open"


async def test_forged_token_does_not_confirm(desk: Desk) -> None:
    await desk.send(request_message())
    forged = request_message(message_id="<forged@fbi.gov>", body="Confirming.\n")
    await desk.send(forged, rcpt="lawenforcement+aaaaaaaaaaaaaaaaaaaaaaaaaa@example-platform.com")
    cases = await desk.app.store.list_cases()
    assert len(cases) == 2  # the request, and the forged "reply" as a request of its own
    for case in cases:
        assert case["status"] == "awaiting_confirmation"


async def test_reused_token_works_once(desk: Desk) -> None:
    await desk.send(request_message())
    [response] = desk.relay.received
    first, rcpt = reply_to(response, body="Confirmed.")
    await desk.send(first, rcpt=rcpt)
    second, rcpt = reply_to(response, body="Confirmed again.")
    await desk.send(second, rcpt=rcpt)
    case = await desk.case()
    assert case["status"] == "open"
    assert [m["outcome"] for m in case["messages"]] == ["accepted", "confirmed", "followup"]
    assert "token_used" in case["messages"][2]["reasons"]


async def test_expired_token_gets_a_fresh_response(desk: Desk) -> None:
    await desk.send(request_message())
    [response] = desk.relay.received
    desk.clock.advance(timedelta(days=15))
    reply, rcpt = reply_to(response)
    await desk.send(reply, rcpt=rcpt)
    case = await desk.case()
    assert case["status"] == "awaiting_confirmation"
    assert "token_expired" in case["messages"][1]["reasons"]
    assert len(desk.relay.received) == 2
    fresh = desk.relay.received[1]
    assert "had expired" in str(fresh.get_payload())
    reply, rcpt = reply_to(fresh, body="Confirming with the new reference.")
    await desk.send(reply, rcpt=rcpt)
    assert (await desk.case())["status"] == "open"


async def test_unconfirmed_case_expires_in_the_sweep(desk: Desk) -> None:
    await desk.send(request_message())
    desk.clock.advance(timedelta(days=15))
    async with desk.app.store.sessions() as session, session.begin():
        assert await desk.app.conversation.expire_unconfirmed(session) == 1
    case = await desk.case()
    assert case["status"] == "expired"
    assert "expired" in [e["code"] for e in case["events"]]


async def test_reply_from_another_address_does_not_confirm(desk: Desk) -> None:
    await desk.send(request_message())
    [response] = desk.relay.received
    reply, rcpt = reply_to(response, sender="someone.else@fbi.gov")
    await desk.send(reply, rcpt=rcpt, mail_from="someone.else@fbi.gov")
    statuses = {c["status"] for c in await desk.app.store.list_cases()}
    assert "open" not in statuses


@pytest.mark.parametrize(
    "extra",
    [
        {"Auto-Submitted": "auto-replied"},  # a vacation responder
        {"Precedence": "bulk"},
        {"List-Id": "<agents.fbi.gov>"},
        # responders that write no Auto-Submitted (Exchange, vacation programs)
        {"X-Autoreply": "yes"},
        {"X-Autorespond": "Out of office"},
        {"Precedence": "auto_reply"},
        {"X-Auto-Response-Suppress": "All"},
    ],
)
async def test_automatic_replies_never_confirm_and_are_never_answered(
    desk: Desk, extra: dict[str, str]
) -> None:
    await desk.send(request_message())
    [response] = desk.relay.received
    reply, rcpt = reply_to(response, body="I am out of the office.", extra=extra)
    await desk.send(reply, rcpt=rcpt)
    case = await desk.case()
    assert case["status"] == "awaiting_confirmation"
    assert len(desk.relay.received) == 1


async def test_bounce_with_null_return_path_is_never_answered(desk: Desk) -> None:
    bounce = request_message(sender="mailer-daemon@fbi.gov", message_id="<bounce@fbi.gov>",
                             subject="Undeliverable: Subpoena")  # fmt: skip
    await desk.send(bounce, mail_from="")
    assert desk.relay.received == []
    [case] = await desk.app.store.list_cases()
    assert case["status"] == "held"


async def test_new_automatic_message_gets_no_response(desk: Desk) -> None:
    auto = request_message(message_id="<ooo@fbi.gov>").replace(
        b"Subject:", b"Auto-Submitted: auto-generated\nSubject:", 1
    )
    await desk.send(auto)
    assert desk.relay.received == []


async def test_rate_limit_per_sender_per_day(desk: Desk) -> None:
    for n in range(5):
        await desk.send(request_message(message_id=f"<many-{n}@fbi.gov>", subject=f"Request {n}"))
    assert len(desk.relay.received) == 3
    statuses = sorted(c["status"] for c in await desk.app.store.list_cases())
    assert statuses.count("held") == 2  # no response, so staff see them as held
    desk.clock.advance(timedelta(days=1, minutes=1))
    await desk.send(request_message(message_id="<next-day@fbi.gov>", subject="Next day"))
    assert len(desk.relay.received) == 4


async def test_subject_with_crlf_cannot_inject_headers(desk: Desk) -> None:
    raw = request_message(message_id="<inject@fbi.gov>").replace(
        b"Subject: Subpoena for subscriber information",
        b"Subject: =?utf-8?q?Hello=0D=0ABcc=3A_victim=40example=2Ecom=0D=0AX-Evil=3A_1?=",
    )
    await desk.send(raw)
    [response] = desk.relay.received
    assert response["Bcc"] is None
    assert response["X-Evil"] is None
    assert "\n" not in str(response["Subject"]).replace("\n ", "")


async def test_relay_down_for_a_while_then_back_delivers_once(desk: Desk) -> None:
    desk.relay.down = True
    await desk.send(request_message(message_id="<r1@fbi.gov>", subject="One"))
    await desk.send(request_message(message_id="<r2@fbi.gov>", subject="Two"))
    assert desk.relay.received == []
    async with desk.app.store.sessions() as session:
        rows = (await session.execute(select(OutboxMessage))).scalars().all()
    assert {r.status for r in rows} == {"pending"}
    assert all(r.attempts == 1 and r.last_error for r in rows)
    assert await desk.app.outbox.deliver_due() == 0  # not due yet: backoff
    desk.relay.down = False
    desk.clock.advance(timedelta(seconds=61))
    assert await desk.app.outbox.deliver_due() == 2
    assert await desk.app.outbox.deliver_due() == 0
    assert sorted(str(m["To"]) for m in desk.relay.received) == [LE_SENDER, LE_SENDER]
    assert len({str(m["Message-ID"]) for m in desk.relay.received}) == 2


async def test_held_and_dropped_mail_gets_no_response(desk: Desk) -> None:
    await desk.send(request_message(message_id="<u@fbi.gov>", authenticated=False))
    await desk.send(request_message(sender="x@gmail.com", message_id="<g@gmail.com>"),
                    mail_from="x@gmail.com")  # fmt: skip
    assert desk.relay.received == []


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Subpoena for subscriber information",
        "Auto: Subpoena for subscriber information",
        "Out of Office: Re: Subpoena for subscriber information",
        "Autoreply: your message",
        "[Auto-Reply] Subpoena",
        "Abwesenheitsnotiz: Subpoena for subscriber information",
        "AW: Automatische Antwort: Subpoena",
        "Réponse automatique : Subpoena",
        "Respuesta automática: Subpoena",
        "Automatisch antwoord: Subpoena",
    ],
)
async def test_an_auto_reply_known_by_its_subject_never_confirms(desk: Desk, subject: str) -> None:
    """An out-of-office answer to the +TOKEN address, with none of the headers: its
    subject is all that tells, and it must not open the case."""
    await desk.send(request_message())
    [response] = desk.relay.received
    reply, rcpt = reply_to(
        response, body="I am out of the office until Monday.",
        subject=f"{subject} - {' '.join(str(response['Subject']).split())}",
    )  # fmt: skip
    await desk.send(reply, rcpt=rcpt)
    case = await desk.case()
    assert case["status"] == "awaiting_confirmation"
    assert "automatic_reply" in case["messages"][1]["reasons"]
    assert len(desk.relay.received) == 1  # and it is never answered


async def test_an_unauthenticated_reply_with_the_token_does_not_confirm(desk: Desk) -> None:
    await desk.send(request_message())
    [response] = desk.relay.received
    reply, rcpt = reply_to(response)
    unauthenticated = reply.replace(b"Authentication-Results:", b"X-Forged-Results:", 1)
    await desk.send(unauthenticated, rcpt=rcpt)
    cases = await desk.app.store.list_cases()
    request = next(c for c in cases if c["subject"].startswith("Subpoena"))
    assert request["status"] == "awaiting_confirmation"


async def test_unauthenticated_mail_never_joins_a_case_and_is_linked_apart(desk: Desk) -> None:
    await desk.send(request_message())
    [original] = await desk.app.store.list_cases()
    follow = request_message(
        message_id="<follow@fbi.gov>", subject="Re: Subpoena", authenticated=False,
        body="Please also add @someone_else to the request.\n",
    ).replace(b"Subject:", b"In-Reply-To: <req-1@fbi.gov>\nSubject:", 1)  # fmt: skip
    await desk.send(follow)
    case = await desk.case(original["id"])
    assert [m["outcome"] for m in case["messages"]] == ["accepted"]
    assert "related_message" in [e["code"] for e in case["events"]]
    [held] = [c for c in await desk.app.store.list_cases() if c["id"] != original["id"]]
    assert held["status"] == "held"
    apart = await desk.case(held["id"])
    assert "refers_to_case" in [e["code"] for e in apart["events"]]
    assert apart["messages"][0]["sender_auth"] == "none"
    assert case["messages"][0]["sender_auth"] == "pass"


@pytest.mark.parametrize(
    ("original", "follower", "joins", "cases"),
    [
        ("agent@usdoj.gov", "agent@doj.gov", False, 2),  # no dot boundary: two organisations
        ("agent.smith@fbi.gov", "x@bi.gov", False, 1),  # (and bi.gov is dropped as a lookalike)
        ("agent.smith@fbi.gov", "duty@cyber.fbi.gov", True, 1),  # same registrable domain
        ("agent.smith@fbi.gov", "agent.smith@fbi.gov", True, 1),
    ],
)
async def test_only_the_same_organisation_joins_a_case(
    desk: Desk, original: str, follower: str, joins: bool, cases: int
) -> None:
    await desk.send(request_message(sender=original), mail_from=original)
    [first] = await desk.app.store.list_cases()
    follow = request_message(
        sender=follower, message_id="<follow-org@x.gov>", subject="Re: Subpoena",
        body="An addition to the request for @target_account.\n",
    ).replace(b"Subject:", b"In-Reply-To: <req-1@fbi.gov>\nSubject:", 1)  # fmt: skip
    await desk.send(follow, mail_from=follower)
    case = await desk.case(first["id"])
    outcomes = [m["outcome"] for m in case["messages"]]
    assert outcomes == (["accepted", "followup"] if joins else ["accepted"])
    assert len(await desk.app.store.list_cases()) == cases
