"""Raising, sending, escalating and acknowledging alerts.

``AlertBook`` works inside the case store's transaction: an emergency case and its alert
(and the first delivery) are committed together, so a page cannot be lost between them.
``AlertDispatcher`` sends pending deliveries right after the commit (the processor wakes it),
tries the tier's sinks in order (a dead sink falls back to the next), retries with backoff,
and escalates to the next tier when nobody acknowledges in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.content import alert_payload, fraud_signals
from alerts.sinks import Sink, SinkError, build_sink
from cases.models import Alert, AlertDelivery, Case, Event
from config.settings import Settings, SinkSettings, TierSettings
from ingest.context import MessageContext
from le_intake.clock import Clock

log = logging.getLogger("le_intake.alerts")

DEMO_WEBHOOK = "demo-webhook"


def tiers_of(settings: Settings) -> list[TierSettings]:
    """The configured tiers; the demo webhook (``alert_webhook_url``) joins the first."""
    tiers = list(settings.alerts.tiers)
    if settings.alert_webhook_url:
        if tiers:
            tiers[0] = TierSettings(name=tiers[0].name, sinks=(DEMO_WEBHOOK, *tiers[0].sinks))
        else:
            tiers.append(TierSettings(name="on-call", sinks=(DEMO_WEBHOOK,)))
    return tiers


def sinks_of(settings: Settings) -> dict[str, SinkSettings]:
    sinks = dict(settings.alerts.sinks)
    if settings.alert_webhook_url:
        sinks[DEMO_WEBHOOK] = SinkSettings(type="webhook", url=settings.alert_webhook_url)
    return sinks


class AlertBook:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.tiers = tiers_of(settings)

    @property
    def active(self) -> bool:
        return self.settings.alerts.enabled and bool(self.tiers)

    def _event(self, session: AsyncSession, case_id: str, code: str, detail: str) -> None:
        session.add(
            Event(at=self.clock.now(), case_id=case_id, kind="alert", code=code, detail=detail)
        )

    def _delivery(self, session: AsyncSession, alert: Alert, action: str) -> None:
        now = self.clock.now()
        session.add(
            AlertDelivery(
                alert_id=alert.id,
                action=action,
                tier=alert.tier,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )

    async def raise_alert(
        self, session: AsyncSession, ctx: MessageContext, case: Case, kind: str, row_id: int
    ) -> Alert | None:
        if not self.active:
            return None
        severity = {
            "emergency": self.settings.alerts.severity_authenticated,
            "unverified_emergency": self.settings.alerts.severity_unverified,
            "emergency_suspected": self.settings.alerts.severity_suspected,
        }[kind]
        signals = await fraud_signals(session, self.settings, ctx, row_id)
        now = self.clock.now()
        alert = Alert(
            case_id=case.id,
            kind=kind,
            severity=severity,
            status="open",
            tier=0,
            created_at=now,
            escalate_at=now + timedelta(minutes=self.settings.alerts.escalation_minutes),
            payload=alert_payload(self.settings, case, ctx, kind, severity, signals, False),
        )
        session.add(alert)
        await session.flush()
        self._delivery(session, alert, "trigger")
        self._event(
            session,
            case.id,
            "alert_raised",
            f"{kind} alert ({severity}) to tier {self.tiers[0].name}.",
        )
        return alert

    async def case_confirmed(self, session: AsyncSession, case_id: str) -> None:
        """The sender confirmed: open alerts of the case are updated."""
        alerts = (
            (await session.execute(select(Alert).where(Alert.case_id == case_id))).scalars().all()
        )
        for alert in alerts:
            payload = dict(alert.payload)
            payload["confirmation"] = "confirmed by sender"
            payload["summary"] = str(payload["summary"]).replace(
                "awaiting sender confirmation", "confirmed by sender"
            )
            alert.payload = payload
            self._delivery(session, alert, "update")
            self._event(session, case_id, "alert_updated", "The sender confirmed the request.")

    async def acknowledge(self, session: AsyncSession, alert_id: int, by: str) -> Alert | None:
        alert = await session.get(Alert, alert_id)
        if alert is None:
            return None
        if alert.status == "acknowledged":
            return alert
        alert.status = "acknowledged"
        alert.acknowledged_at = self.clock.now()
        alert.acknowledged_by = by
        alert.escalate_at = None
        self._delivery(session, alert, "acknowledge")
        self._event(
            session, alert.case_id, "alert_acknowledged", f"Alert {alert.id} acknowledged by {by}."
        )
        return alert

    async def escalate_due(self, session: AsyncSession) -> int:
        now = self.clock.now()
        due = (
            (
                await session.execute(
                    select(Alert).where(Alert.status == "open", Alert.escalate_at <= now)
                )
            )
            .scalars()
            .all()
        )
        for alert in due:
            if alert.tier + 1 < len(self.tiers):
                alert.tier += 1
            alert.escalate_at = now + timedelta(minutes=self.settings.alerts.escalation_minutes)
            self._delivery(session, alert, "escalate")
            self._event(
                session,
                alert.case_id,
                "alert_escalated",
                f"Not acknowledged in time: paging tier {self.tiers[alert.tier].name}.",
            )
        return len(due)


class AlertDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        book: AlertBook,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.book = book
        self.settings = settings
        self.clock = clock
        self._wake = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._sinks: dict[str, Sink] = {}

    def notify(self) -> None:
        self._wake.set()

    def _sink(self, name: str) -> Sink | None:
        if name not in self._sinks:
            config = sinks_of(self.settings).get(name)
            if config is None:
                return None
            if self._http is None:
                self._http = aiohttp.ClientSession()
            self._sinks[name] = build_sink(name, config, self._http, self.settings.outbox)
        return self._sinks[name]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _delay(self, attempts: int) -> timedelta:
        delays = self.settings.alerts.retry_delays_seconds or (5.0,)
        return timedelta(seconds=delays[min(attempts, len(delays)) - 1])

    async def deliver_due(self) -> int:
        now = self.clock.now()
        async with self.sessions() as session:
            due = (
                await session.execute(
                    select(AlertDelivery, Alert)
                    .join(Alert, Alert.id == AlertDelivery.alert_id)
                    .where(AlertDelivery.status == "pending", AlertDelivery.next_attempt_at <= now)
                    .order_by(AlertDelivery.id)
                )
            ).all()
            work = [(d.id, d.action, d.tier, dict(a.payload), a.case_id) for d, a in due]
        sent = 0
        for delivery_id, action, tier, payload, case_id in work:
            sent += await self._deliver(delivery_id, action, tier, payload, case_id)
        return sent

    async def _deliver(
        self, delivery_id: int, action: str, tier: int, payload: dict[str, object], case_id: str
    ) -> int:
        tiers = self.book.tiers
        names = tiers[min(tier, len(tiers) - 1)].sinks if tiers else ()
        errors: list[str] = []
        via = None
        for name in names:
            sink = self._sink(name)
            if sink is None:
                errors.append(f"{name}: not configured")
                continue
            try:
                await sink.send(action, payload)
            except SinkError as exc:
                errors.append(str(exc))
                continue
            via = name
            break
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            delivery = await session.get(AlertDelivery, delivery_id)
            assert delivery is not None
            delivery.attempts += 1
            if via is not None:
                delivery.status, delivery.sent_at, delivery.sent_via = "sent", now, via
                if errors:
                    delivery.last_error = "; ".join(errors)[:2000]
                session.add(
                    Event(
                        at=now,
                        case_id=case_id,
                        kind="alert",
                        code=f"alert_{action}_sent",
                        detail=f"Sent via {via}."
                        + (f" Fell back after: {'; '.join(errors)}" if errors else ""),
                    )
                )
                return 1
            delivery.last_error = "; ".join(errors)[:2000] or "no sink configured"
            delivery.next_attempt_at = now + self._delay(delivery.attempts)
        log.warning(
            "alert delivery failed on every sink; will retry",
            extra={"delivery_id": delivery_id, "attempts": delivery.attempts},
        )
        return 0

    async def tick(self) -> int:
        async with self.sessions() as session, session.begin():
            await self.book.escalate_due(session)
        return await self.deliver_due()

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.tick()
            except Exception:
                log.exception("alert pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), self.settings.alerts.poll_interval_seconds
                )
