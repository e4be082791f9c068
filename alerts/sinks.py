"""Where alerts go. Each sink turns one alert message into one outside call.

All HTTP goes through one aiohttp session owned by the dispatcher; tests point sinks at
local receivers. A sink raises ``SinkError`` for anything but success, and the dispatcher
falls back to the next sink of the tier.
"""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any, Protocol

import aiohttp
import aiosmtplib

from config.settings import OutboxSettings, SinkSettings
from replies.outbox import relay_options

PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


class SinkError(Exception):
    pass


class Sink(Protocol):
    name: str

    async def send(self, action: str, alert: dict[str, Any]) -> None: ...


def headline(action: str, alert: dict[str, Any]) -> str:
    verb = {
        "trigger": "",
        "update": "UPDATE: ",
        "escalate": "ESCALATED: ",
        "acknowledge": "ACKNOWLEDGED: ",
    }.get(action, "")
    # a digest's summary starts with DIGEST itself
    return f"{verb}{alert['summary']}"


def text_body(action: str, alert: dict[str, Any]) -> str:
    accounts = ", ".join(f"{a['kind']} {a['value']}" for a in alert["accounts"]) or "none named"
    lines = [
        headline(action, alert),
        f"Case: {alert['case_id']}  {alert['case_url']}",
        f"From: {alert['sender']} ({alert['agency'] or 'agency unknown'})",
        f"Authentication: {alert['authentication']}   Confirmation: {alert['confirmation']}",
        f"Accounts: {accounts}",
    ]
    if alert["missing"]:
        lines.append("Missing: " + "; ".join(alert["missing"]))
    if alert["fraud_signals"]:
        lines.append("Fraud signals: " + "; ".join(s["message"] for s in alert["fraud_signals"]))
    if alert.get("repeats"):
        shown = alert["repeats"]
        more = int(alert.get("repeat_count", len(shown))) - len(shown)
        lines.append(
            "Cases: "
            + ", ".join(f"{r['case_id']} ({r.get('sender') or '?'})" for r in shown)
            + (f" and {more} more" if more > 0 else "")
        )
    lines.append(alert["verify"])
    return "\n".join(lines)


class _HttpSink:
    def __init__(self, name: str, settings: SinkSettings, session: aiohttp.ClientSession) -> None:
        self.name = name
        self.settings = settings
        self.session = session

    async def _post(self, url: str, body: dict[str, Any]) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds)
        try:
            async with self.session.post(url, json=body, timeout=timeout) as response:
                if response.status >= 300:
                    raise SinkError(f"{self.name}: HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SinkError(f"{self.name}: {type(exc).__name__}") from exc


class WebhookSink(_HttpSink):
    async def send(self, action: str, alert: dict[str, Any]) -> None:
        assert self.settings.url
        await self._post(self.settings.url, {"action": action, "alert": alert})


class SlackSink(_HttpSink):
    async def send(self, action: str, alert: dict[str, Any]) -> None:
        assert self.settings.url
        await self._post(self.settings.url, {"text": text_body(action, alert)})


class PagerDutySink(_HttpSink):
    """Events API v2: one incident per case (``dedup_key`` = case id); updates and
    escalations re-trigger it, acknowledgement acknowledges it."""

    async def send(self, action: str, alert: dict[str, Any]) -> None:
        event_action = "acknowledge" if action == "acknowledge" else "trigger"
        body: dict[str, Any] = {
            "routing_key": self.settings.routing_key,
            "event_action": event_action,
            "dedup_key": alert["case_id"],
        }
        if event_action == "trigger":
            body["payload"] = {
                "summary": headline(action, alert)[:1024],
                "source": "le-intake",
                "severity": alert["severity"],
                "custom_details": alert,
            }
            body["links"] = [{"href": alert["case_url"], "text": "Case"}]
        await self._post(self.settings.url or PAGERDUTY_URL, body)


class EmailSink:
    def __init__(self, name: str, settings: SinkSettings, relay: OutboxSettings) -> None:
        self.name = name
        self.settings = settings
        self.relay = relay

    async def send(self, action: str, alert: dict[str, Any]) -> None:
        message = EmailMessage()
        message["From"] = "le-intake <alerts@le-intake.local>"
        message["To"] = self.settings.to or ""
        message["Subject"] = headline(action, alert)[:200]
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text_body(action, alert))
        try:
            await aiosmtplib.send(
                message,
                timeout=self.settings.timeout_seconds,
                **relay_options(self.relay),
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SinkError(f"{self.name}: {type(exc).__name__}") from exc


def build_sink(
    name: str, settings: SinkSettings, session: aiohttp.ClientSession, relay: OutboxSettings
) -> Sink:
    if settings.type == "email":
        return EmailSink(name, settings, relay)
    kinds: dict[str, type[_HttpSink]] = {
        "webhook": WebhookSink,
        "slack": SlackSink,
        "pagerduty": PagerDutySink,
    }
    return kinds[settings.type](name, settings, session)  # type: ignore[return-value]
