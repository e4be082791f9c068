"""Emergency paging through real parts: a real listener and store, local HTTP receivers
standing in for the webhook, Slack and PagerDuty, an aiosmtpd sink for email, the aiohttp
ack endpoint, and a FakeClock for escalation."""

from __future__ import annotations

import asyncio
import hashlib
import smtplib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiosmtpd.smtp import SMTP
from sqlalchemy import select

from cases.models import Alert, AlertDelivery
from core.clock import FakeClock
from ingest.smtp import start_smtp_server
from ingest.spool import PRIORITY_URGENT
from le_intake.app import App, build_app
from le_intake.http import make_http_app
from tests.conftest import LE_SENDER, REQUEST_ADDRESS, make_settings, request_message

EMERGENCY_BODY = (
    "The account @threat_poster (User ID: 1580044221) posted that he will shoot students at "
    "Lincoln High School this morning. We need the subscriber information and recent login IP "
    "addresses to locate and identify the person. This threat is imminent and we cannot wait "
    "for a court order. Records for the last 48 hours.\n\n"
    "Sincerely,\nSpecial Agent Dana Reyes\nFederal Bureau of Investigation\n(202) 555-0147\n"
    "dana.reyes@fbi.gov\n"
)
ACK_TOKEN = "s3cret-oncall-token"


@dataclass
class Receiver:
    """One local HTTP endpoint per sink kind; ``fail`` makes it answer 500."""

    hits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    fail: set[str] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.fail:
            return web.Response(status=500)
        self.hits.setdefault(name, []).append(await request.json())
        return web.Response(status=202)


@dataclass
class MailSink:
    messages: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.original_content)
        return "250 OK"


@dataclass
class Pager:
    app: App
    clock: FakeClock
    port: int
    receiver: Receiver
    mail: MailSink
    http: str

    async def send(self, raw: bytes, mail_from: str = LE_SENDER) -> None:
        def go() -> None:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                client.sendmail(mail_from, [REQUEST_ADDRESS], raw)

        await asyncio.to_thread(go)
        await self.app.runner.drain()
        await self.app.alerts.tick()

    async def alerts(self) -> list[Alert]:
        async with self.app.store.sessions() as session:
            return list((await session.execute(select(Alert))).scalars())


@pytest.fixture
async def pager(tmp_path: Path) -> AsyncIterator[Pager]:
    receiver = Receiver()
    web_app = web.Application()
    web_app.router.add_post("/{name}", receiver.handle)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    loop = asyncio.get_running_loop()
    mail = MailSink()
    mail_server = await loop.create_server(lambda: SMTP(mail, loop=loop), "127.0.0.1", 0)
    settings = make_settings(
        tmp_path,
        outbox={"relay_port": mail_server.sockets[0].getsockname()[1]},
        alerts={
            "escalation_minutes": 5,
            "retry_delays_seconds": [30],
            "ack_tokens": {"dana": hashlib.sha256(ACK_TOKEN.encode()).hexdigest()},
            "tiers": [
                {"name": "primary", "sinks": ["webhook", "slack"]},
                {"name": "secondary", "sinks": ["pagerduty", "email"]},
            ],
            "sinks": {
                "webhook": {"type": "webhook", "url": f"{base}/webhook"},
                "slack": {"type": "slack", "url": f"{base}/slack"},
                "pagerduty": {"type": "pagerduty", "url": f"{base}/pagerduty",
                              "routing_key": "R0UTING"},
                "email": {"type": "email", "to": "oncall@example-platform.com"},
            },
        },
        directory=[{"agency": "FBI Washington Field Office", "phone": "+12025550100",
                    "domains": ["fbi.gov"]}],
        blocked_senders=["compromised.agent@fbi.gov"],
    )  # fmt: skip
    clock = FakeClock()
    app = await build_app(settings, clock=clock)
    server = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
    http_runner = web.AppRunner(make_http_app(settings, app.store, app.alert_book, app.alerts))
    await http_runner.setup()
    http_site = web.TCPSite(http_runner, "127.0.0.1", 0)
    await http_site.start()
    http = f"http://127.0.0.1:{http_site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        yield Pager(app, clock, server.sockets[0].getsockname()[1], receiver, mail, http)
    finally:
        server.close()
        await server.wait_closed()
        await http_runner.cleanup()
        await app.close()
        mail_server.close()
        await runner.cleanup()


def emergency(sender: str = LE_SENDER, body: str = EMERGENCY_BODY, **kw: Any) -> bytes:
    return request_message(sender=sender, subject="URGENT: Emergency Disclosure Request",
                           body=body, **kw)  # fmt: skip


async def test_authenticated_emergency_pages_at_once_with_what_staff_need(pager: Pager) -> None:
    await pager.send(emergency())
    [hit] = pager.receiver.hits["webhook"]
    assert hit["action"] == "trigger"
    alert = hit["alert"]
    assert alert["kind"] == "emergency"
    assert alert["severity"] == "critical"
    assert alert["authentication"] == "authenticated"
    assert alert["confirmation"] == "awaiting sender confirmation"
    assert alert["sender"] == LE_SENDER
    assert "Federal Bureau of Investigation" in alert["agency"]
    assert {"kind": "username", "value": "threat_poster"} in alert["accounts"]
    assert alert["case_url"].endswith(alert["case_id"])
    assert "+12025550100" in alert["verify"]  # the directory number, not the request's
    codes = {s["code"] for s in alert["fraud_signals"]}
    assert {"first_request_from_sender", "first_request_from_agency",
            "callback_number_differs"} <= codes  # fmt: skip
    assert "slack" not in pager.receiver.hits  # the first sink worked: no fallback


async def test_missing_items_are_on_the_alert_and_in_the_response(pager: Pager) -> None:
    await pager.send(emergency(body="Please send everything on @someone now.\n"))
    alert = pager.receiver.hits["webhook"][0]["alert"]
    assert "the nature of the emergency" in alert["missing"]
    assert "who is in danger" in alert["missing"]
    outbox = Path(pager.app.settings.outbox.folder)
    await pager.app.outbox.deliver_due()
    [response] = [p.read_text() for p in outbox.glob("*.eml")]
    assert "the nature of the emergency" in response


async def test_dead_sink_falls_back_to_the_next(pager: Pager) -> None:
    pager.receiver.fail.add("webhook")
    await pager.send(emergency())
    [hit] = pager.receiver.hits["slack"]
    assert "EMERGENCY Disclosure Request" in hit["text"]
    async with pager.app.store.sessions() as session:
        delivery = (await session.execute(select(AlertDelivery))).scalar_one()
    assert delivery.sent_via == "slack"
    assert delivery.last_error
    assert "webhook" in delivery.last_error


async def test_all_sinks_down_retries_with_backoff_until_delivered(pager: Pager) -> None:
    pager.receiver.fail.update({"webhook", "slack"})
    await pager.send(emergency())
    async with pager.app.store.sessions() as session:
        delivery = (await session.execute(select(AlertDelivery))).scalar_one()
    assert delivery.status == "pending"
    assert delivery.attempts == 1
    assert await pager.app.alerts.deliver_due() == 0  # backoff: not due yet
    pager.receiver.fail.clear()
    pager.clock.advance(timedelta(seconds=31))
    assert await pager.app.alerts.deliver_due() == 1
    assert len(pager.receiver.hits["webhook"]) == 1


async def test_unacknowledged_alert_escalates_to_the_next_tier(pager: Pager) -> None:
    await pager.send(emergency())
    pager.clock.advance(timedelta(minutes=4))
    await pager.app.alerts.tick()
    assert "pagerduty" not in pager.receiver.hits
    pager.clock.advance(timedelta(minutes=2))
    await pager.app.alerts.tick()
    [event] = pager.receiver.hits["pagerduty"]
    assert event["routing_key"] == "R0UTING"
    assert event["event_action"] == "trigger"
    assert event["payload"]["severity"] == "critical"
    assert event["dedup_key"] == event["payload"]["custom_details"]["case_id"]
    assert event["payload"]["summary"].startswith("ESCALATED")
    [alert] = await pager.alerts()
    assert alert.tier == 1


async def test_ack_over_http_needs_a_token_and_stops_escalation(pager: Pager) -> None:
    await pager.send(emergency())
    [alert] = await pager.alerts()
    async with ClientSession() as http:
        async with http.post(f"{pager.http}/alerts/{alert.id}/ack") as response:
            assert response.status == 401
        headers = {"Authorization": "Bearer wrong"}
        async with http.post(f"{pager.http}/alerts/{alert.id}/ack", headers=headers) as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {ACK_TOKEN}"}
        async with http.post(f"{pager.http}/alerts/{alert.id}/ack", headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["acknowledged_by"] == "dana"
        async with http.post(f"{pager.http}/alerts/9999/ack", headers=headers) as response:
            assert response.status == 404
    await pager.app.alerts.tick()
    assert [h["action"] for h in pager.receiver.hits["webhook"]] == ["trigger", "acknowledge"]
    pager.clock.advance(timedelta(hours=1))
    await pager.app.alerts.tick()
    assert "pagerduty" not in pager.receiver.hits
    case = await pager.app.store.get_case(alert.case_id)
    assert case is not None
    ack = [e for e in case["events"] if e["code"] == "alert_acknowledged"]
    assert ack
    assert "dana" in ack[0]["detail"]


async def test_staff_record_the_callback(pager: Pager) -> None:
    await pager.send(emergency())
    [alert] = await pager.alerts()
    body = {"number": "+12025550100", "result": "verified", "notes": "spoke to the duty agent"}
    async with ClientSession() as http:
        async with http.post(f"{pager.http}/cases/{alert.case_id}/callback", json=body) as r:
            assert r.status == 401
        headers = {"Authorization": f"Bearer {ACK_TOKEN}"}
        async with http.post(
            f"{pager.http}/cases/{alert.case_id}/callback", json={"number": "x"}, headers=headers
        ) as r:
            assert r.status == 400
        async with http.post(
            f"{pager.http}/cases/{alert.case_id}/callback", json=body, headers=headers
        ) as r:
            assert r.status == 200
    case = await pager.app.store.get_case(alert.case_id)
    assert case is not None
    [event] = [e for e in case["events"] if e["code"] == "callback_verified"]
    assert event["actor"] == "dana"
    assert "+12025550100" in event["detail"]


async def test_confirmation_updates_the_alert(pager: Pager) -> None:
    await pager.send(emergency())
    await pager.app.outbox.deliver_due()
    [response] = list(Path(pager.app.settings.outbox.folder).glob("*.eml"))
    reply_to = next(
        line.split(" ", 1)[1] for line in response.read_text().splitlines()
        if line.startswith("Reply-To:")
    )  # fmt: skip
    reply = request_message(message_id="<confirm@fbi.gov>", subject="Re: confirm",
                            body="Confirmed.\n")  # fmt: skip

    def go() -> None:
        with smtplib.SMTP("127.0.0.1", pager.port, timeout=30) as client:
            client.sendmail(LE_SENDER, [reply_to], reply)

    await asyncio.to_thread(go)
    await pager.app.runner.drain()
    await pager.app.alerts.tick()
    actions = [h["action"] for h in pager.receiver.hits["webhook"]]
    assert actions == ["trigger", "update"]
    assert pager.receiver.hits["webhook"][1]["alert"]["confirmation"] == "confirmed by sender"


async def test_unauthenticated_emergency_is_held_with_a_lower_distinct_alert(
    pager: Pager,
) -> None:
    await pager.send(emergency(authenticated=False, message_id="<unauth@fbi.gov>"))
    alert = pager.receiver.hits["webhook"][0]["alert"]
    assert alert["kind"] == "unverified_emergency"
    assert alert["severity"] == "warning"
    assert alert["authentication"] == "unverified"
    case = await pager.app.store.get_case(alert["case_id"])
    assert case is not None
    assert case["status"] == "held"


async def test_blocklisted_sender_is_held_and_flagged(pager: Pager) -> None:
    sender = "compromised.agent@fbi.gov"
    await pager.send(emergency(sender=sender, message_id="<blk@fbi.gov>"), mail_from=sender)
    alert = pager.receiver.hits["webhook"][0]["alert"]
    assert "sender_blocklisted" in {s["code"] for s in alert["fraud_signals"]}
    assert alert["kind"] == "unverified_emergency"
    await pager.app.outbox.deliver_due()
    assert not list(Path(pager.app.settings.outbox.folder).glob("*.eml"))  # never answered


async def test_body_level_emergency_pages_lower(pager: Pager) -> None:
    body = ("Pursuant to 18 U.S.C. 2702(b)(8), we request subscriber information for @kid_missing"
            " to locate a missing 12-year-old girl believed to be in danger.\n")  # fmt: skip
    await pager.send(request_message(message_id="<body@fbi.gov>", subject="Request", body=body))
    alert = pager.receiver.hits["webhook"][0]["alert"]
    assert alert["kind"] == "emergency_suspected"
    assert alert["severity"] == "warning"


async def test_fraud_signals_for_freemail_and_reply_to(pager: Pager) -> None:
    body = EMERGENCY_BODY.replace("dana.reyes@fbi.gov", "dana.reyes.fbi@gmail.com")
    raw = emergency(body=body, message_id="<fm@fbi.gov>").replace(
        b"Subject:", b"Reply-To: agent@proton.me\nSubject:", 1
    )
    await pager.send(raw)
    codes = {s["code"] for s in pager.receiver.hits["webhook"][0]["alert"]["fraud_signals"]}
    assert {"freemail_in_signature", "reply_to_outside_policy"} <= codes


async def test_second_request_from_the_same_sender_is_not_first(pager: Pager) -> None:
    await pager.send(request_message(message_id="<earlier@fbi.gov>"))
    await pager.send(emergency(message_id="<later@fbi.gov>"))
    codes = {s["code"] for s in pager.receiver.hits["webhook"][0]["alert"]["fraud_signals"]}
    assert "first_request_from_sender" not in codes


async def test_email_sink_delivers_to_the_relay(pager: Pager) -> None:
    pager.receiver.fail.update({"webhook", "slack"})
    await pager.send(emergency())
    pager.clock.advance(timedelta(minutes=6))  # escalate to the tier with pagerduty, email
    pager.receiver.fail.add("pagerduty")
    await pager.app.alerts.tick()
    assert len(pager.mail.messages) == 1
    assert b"EMERGENCY Disclosure Request" in pager.mail.messages[0]


def test_emergency_subject_jumps_the_spool_queue(tmp_path: Path) -> None:
    from ingest.smtp import spool_priority

    assert spool_priority(emergency()) == PRIORITY_URGENT
    assert spool_priority(request_message()) != PRIORITY_URGENT


def _spool_lane(port: int, raw: bytes, source: str) -> str:
    """The spool id the listener named in its 250 reply ("p<lane>-…")."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30, source_address=(source, 0)) as client:
        client.ehlo()
        client.mail(LE_SENDER)
        client.rcpt(REQUEST_ADDRESS)
        code, reply = client.data(raw)
    assert code == 250, reply
    return reply.decode().rsplit(" as ", 1)[1][:2]


@pytest.mark.parametrize(
    ("raw", "source", "lane"),
    [
        (emergency(), "127.0.0.1", "p0"),  # the boundary MTA passed it: first in line
        (emergency(authenticated=False), "127.0.0.1", "p3"),  # nobody vouches: lower lane
        (emergency(), "127.0.0.2", "p3"),  # our authserv-id, but not from the boundary MTA
        (emergency().replace(b"dmarc=pass", b"dmarc=fail", 1), "127.0.0.1", "p3"),
        (request_message(), "127.0.0.1", "p5"),  # ordinary mail
        # a lookalike that signs its own mail passes DMARC for itself, but no policy
        (emergency(sender="agent@fbi-gov.com"), "127.0.0.1", "p3"),
        (emergency(sender="agent@fbl.gov"), "127.0.0.1", "p3"),
    ],
    ids=[
        "authenticated",
        "unauthenticated",
        "outside-peer",
        "dmarc-fail",
        "ordinary",
        "lookalike",
        "typo-under-gov",
    ],
)
async def test_only_vouched_emergencies_take_the_urgent_lane(
    listener: Any, raw: bytes, source: str, lane: str
) -> None:
    assert await asyncio.to_thread(_spool_lane, listener.port, raw, source) == lane
