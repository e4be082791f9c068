"""Composing the automated response (RFC 3834) from the template in ``templates/``.

Nothing from the incoming message reaches a header unsanitised: the subject is cut to one
line without control characters before it is used, and the stdlib refuses CR/LF in
header values anyway — two locks on the same door.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import Path

import jinja2

from core.context import RemovedAttachment
from core.headers import clean

TEMPLATES = Path(__file__).with_name("templates")
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=False,  # plain text mail, never HTML  # noqa: S701
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class ResponseFacts:
    case_id: str
    request_address: str  # the canonical address the request was sent to
    recipient: str  # the authenticated From address, nothing else
    subject: str
    received_at: datetime
    in_reply_to: str | None
    references: tuple[str, ...]
    token: str
    expires_at: datetime
    composed_at: datetime
    attachments: tuple[RemovedAttachment, ...] = ()
    deficiencies: tuple[str, ...] = ()
    emergency: bool = False
    fresh: bool = False


@dataclass(frozen=True)
class ComposedMessage:
    message_id: str
    sender: str
    recipient: str
    raw: bytes


def one_line(value: str, limit: int = 200) -> str:
    return " ".join(clean(value, limit * 2).split())[:limit]


def compose_response(facts: ResponseFacts, from_name: str, platform: str) -> ComposedMessage:
    local, _, domain = facts.request_address.partition("@")
    subject = one_line(facts.subject) or "(no subject)"
    body = _ENV.get_template("request_received.txt").render(
        platform=platform,
        case_id=facts.case_id,
        subject=subject,
        received=format_datetime(facts.received_at),
        sender=facts.recipient,
        expires=f"{facts.expires_at:%Y-%m-%d %H:%M} UTC",
        token=facts.token,
        fresh=facts.fresh,
        attachments=[
            {
                "name": one_line(a.filename or "(unnamed)", 120),
                "type": a.sniffed_type or a.declared_type,
                "size": a.size,
            }
            for a in facts.attachments
        ],
        deficiencies=list(facts.deficiencies),
        emergency=facts.emergency,
    )
    message = EmailMessage(policy=SMTP)
    message_id = make_msgid(idstring=facts.case_id, domain=domain or None)
    message["From"] = formataddr((from_name, facts.request_address))
    message["To"] = facts.recipient
    message["Reply-To"] = f"{local}+{facts.token}@{domain}"
    message["Subject"] = f"[{facts.case_id}] Received: {subject}"
    message["Date"] = format_datetime(facts.composed_at)
    message["Message-ID"] = message_id
    if facts.in_reply_to:
        message["In-Reply-To"] = facts.in_reply_to
        refs = [*facts.references[-10:], facts.in_reply_to]
        message["References"] = " ".join(dict.fromkeys(refs))
    message["Auto-Submitted"] = "auto-replied"
    message["X-Auto-Response-Suppress"] = "All"
    if body.isascii():
        message.set_content(body, charset="us-ascii", cte="7bit")  # readable as sent
    else:
        message.set_content(body, charset="utf-8")
    return ComposedMessage(message_id, facts.request_address, facts.recipient, message.as_bytes())
