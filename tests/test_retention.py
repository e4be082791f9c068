"""Retention: personal data of expired, closed and dropped mail is purged on time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from cases.models import Case, IdentifierRecord, MessageRecord
from cases.retention import PURGED, purge
from core.clock import FakeClock, SystemClock
from le_intake.app import App
from tests.conftest import Listener, request_message


async def test_expired_case_and_dropped_mail_are_purged_after_retention(
    listener: Listener,
) -> None:
    app: App = listener.app
    clock = FakeClock(SystemClock().now())  # the listener stamps mail with the real time
    app.store.clock = clock
    app.conversation.clock = clock
    await listener.send(request_message(), "agent.smith@fbi.gov",
                        ["lawenforcement@example-platform.com"])  # fmt: skip
    await listener.send(request_message(sender="x@gmail.com", message_id="<g@gmail.com>"),
                        "x@gmail.com", ["lawenforcement@example-platform.com"])  # fmt: skip
    await app.runner.drain()
    clock.advance(timedelta(days=15))  # the response expires unanswered

    async with app.store.sessions() as session, session.begin():
        assert await app.conversation.expire_unconfirmed(session) == 1
    clock.advance(timedelta(days=91))
    async with app.store.sessions() as session, session.begin():
        report = await purge(session, app.settings.retention, clock)
    assert report.cases == 1
    assert report.dropped_messages == 1

    async with app.store.sessions() as session:
        case = (await session.execute(select(Case))).scalar_one()
        messages = (await session.execute(select(MessageRecord))).scalars().all()
        identifiers = (await session.execute(select(IdentifierRecord))).scalars().all()
    assert case.subject == PURGED
    assert all(m.text_body is None and m.subject == PURGED for m in messages)
    assert all(m.raw_sha256 for m in messages)  # hashes stay
    assert identifiers == []
    full = await app.store.get_case(case.id)
    assert full is not None
    assert "purged" in [e["code"] for e in full["events"]]

    async with app.store.sessions() as session, session.begin():
        again = await purge(session, app.settings.retention, clock)
    assert (again.cases, again.dropped_messages) == (0, 0)
