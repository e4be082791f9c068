"""Delivering the outbox: responses were written durably with their case; this sends them.

``FolderTransport`` writes one .eml per message (demo, replay: nothing leaves the
machine); ``SmtpTransport`` hands them to the configured relay with aiosmtplib. A 4xx or a
connection failure is temporary: the message is retried after ``retry_delays_seconds``
until ``max_attempts``; a 5xx is permanent. Either way the end is an event on the case.
Delivery is at-least-once: a crash between the relay's 250 and our commit resends the
message with the same Message-ID, which receiving systems can recognise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from cases.models import Event, OutboxMessage
from config.settings import OutboxSettings
from core.clock import Clock

log = logging.getLogger("le_intake.outbox")


class PermanentFailure(Exception):
    """The relay refused the message for good (5xx)."""


class Transport(Protocol):
    async def deliver(self, message: OutboxMessage) -> None: ...


class FolderTransport:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _write(self, message: OutboxMessage) -> None:
        # A response carries its confirmation token: the folder and file are private
        # whatever the process umask (le_intake/private.py).
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.folder / f"{message.created_at:%Y%m%dT%H%M%S}-{message.id:06d}.eml"
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a leftover .tmp from an older run keeps its mode otherwise
        with os.fdopen(fd, "wb") as fh:
            # A file is for people and their tools (grep, cut, a mail reader): it ends its
            # lines the platform's way, not in the wire's CRLF (a kept CR broke the
            # README's own reply recipe).
            fh.write(message.raw.replace(b"\r\n", os.linesep.encode("ascii")))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.rename(target)

    async def deliver(self, message: OutboxMessage) -> None:
        await asyncio.to_thread(self._write, message)


def relay_options(settings: OutboxSettings) -> dict[str, Any]:
    """How to reach the relay: shared by the outbox and the email alert sink."""
    return {
        "hostname": settings.relay_host,
        "port": settings.relay_port,
        "start_tls": settings.relay_starttls,
        "username": settings.relay_username,
        "password": settings.relay_password,
    }


class SmtpTransport:
    def __init__(self, settings: OutboxSettings) -> None:
        self.settings = settings

    async def deliver(self, message: OutboxMessage) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message.raw,
                sender=message.sender,
                recipients=[message.recipient],
                timeout=s.relay_timeout_seconds,
                **relay_options(s),
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if codes and all(500 <= c < 600 for c in codes):
                raise PermanentFailure(f"recipient refused: {codes}") from exc
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"{exc.code} {exc.message}") from exc
            raise


def make_transport(settings: OutboxSettings) -> Transport:
    if settings.transport == "smtp":
        return SmtpTransport(settings)
    return FolderTransport(settings.folder)


class OutboxDispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker,  # type: ignore[type-arg]
        transport: Transport,
        settings: OutboxSettings,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.settings = settings
        self.clock = clock
        self._wake = asyncio.Event()

    def notify(self) -> None:
        self._wake.set()

    def _delay(self, attempts: int) -> timedelta:
        delays = self.settings.retry_delays_seconds or (60.0,)
        return timedelta(seconds=delays[min(attempts, len(delays)) - 1])

    async def deliver_due(self, limit: int = 100) -> int:
        """Send what is due now; returns how many were sent."""
        now = self.clock.now()
        async with self.sessions() as session:
            due = (
                (
                    await session.execute(
                        select(OutboxMessage.id)
                        .where(
                            OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now
                        )
                        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                        .limit(limit)
                    )
                )
                .scalars()
                .all()
            )
        sent = 0
        for message_id in due:
            sent += await self._deliver_one(message_id)
        return sent

    async def _deliver_one(self, message_id: int) -> int:
        async with self.sessions() as session:
            message = await session.get(OutboxMessage, message_id)
            if message is None or message.status != "pending":
                return 0
            session.expunge(message)
        error: str | None = None
        permanent = False
        try:
            await self.transport.deliver(message)
        except PermanentFailure as exc:
            error, permanent = str(exc), True
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            row = await session.get(OutboxMessage, message_id)
            assert row is not None
            row.attempts += 1
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", now, None
                code, detail = "response_sent", f"Sent to {row.recipient}."
            elif permanent or row.attempts >= self.settings.max_attempts:
                row.status, row.last_error = "failed", error[:2000]
                code, detail = "response_failed", f"Delivery to {row.recipient} failed: {error}"
            else:
                row.last_error = error[:2000]
                row.next_attempt_at = now + self._delay(row.attempts)
                log.warning(
                    "outbox delivery deferred",
                    extra={"outbox_id": row.id, "attempts": row.attempts},
                )
                return 0
            session.add(
                Event(at=now, case_id=row.case_id, kind="outbox", code=code, detail=detail[:2000])
            )
        return 1 if error is None else 0

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception:
                log.exception("outbox pass failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_seconds)
