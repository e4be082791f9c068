"""The HTTP side of ``serve`` (aiohttp): health, acknowledging alerts, recording call-backs.

``/healthz`` and ``/readyz`` answer the same JSON report (the analysis pool, the case
store, the spool's waiting/bad counts and the age of the oldest waiting message; see
``Runner.health``) with 200 when the intake is processing and 503 when it is not: a
process whose workers cannot start, or whose store is down, must not look healthy while
acknowledged mail piles up. Neither needs a token, and neither shows message content.

Staff authenticate with a bearer token; the server keeps only each token's sha256
(``[alerts.ack_tokens]``: name = hash), compared in constant time. Every action is an event
in the case's audit log with the name of whoever took it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from alerts.dispatcher import AlertBook, AlertDispatcher
from cases.models import Case, Event
from cases.repository import CaseStore
from config.settings import Settings
from ingest.fax_webhook import FaxWebhook

BOOK = web.AppKey("book", AlertBook)
DISPATCHER = web.AppKey("dispatcher", AlertDispatcher)
STORE = web.AppKey("store", CaseStore)
SETTINGS = web.AppKey("settings", Settings)
HealthReport = Callable[[], Awaitable[dict[str, Any]]]
HEALTH: web.AppKey[HealthReport] = web.AppKey("health")


def staff_name(request: web.Request) -> str | None:
    """The staff member whose bearer token this is, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    digest = hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
    found = None
    for name, expected in request.app[SETTINGS].alerts.ack_tokens.items():
        if hmac.compare_digest(digest, expected.lower()):
            found = name
    return found


def _unauthorized() -> web.Response:
    return web.json_response(
        {"error": "a valid bearer token is required"},
        status=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def health_endpoint(request: web.Request) -> web.Response:
    report = request.app.get(HEALTH)
    if report is None:  # an HTTP app without a runner (tests of the staff endpoints)
        return web.json_response({"status": "ok"})
    try:
        body = await report()
    except Exception as exc:  # a health check that fails is itself the answer
        body = {"status": "not_ready", "ready": False, "problems": [type(exc).__name__]}
    return web.json_response(body, status=200 if body.get("ready") else 503)


async def acknowledge(request: web.Request) -> web.Response:
    name = staff_name(request)
    if name is None:
        return _unauthorized()
    try:
        alert_id = int(request.match_info["alert_id"])
    except ValueError:
        return web.json_response({"error": "no such alert"}, status=404)
    store = request.app[STORE]
    async with store.sessions() as session, session.begin():
        alert = await request.app[BOOK].acknowledge(session, alert_id, name)
        if alert is None:
            return web.json_response({"error": "no such alert"}, status=404)
        body = {
            "alert_id": alert.id,
            "case_id": alert.case_id,
            "status": alert.status,
            "acknowledged_by": alert.acknowledged_by,
        }
    request.app[DISPATCHER].notify()
    return web.json_response(body)


async def record_callback(request: web.Request) -> web.Response:
    """Staff record the call-back that verified (or not) the request."""
    name = staff_name(request)
    if name is None:
        return _unauthorized()
    try:
        data: dict[str, Any] = await request.json()
    except ValueError:
        return web.json_response({"error": "a JSON body is required"}, status=400)
    number = str(data.get("number", "")).strip()[:64]
    result = str(data.get("result", "")).strip()
    if not number or result not in ("verified", "not_verified", "no_answer"):
        return web.json_response(
            {"error": "number and result (verified, not_verified, no_answer) are required"},
            status=400,
        )
    notes = str(data.get("notes", "")).strip()[:1000]
    store = request.app[STORE]
    async with store.sessions() as session, session.begin():
        case = await session.get(Case, request.match_info["case_id"])
        if case is None:
            return web.json_response({"error": "no such case"}, status=404)
        session.add(
            Event(
                at=store.clock.now(),
                case_id=case.id,
                kind="verification",
                code=f"callback_{result}",
                actor=name,
                detail=f"{name} called {number}: {result}. {notes}".strip(),
            )
        )
    return web.json_response({"case_id": case.id, "recorded": f"callback_{result}"})


def make_http_app(
    settings: Settings,
    store: CaseStore,
    book: AlertBook,
    dispatcher: AlertDispatcher,
    fax: FaxWebhook | None = None,
    health: HealthReport | None = None,
) -> web.Application:
    # The fax webhook reads its body itself, under its own size limit.
    app = web.Application(client_max_size=settings.fax.max_bytes + 1024 * 1024)
    app[SETTINGS] = settings
    app[STORE] = store
    app[BOOK] = book
    app[DISPATCHER] = dispatcher
    if health is not None:
        app[HEALTH] = health
    app.router.add_get("/healthz", health_endpoint)
    app.router.add_get("/readyz", health_endpoint)
    app.router.add_post("/alerts/{alert_id}/ack", acknowledge)
    app.router.add_post("/cases/{case_id}/callback", record_callback)
    if fax is not None:
        app.router.add_post("/fax/inbound", fax.handle)
    return app
