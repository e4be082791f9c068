"""Tables of the case store.

Minimisation is a design rule here: dropped mail keeps metadata and reasons only (no
body, no identifiers); attachments keep a description and a hash, never content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    emergency: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    subject: Mapped[str] = mapped_column(String(998))
    sender_address: Mapped[str] = mapped_column(String(320), index=True)
    sender_domain: Mapped[str] = mapped_column(String(255))
    agency: Mapped[str | None] = mapped_column(String(255))
    agency_type: Mapped[str | None] = mapped_column(String(64))
    # "pass" (authenticated), "fail", "temperror", "none": shown to staff and on alerts
    sender_auth: Mapped[str | None] = mapped_column(String(16))
    request_address: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    messages: Mapped[list[MessageRecord]] = relationship(back_populates="case")
    identifiers: Mapped[list[IdentifierRecord]] = relationship(
        back_populates="case", order_by="IdentifierRecord.id"
    )
    events: Mapped[list[Event]] = relationship(order_by="Event.id")


class MessageRecord(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_msgid_from", "message_id", "from_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    raw_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998))
    channel: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    reasons: Mapped[list[str]] = mapped_column(JSON)
    verdicts: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    mail_from: Mapped[str] = mapped_column(String(998))
    rcpt_tos: Mapped[list[str]] = mapped_column(JSON)
    peer: Mapped[str | None] = mapped_column(String(255))
    helo: Mapped[str | None] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    from_address: Mapped[str] = mapped_column(String(320))
    from_domain: Mapped[str] = mapped_column(String(255), index=True)
    display_name: Mapped[str] = mapped_column(String(998))
    reply_to: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str] = mapped_column(String(998))
    date_header: Mapped[str | None] = mapped_column(String(255))
    in_reply_to: Mapped[list[str]] = mapped_column(JSON)
    references: Mapped[list[str]] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(Integer)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_auth: Mapped[str | None] = mapped_column(String(16))
    attachments_removed: Mapped[int] = mapped_column(Integer, default=0)
    defects: Mapped[list[str]] = mapped_column(JSON)
    # None for dropped mail: we keep no body of what we disregard.
    text_body: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case | None] = relationship(back_populates="messages")
    attachments: Mapped[list[AttachmentRecord]] = relationship(order_by="AttachmentRecord.id")


class IdentifierRecord(Base):
    __tablename__ = "identifiers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    message_row_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    value: Mapped[str] = mapped_column(String(2048), index=True)
    raw: Mapped[str] = mapped_column(String(2048))
    span_start: Mapped[int] = mapped_column(Integer)
    span_end: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float]
    recognizer: Mapped[str] = mapped_column(String(64))
    pattern: Mapped[str] = mapped_column(String(128))

    case: Mapped[Case] = relationship(back_populates="identifiers")


class AttachmentRecord(Base):
    __tablename__ = "removed_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_row_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    filename: Mapped[str | None] = mapped_column(String(255))
    declared_type: Mapped[str] = mapped_column(String(255))
    sniffed_type: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)


class Event(Base):
    """The append-only audit log: what happened, when, and why."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    message_row_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    kind: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(255), default="le-intake")


class ConfirmationToken(Base):
    """A challenge sent in an automated response. Only its sha256 is stored: a leaked
    database does not let anyone confirm a request."""

    __tablename__ = "confirmation_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    sender_address: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    response_message_id: Mapped[str] = mapped_column(String(998), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxMessage(Base):
    """Outbound mail, written in the same transaction as the event that caused it and
    delivered afterwards: nothing to send is lost to a crash."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    sender: Mapped[str] = mapped_column(String(320))
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    message_id: Mapped[str] = mapped_column(String(998))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class Alert(Base):
    """A page to on-call staff about an emergency case, until someone acknowledges it."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    # emergency (authenticated sender), unverified_emergency (held), emergency_suspected (body)
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)  # open, acknowledged
    tier: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    escalate_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class AlertDelivery(Base):
    """One message about an alert (trigger, update, escalate, acknowledge) to one tier,
    written with the alert and sent afterwards, with fallback across the tier's sinks."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    tier: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_via: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)


class BlockedSender(Base):
    """Compromised law-enforcement accounts (``le-intake senders block``)."""

    __tablename__ = "blocked_senders"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    added_by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text)


class FaxReceipt(Base):
    """Faxes taken from the provider's webhook, by the provider's id: a redelivered fax is
    acknowledged again without being spooled twice."""

    __tablename__ = "fax_receipts"

    fax_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    spool_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sha256: Mapped[str] = mapped_column(String(64))


class DomainDecision(Base):
    """An operator's verified decision on a sender domain (``le-intake domains allow|deny``):
    agencies on ordinary domains are added, compromised ones removed, without editing TOML.
    The latest decision per domain wins; each one is also an audit event."""

    __tablename__ = "domain_decisions"

    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    decision: Mapped[str] = mapped_column(String(8))  # "allow" or "deny"
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(255))
    decided_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertPageKey(Base):
    """What an unverified page counts against (sender, domain, peer, all): one row per key
    of each page sent, so the rate limit is an indexed count. ``key`` is a sha256 of the
    label and value: no address is kept here."""

    __tablename__ = "alert_page_keys"
    __table_args__ = (Index("ix_alert_page_keys_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AlertRollup(Base):
    """An unverified page not sent because its sender, domain or peer had paged enough in
    the window: the repeat's alert stays on its case, and the digest that reports it is
    paged when the first page's window ends (``digest_alert_id`` once it is)."""

    __tablename__ = "alert_rollups"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    into_alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    # which limit it hit: sender, domain, peer or all
    limited_by: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    digest_alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)
