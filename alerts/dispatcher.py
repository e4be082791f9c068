"""Raising, sending, escalating and acknowledging alerts.

``AlertBook`` works inside the case store's transaction: an emergency case and its alert
(and the first delivery) are committed together, so a page cannot be lost between them.
``AlertDispatcher`` sends pending deliveries right after the commit (the processor wakes it),
tries the tier's sinks in order (a dead sink falls back to the next), retries with backoff,
and escalates to the next tier when nobody acknowledges in time.

Unverified pages (held emergencies; body-level signals from unauthenticated senders) are
what a forger can make at will, so each sender address, registrable domain and peer (and
all of them together) pages at most ``alerts.unverified_max_*`` times per
``unverified_window_minutes``. A repeat past the limit is still an alert on its own case
(status ``rolled_up``, with an event saying why), and when the first page's window ends one
digest page reports every repeat rolled into it. Authenticated emergencies always page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.content import RateKey, alert_payload, digest_payload, fraud_signals, rate_keys
from alerts.sinks import Sink, SinkError, build_sink
from cases.models import Alert, AlertDelivery, AlertPageKey, AlertRollup, Case, Event
from config.settings import Settings, SinkSettings, TierSettings
from core.clock import Clock
from core.context import MessageContext
from core.statuses import CaseStatus

log = logging.getLogger("le_intake.alerts")

DEMO_WEBHOOK = "demo-webhook"
# An unverified alert held back by the rate limit: on its case, in a later digest.
ROLLED_UP = "rolled_up"


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

    def limited(self, ctx: MessageContext, case: Case, kind: str) -> bool:
        """Unverified pages are rate-limited; an authenticated sender's never are."""
        if kind == "unverified_emergency":
            return True
        return kind == "emergency_suspected" and not (
            ctx.sender_auth == "pass" and case.status != CaseStatus.HELD
        )

    async def _over_limit(
        self, session: AsyncSession, keys: list[RateKey], since: datetime
    ) -> tuple[RateKey, int, datetime] | None:
        """The first key that has paged its limit since ``since``, with the first of
        those pages (the one the repeat is rolled into) and when it was sent."""
        for key in keys:
            pages = (
                await session.execute(
                    select(AlertPageKey.alert_id, AlertPageKey.at)
                    .where(AlertPageKey.key == key.digest, AlertPageKey.at > since)
                    .order_by(AlertPageKey.at, AlertPageKey.id)
                    .limit(key.limit)
                )
            ).all()
            if len(pages) >= key.limit:
                return key, pages[0][0], pages[0][1]
        return None

    async def raise_alert(
        self, session: AsyncSession, ctx: MessageContext, case: Case, kind: str, row_id: int
    ) -> Alert | None:
        """The alert of an emergency case, paged at once; an unverified one whose sender,
        domain or peer has paged its limit in the window is recorded on its case without
        a page and reported in the digest paged when the window ends."""
        if not self.active:
            return None
        severity = {
            "emergency": self.settings.alerts.severity_authenticated,
            "unverified_emergency": self.settings.alerts.severity_unverified,
            "emergency_suspected": self.settings.alerts.severity_suspected,
        }[kind]
        signals = await fraud_signals(session, self.settings, ctx, row_id)
        now = self.clock.now()
        window = timedelta(minutes=self.settings.alerts.unverified_window_minutes)
        keys = rate_keys(self.settings, ctx) if self.limited(ctx, case, kind) else []
        over = await self._over_limit(session, keys, now - window) if keys else None
        alert = Alert(
            case_id=case.id,
            kind=kind,
            severity=severity,
            status="open" if over is None else ROLLED_UP,
            tier=0,
            created_at=now,
            escalate_at=None
            if over is not None
            else now + timedelta(minutes=self.settings.alerts.escalation_minutes),
            payload=alert_payload(self.settings, case, ctx, kind, severity, signals, False),
        )
        session.add(alert)
        await session.flush()
        if over is not None:
            key, into, first_at = over
            session.add(
                AlertRollup(
                    alert_id=alert.id,
                    into_alert_id=into,
                    limited_by=key.label,
                    due_at=first_at + window,
                )
            )
            self._event(
                session,
                case.id,
                "alert_rolled_up",
                f"{kind} alert ({severity}) not paged: {key.label} {key.value} had "
                f"{key.limit} unverified page(s) in {window.total_seconds() / 60:g} min; "
                f"it goes in the digest after alert {into}.",
            )
            return alert
        for key in keys:
            session.add(AlertPageKey(alert_id=alert.id, key=key.digest, at=now))
        self._delivery(session, alert, "trigger")
        self._event(
            session,
            case.id,
            "alert_raised",
            f"{kind} alert ({severity}) to tier {self.tiers[0].name}.",
        )
        return alert

    async def digests_due(self, session: AsyncSession) -> int:
        """Page one digest per first page whose window has ended, for the repeats rolled
        into it; returns how many digests were raised. Page keys older than the window
        are forgotten (they only count pages inside it)."""
        now = self.clock.now()
        window = timedelta(minutes=self.settings.alerts.unverified_window_minutes)
        await session.execute(delete(AlertPageKey).where(AlertPageKey.at <= now - window))
        if not self.active:
            return 0
        due = (
            (
                await session.execute(
                    select(AlertRollup)
                    .where(AlertRollup.digest_alert_id.is_(None), AlertRollup.due_at <= now)
                    .order_by(AlertRollup.into_alert_id, AlertRollup.alert_id)
                )
            )
            .scalars()
            .all()
        )
        groups: dict[int, list[AlertRollup]] = {}
        for rollup in due:
            groups.setdefault(rollup.into_alert_id, []).append(rollup)
        for into, rollups in groups.items():
            first = await session.get(Alert, into)
            assert first is not None
            repeats = [await session.get(Alert, r.alert_id) for r in rollups]
            digest = Alert(
                case_id=first.case_id,
                kind="unverified_digest",
                severity=self.settings.alerts.severity_unverified,
                status="open",
                tier=0,
                created_at=now,
                escalate_at=None,  # each case is held; the first page escalates on its own
                payload=digest_payload(
                    self.settings,
                    first.payload,
                    [(r.limited_by, a.payload) for r, a in zip(rollups, repeats, strict=True) if a],
                    window.total_seconds() / 60,
                ),
            )
            session.add(digest)
            await session.flush()
            self._delivery(session, digest, "trigger")
            self._event(
                session,
                first.case_id,
                "alert_digest_raised",
                f"Digest alert {digest.id}: {len(rollups)} unverified repeat(s) after alert "
                f"{first.id}, to tier {self.tiers[0].name}.",
            )
            for rollup, repeat in zip(rollups, repeats, strict=True):
                rollup.digest_alert_id = digest.id
                if repeat is not None:
                    self._event(
                        session,
                        repeat.case_id,
                        "alert_digested",
                        f"Alert {repeat.id} paged in digest alert {digest.id} "
                        f"(case {first.case_id}).",
                    )
        return len(groups)

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
            if alert.status == ROLLED_UP:
                continue  # never paged by itself: its digest carries it
            self._delivery(session, alert, "update")
            self._event(session, case_id, "alert_updated", "The sender confirmed the request.")

    async def acknowledge(self, session: AsyncSession, alert_id: int, by: str) -> Alert | None:
        alert = await session.get(Alert, alert_id)
        if alert is None:
            return None
        if alert.status == "acknowledged":
            return alert
        paged = alert.status != ROLLED_UP
        alert.status = "acknowledged"
        alert.acknowledged_at = self.clock.now()
        alert.acknowledged_by = by
        alert.escalate_at = None
        if paged:
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
            await self.book.digests_due(session)
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
