"""Unverified pages are limited per sender, domain and peer; repeats are recorded on their
cases and paged as one digest after the window; authenticated emergencies always page.

Real parts: the SMTP listener, the runner, the SQLite store, the alert dispatcher posting
to a local HTTP receiver; a FakeClock moves the window.
"""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from alerts.content import rate_keys
from alerts.sinks import text_body
from cases.models import Alert, AlertRollup
from core.clock import FakeClock
from core.context import MessageContext, Sender
from core.envelope import Envelope
from ingest.smtp import start_smtp_server
from le_intake.app import App, build_app
from tests.conftest import REQUEST_ADDRESS, make_settings, request_message

BODY = (
    "The account @threat_poster (User ID: 1580044221) posted that he will shoot students at "
    "Lincoln High School this morning. We need the subscriber information now.\n"
)
DANGER = (
    "Pursuant to 18 U.S.C. 2702(b)(8), we request subscriber information for @kid_missing to "
    "locate a missing 12-year-old girl believed to be in danger.\n"
)
WINDOW = 15


@dataclass
class Receiver:
    hits: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(await request.json())
        return web.Response(status=202)

    def kinds(self, action: str = "trigger") -> list[str]:
        """The kinds of alert paged with ``action`` (escalations of the first page come
        on their own schedule)."""
        return [h["alert"]["kind"] for h in self.hits if h["action"] == action]

    def last_trigger(self) -> dict[str, Any]:
        alert: dict[str, Any] = [h for h in self.hits if h["action"] == "trigger"][-1]["alert"]
        return alert


@dataclass
class Desk:
    app: App
    clock: FakeClock
    port: int
    receiver: Receiver
    sent: int = 0

    async def send(self, sender: str, *, authenticated: bool = False, subject: str =
                   "Emergency Disclosure Request", body: str = BODY) -> None:  # fmt: skip
        self.sent += 1
        raw = request_message(sender=sender, subject=subject, body=body,
                              message_id=f"<m{self.sent}@{sender.rpartition('@')[2]}>",
                              authenticated=authenticated)  # fmt: skip

        def go() -> None:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                client.sendmail(sender, [REQUEST_ADDRESS], raw)

        await asyncio.to_thread(go)
        await self.app.runner.drain()
        await self.app.alerts.tick()

    async def alerts(self) -> list[Alert]:
        async with self.app.store.sessions() as session:
            return list((await session.execute(select(Alert).order_by(Alert.id))).scalars())

    async def rollups(self) -> list[AlertRollup]:
        async with self.app.store.sessions() as session:
            return list((await session.execute(select(AlertRollup))).scalars())

    async def events(self, case_id: str) -> list[str]:
        case = await self.app.store.get_case(case_id)
        assert case is not None
        return [e["code"] for e in case["events"]]


DeskFactory = Callable[..., Awaitable[Desk]]


@pytest.fixture
async def make_desk(tmp_path: Path) -> AsyncIterator[DeskFactory]:
    receiver = Receiver()
    web_app = web.Application()
    web_app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(web_app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    opened: list[tuple[App, Any]] = []

    async def make(alerts: dict[str, Any] | None = None, **overrides: Any) -> Desk:
        settings = make_settings(
            tmp_path,
            alerts={"unverified_window_minutes": WINDOW, "tiers": [{"name": "primary",
                    "sinks": ["hook"]}], "sinks": {"hook": {"type": "webhook", "url": url}},
                    **(alerts or {})},
            **overrides,
        )  # fmt: skip
        clock = FakeClock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
        app = await build_app(settings, clock=clock)
        server = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
        opened.append((app, server))
        return Desk(app, clock, server.sockets[0].getsockname()[1], receiver)

    try:
        yield make
    finally:
        for app, server in opened:
            server.close()
            await server.wait_closed()
            await app.close()
        await runner.cleanup()


async def test_forged_emergencies_page_once_and_repeats_come_as_one_digest(
    make_desk: DeskFactory,
) -> None:
    desk = await make_desk()
    for _ in range(3):
        await desk.send("agent.smith@fbi.gov")
    assert desk.receiver.kinds() == ["unverified_emergency"]  # one page, not three
    first, *repeats = await desk.alerts()
    assert first.status == "open"
    assert [a.status for a in repeats] == ["rolled_up", "rolled_up"]
    assert all(a.kind == "unverified_emergency" and a.escalate_at is None for a in repeats)
    assert len({first.case_id, *(a.case_id for a in repeats)}) == 3  # each on its own case
    for repeat in repeats:
        assert "alert_rolled_up" in await desk.events(repeat.case_id)
        assert repeat.payload["sender"] == "agent.smith@fbi.gov"  # recorded in full
    assert {r.limited_by for r in await desk.rollups()} == {"sender"}

    desk.clock.advance(timedelta(minutes=WINDOW - 1))
    await desk.app.alerts.tick()
    assert desk.receiver.kinds() == ["unverified_emergency"]  # the window is still open

    desk.clock.advance(timedelta(minutes=2))
    await desk.app.alerts.tick()
    assert desk.receiver.kinds() == ["unverified_emergency", "unverified_digest"]
    digest = desk.receiver.last_trigger()
    assert "2 more unverified emergency request(s) from agent.smith@fbi.gov" in digest["summary"]
    assert {r["case_id"] for r in digest["repeats"]} == {a.case_id for a in repeats}
    assert digest["repeat_count"] == 2
    assert digest["case_id"] == first.case_id
    rendered = text_body("trigger", digest)
    assert all(a.case_id in rendered for a in repeats)
    for repeat in repeats:
        assert "alert_digested" in await desk.events(repeat.case_id)
    assert "alert_digest_raised" in await desk.events(first.case_id)

    await desk.app.alerts.tick()
    desk.clock.advance(timedelta(hours=2))
    await desk.app.alerts.tick()
    # one digest, sent once, and it does not escalate (the first page does, unacknowledged)
    assert desk.receiver.kinds() == ["unverified_emergency", "unverified_digest"]
    assert set(desk.receiver.kinds("escalate")) == {"unverified_emergency"}

    await desk.send("agent.smith@fbi.gov")  # a new window: pages again
    assert desk.receiver.kinds()[-1] == "unverified_emergency"


async def test_limit_per_registrable_domain(make_desk: DeskFactory) -> None:
    desk = await make_desk(alerts={"unverified_max_per_domain": 2})
    for sender in ("a@fbi.gov", "b@cyber.fbi.gov", "c@fbi.gov", "a+2@fbi.gov"):
        await desk.send(sender)
    assert desk.receiver.kinds() == ["unverified_emergency"] * 2
    # c@ by its domain; a+2@ is a@ again (the +tag does not make a new sender)
    assert sorted(r.limited_by for r in await desk.rollups()) == ["domain", "sender"]


async def test_limit_per_peer_unless_the_peer_is_the_trusted_boundary_mta(
    make_desk: DeskFactory,
) -> None:
    senders = ("a@fbi.gov", "b@dea.gov", "c@usss.gov")
    direct = await make_desk(alerts={"unverified_max_per_peer": 2}, auth={"trusted_peers": []})
    for sender in senders:
        await direct.send(sender)
    assert direct.receiver.kinds() == ["unverified_emergency"] * 2
    assert [r.limited_by for r in await direct.rollups()] == ["peer"]


async def test_the_boundary_mta_is_not_a_peer_to_limit(make_desk: DeskFactory) -> None:
    # Loopback is a trusted peer in the demo config: every message comes from it.
    desk = await make_desk(alerts={"unverified_max_per_peer": 1})
    for sender in ("a@fbi.gov", "b@dea.gov", "c@usss.gov"):
        await desk.send(sender)
    assert desk.receiver.kinds() == ["unverified_emergency"] * 3


async def test_overall_limit_across_senders_domains_and_peers(make_desk: DeskFactory) -> None:
    desk = await make_desk(alerts={"unverified_max_total": 2})
    for sender in ("a@fbi.gov", "b@dea.gov", "c@usss.gov", "d@ice.gov"):
        await desk.send(sender)
    assert desk.receiver.kinds() == ["unverified_emergency"] * 2
    desk.clock.advance(timedelta(minutes=WINDOW + 1))
    await desk.app.alerts.tick()
    digest = desk.receiver.last_trigger()
    assert digest["kind"] == "unverified_digest"
    assert digest["repeat_count"] == 2
    assert {r["sender"] for r in digest["repeats"]} == {"c@usss.gov", "d@ice.gov"}


async def test_authenticated_emergencies_are_never_limited(make_desk: DeskFactory) -> None:
    desk = await make_desk(alerts={"unverified_max_total": 1})
    await desk.send("agent.smith@fbi.gov")  # an unverified page uses up the overall limit
    for _ in range(3):
        await desk.send("agent.smith@fbi.gov", authenticated=True)
    assert desk.receiver.kinds() == ["unverified_emergency", "emergency", "emergency",
                                     "emergency"]  # fmt: skip
    assert len(await desk.rollups()) == 0


async def test_body_level_signal_is_limited_only_when_unauthenticated(
    make_desk: DeskFactory,
) -> None:
    desk = await make_desk()
    for _ in range(2):
        await desk.send("agent.smith@fbi.gov", subject="Request", body=DANGER)
    assert desk.receiver.kinds() == ["emergency_suspected"]
    for _ in range(2):
        await desk.send("agent.jones@fbi.gov", subject="Request", body=DANGER,
                        authenticated=True)  # fmt: skip
    assert desk.receiver.kinds() == ["emergency_suspected"] * 3
    assert [r.limited_by for r in await desk.rollups()] == ["sender"]


async def test_acknowledging_a_rolled_up_alert_pages_nobody(make_desk: DeskFactory) -> None:
    desk = await make_desk()
    await desk.send("agent.smith@fbi.gov")
    await desk.send("agent.smith@fbi.gov")
    repeat = (await desk.alerts())[1]
    async with desk.app.store.sessions() as session, session.begin():
        await desk.app.alert_book.acknowledge(session, repeat.id, "dana")
    await desk.app.alerts.tick()
    assert [h["action"] for h in desk.receiver.hits] == ["trigger"]  # no ACKNOWLEDGED page
    assert "alert_acknowledged" in await desk.events(repeat.case_id)


def test_fax_pages_count_by_calling_number_not_by_provider(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    envelope = Envelope(mail_from="", rcpt_tos=(REQUEST_ADDRESS,),
                        received_at=datetime(2026, 11, 2, tzinfo=UTC), peer="198.51.100.7:443",
                        channel="fax-webhook")  # fmt: skip
    ctx = MessageContext(raw=b"", envelope=envelope, channel="fax-webhook",
                         fax={"calling": "+15124242999"},
                         sender=Sender("fax@fax.le-intake.invalid", "fax.le-intake.invalid", "fax",
                                       "le-intake.invalid"))  # fmt: skip
    keys = {(k.label, k.value) for k in rate_keys(settings, ctx)}
    assert keys == {("sender", "+15124242999"), ("all", "all unverified pages")}


def test_ipv6_peers_count_by_their_64(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)

    def peer_key(peer: str) -> str:
        envelope = Envelope(mail_from="a@fbi.gov", rcpt_tos=(REQUEST_ADDRESS,),
                            received_at=datetime(2026, 11, 2, tzinfo=UTC), peer=peer)  # fmt: skip
        ctx = MessageContext(raw=b"", envelope=envelope,
                             sender=Sender("a@fbi.gov", "fbi.gov", "", "fbi.gov"))  # fmt: skip
        [key] = [k for k in rate_keys(settings, ctx) if k.label == "peer"]
        return key.digest

    assert peer_key("2001:db8:1:2::5:25") == peer_key("2001:db8:1:2:ffff::9:2525")
    assert peer_key("2001:db8:1:2::5:25") != peer_key("2001:db8:1:3::5:25")
    assert peer_key("203.0.113.5:25") != peer_key("203.0.113.6:25")
