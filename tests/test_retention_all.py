"""Retention covers everything that holds personal data: held cases, alert payloads, event
details and ``spool/bad/``, each after its own period, each purge audited in counts only.

Real listener, runner, SQLite store and spool; a FakeClock moves time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from alerts.sinks import text_body
from cases.models import Alert, Case, Event, IdentifierRecord, MessageRecord
from cases.retention import PURGED, PurgeReport, purge
from core.clock import FakeClock, SystemClock
from core.envelope import Envelope
from ingest.smtp import start_smtp_server
from le_intake.app import App, build_app, sweep_forever
from le_intake.cli import main
from tests.conftest import LE_SENDER, REQUEST_ADDRESS, make_settings, request_message

EMERGENCY_BODY = (
    "The account @threat_poster (User ID: 1580044221) threatens to shoot students at Lincoln "
    "High School this morning. Call me back: dana.reyes.fbi@gmail.com, (202) 555-0147.\n"
)


@dataclass
class Desk:
    app: App
    clock: FakeClock
    port: int

    async def send(self, raw: bytes, mail_from: str = LE_SENDER) -> None:
        import smtplib

        def go() -> None:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                client.sendmail(mail_from, [REQUEST_ADDRESS], raw)

        await asyncio.to_thread(go)
        await self.app.runner.drain()

    async def purge(self, **kw: Any) -> PurgeReport:
        """One purge, committed; a dry run is rolled back, as ``le-intake purge`` does."""
        async with self.app.store.sessions() as session:
            await session.begin()
            report = await purge(session, self.app.settings.retention, self.clock, **kw)
            await (session.rollback() if kw.get("dry_run") else session.commit())
            return report

    async def rows(self, model: Any) -> list[Any]:
        async with self.app.store.sessions() as session:
            return list((await session.execute(select(model))).scalars())

    async def retention_events(self) -> list[Event]:
        return [e for e in await self.rows(Event) if e.kind == "retention"]


def build_settings(tmp_path: Path, **retention: float) -> Any:
    return make_settings(
        tmp_path,
        retention=retention,
        # pages are raised (and written with their case) but never sent: no dispatcher runs
        alert_webhook_url="http://127.0.0.1:9/never-called",
    )


@contextlib.asynccontextmanager
async def desk_for(settings: Any) -> AsyncIterator[Desk]:
    clock = FakeClock(SystemClock().now())  # spool files carry the real time
    app = await build_app(settings, clock=clock)
    server = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
    try:
        yield Desk(app, clock, server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
        await app.close()


def emergency(authenticated: bool, message_id: str) -> bytes:
    return request_message(subject="Emergency Disclosure Request", body=EMERGENCY_BODY,
                           message_id=message_id, authenticated=authenticated)  # fmt: skip


async def test_held_case_is_purged_after_held_days_with_its_alert(tmp_path: Path) -> None:
    settings = build_settings(tmp_path, held_days=180, alerts_days=1000, events_days=1000)
    async with desk_for(settings) as desk:
        await desk.send(emergency(authenticated=False, message_id="<held-1@fbi.gov>"))
        [case] = await desk.rows(Case)
        assert case.status == "held"
        assert await desk.rows(IdentifierRecord)

        desk.clock.advance(timedelta(days=179))
        assert (await desk.purge()).cases == 0
        [case] = await desk.rows(Case)
        assert case.subject == "Emergency Disclosure Request"

        desk.clock.advance(timedelta(days=2))
        report = await desk.purge()
        assert report.cases == 1
        assert report.alerts == 1  # the case's alert payload went with it
        [case] = await desk.rows(Case)
        [message] = await desk.rows(MessageRecord)
        [alert] = await desk.rows(Alert)
        assert case.subject == PURGED
        assert message.text_body is None
        assert message.subject == PURGED
        assert all(v["message"] == PURGED for v in message.verdicts)
        assert {v["code"] for v in message.verdicts}  # the codes stay
        assert await desk.rows(IdentifierRecord) == []
        assert alert.payload["subject"] == PURGED
        assert alert.payload["accounts"] == []
        full = await desk.app.store.get_case(case.id)
        assert full is not None
        [event] = [e for e in full["events"] if e["code"] == "purged"]
        assert "held" in event["detail"]
        assert (await desk.purge()) == PurgeReport(0, 0)  # nothing twice


async def test_alert_payloads_are_purged_after_alerts_days(tmp_path: Path) -> None:
    settings = build_settings(tmp_path, alerts_days=90, expired_days=1000, events_days=1000)
    async with desk_for(settings) as desk:
        await desk.send(emergency(authenticated=True, message_id="<emg-1@fbi.gov>"))
        [alert] = await desk.rows(Alert)
        assert alert.payload["subject"] == "Emergency Disclosure Request"
        assert {"kind": "username", "value": "threat_poster"} in alert.payload["accounts"]
        signal_texts = " ".join(s["message"] for s in alert.payload["fraud_signals"])
        assert "dana.reyes.fbi@gmail.com" in signal_texts

        desk.clock.advance(timedelta(days=89))
        assert (await desk.purge()).alerts == 0

        desk.clock.advance(timedelta(days=2))
        report = await desk.purge()
        assert report.alerts == 1
        assert report.cases == 0  # the case itself is not past its own period
        [alert] = await desk.rows(Alert)
        payload = alert.payload
        assert payload["purged"] is True
        assert payload["subject"] == PURGED
        assert payload["accounts"] == []
        assert "freemail_in_signature" in {s["code"] for s in payload["fraud_signals"]}
        assert "gmail" not in str(payload)
        assert "threat_poster" not in str(payload)
        assert payload["case_id"] == alert.case_id
        # a late escalation of a purged alert still renders
        assert alert.case_id in text_body("escalate", payload)
        [event] = [e for e in await desk.retention_events() if e.code == "purged_alerts"]
        assert "1 alert(s)" in event.detail
        assert "@" not in event.detail
        assert (await desk.purge()).alerts == 0


async def test_event_details_are_purged_after_events_days(tmp_path: Path) -> None:
    settings = build_settings(tmp_path, events_days=365)
    async with desk_for(settings) as desk:
        await desk.send(request_message(sender="x@gmail.com", message_id="<g@gmail.com>"),
                        mail_from="x@gmail.com")  # fmt: skip
        await desk.send(request_message(authenticated=False, message_id="<u@fbi.gov>"))
        before = {e.id: e for e in await desk.rows(Event)}
        assert any("gmail.com" in e.detail for e in before.values())

        desk.clock.advance(timedelta(days=364))
        assert (await desk.purge()).events == 0

        desk.clock.advance(timedelta(days=2))
        report = await desk.purge()
        assert report.events == len(before)
        after = {e.id: e for e in await desk.rows(Event)}
        for event_id, old in before.items():
            new = after[event_id]
            assert new.detail == PURGED
            assert (new.kind, new.code, new.at, new.actor) == (old.kind, old.code, old.at,
                                                               old.actor)  # fmt: skip
        audit = await desk.retention_events()
        assert "purged_events" in {e.code for e in audit}
        assert all("@" not in e.detail and e.detail != PURGED for e in audit)

        desk.clock.advance(timedelta(days=400))
        again = await desk.purge()
        assert again.events == 0  # the purge's own audit events are kept
        assert all(e.detail != PURGED for e in await desk.retention_events())


def spool_a_bad_message(app: App) -> str:
    envelope = Envelope(mail_from=LE_SENDER, rcpt_tos=(REQUEST_ADDRESS,),
                        received_at=SystemClock().now())  # fmt: skip
    item_id = app.spool.put(request_message(message_id="<bad-1@fbi.gov>"), envelope)
    item = app.spool.claim(item_id)
    assert item is not None
    assert app.spool.fail(item, "Traceback: a stage raised", max_attempts=1)
    return item_id


async def test_bad_spool_is_purged_after_bad_days(tmp_path: Path) -> None:
    settings = build_settings(tmp_path, bad_days=30)
    async with desk_for(settings) as desk:
        item_id = spool_a_bad_message(desk.app)
        bad = desk.app.spool.bad
        assert sorted(p.name for p in bad.iterdir()) == [item_id, f"{item_id}.error.txt"]

        desk.clock.advance(timedelta(days=29))
        assert (await desk.purge(bad_dir=bad)).bad_files == 0
        desk.clock.advance(timedelta(days=2))
        assert (await desk.purge(bad_dir=bad, dry_run=True)).bad_files == 1
        assert len(list(bad.iterdir())) == 2  # a dry run deletes nothing
        assert (await desk.purge()).bad_files == 0  # without bad_dir, bad/ is left alone

        report = await desk.purge(bad_dir=bad)
        assert report.bad_files == 1
        assert list(bad.iterdir()) == []
        [event] = [e for e in await desk.retention_events() if e.code == "purged_bad_spool"]
        assert event.detail.startswith("1 message(s)")
        assert item_id not in event.detail


def age(path: Path, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(path, (then, then))


async def test_serve_sweep_purges_bad_spool(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, retention={"bad_days": 30, "sweep_interval_seconds": 0.1},
                             replies={"expiry_sweep_interval_seconds": 0.1})  # fmt: skip
    app = await build_app(settings)
    try:
        item_id = spool_a_bad_message(app)
        young = spool_a_bad_message(app)
        for path in app.spool.bad.iterdir():
            if path.name.startswith(item_id):
                age(path, 31)
        sweep = asyncio.create_task(sweep_forever(app))
        try:
            for _ in range(100):
                if not (app.spool.bad / item_id).exists():
                    break
                await asyncio.sleep(0.05)
        finally:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
        assert sorted(p.name for p in app.spool.bad.iterdir()) == [young, f"{young}.error.txt"]
    finally:
        await app.close()


@pytest.mark.parametrize("dry_run", [True, False])
def test_cli_purge_covers_bad_spool(tmp_path: Path, dry_run: bool) -> None:
    bad = tmp_path / "spool" / "bad"
    bad.mkdir(parents=True)
    (bad / "p5-1").write_bytes(b"X-LE-Intake-Envelope: {}\r\nSubject: x\r\n\r\nbody\r\n")
    (bad / "p5-1.error.txt").write_text("attempts: 3\n")
    for path in bad.iterdir():
        age(path, 40)
    env = {
        "LE_INTAKE_DATA_DIR": str(tmp_path),
        "LE_INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cases.db",
        "LE_INTAKE_SPOOL_DIR": str(tmp_path / "spool"),
        "LE_INTAKE_LOG_LEVEL": "ERROR",
    }
    result = CliRunner().invoke(main, ["purge", *(["--dry-run"] if dry_run else [])], env=env)
    assert result.exit_code == 0, result.output
    assert "1 message(s) in spool/bad/" in result.output
    assert (bad / "p5-1").exists() is dry_run
    assert (bad / "p5-1.error.txt").exists() is dry_run
