"""The message context that flows through the stages, and the facts stages add to it.

Everything here is plain data, picklable, so analysis can run in a worker process and
hand its result back to the event loop that owns the database.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from core.envelope import Envelope
from core.findings import Identifier
from core.verdicts import Decision, Verdict, strongest


@dataclass(frozen=True)
class RemovedAttachment:
    filename: str | None
    declared_type: str
    sniffed_type: str | None
    size: int
    sha256: str


@dataclass(frozen=True)
class Sender:
    address: str
    domain: str
    display_name: str
    registrable_domain: str


@dataclass
class ParsedHeaders:
    message_id: str | None = None
    subject: str = ""
    from_header: str = ""
    from_count: int = 0
    to: tuple[str, ...] = ()
    reply_to: str | None = None
    date: str | None = None
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    auto_submitted: str | None = None
    precedence: str | None = None
    list_id: str | None = None
    # Names of the vendor auto-reply headers present (X-Autoreply, X-Autorespond,
    # X-Auto-Response-Suppress): responders that do not write Auto-Submitted.
    auto_reply_headers: tuple[str, ...] = ()
    authentication_results: tuple[str, ...] = ()
    # Why the header block can be read two ways (ingest/header_block.py), or None: such a
    # message is never authenticated, whatever its signatures say.
    ambiguity: str | None = None


@dataclass
class MessageContext:
    raw: bytes
    envelope: Envelope
    headers: ParsedHeaders = field(default_factory=ParsedHeaders)
    message: Message | None = None
    defects: list[str] = field(default_factory=list)
    body_text: str = ""
    # Character ranges of body_text that quote earlier mail (replies), so extraction
    # can tell what the sender wrote now from what they quoted.
    quoted_spans: list[tuple[int, int]] = field(default_factory=list)
    attachments: list[RemovedAttachment] = field(default_factory=list)
    sender: Sender | None = None
    agency: str | None = None
    agency_type: str | None = None
    # "pass", "fail", "temperror" or "none" once the gate has checked the sender
    sender_auth: str | None = None
    # email, fax-webhook or fax-email (a fax-gateway email); set by the fax stage
    channel: str = "email"
    # For faxes: calling number, called number, provider id, pages, OCR seconds
    fax: dict[str, str] = field(default_factory=dict)
    emergency: bool = False
    # No emergency subject, but the body invokes 2702(b)(8)/(c)(4) or claims imminent danger
    emergency_suspected: bool = False
    # Per completeness item of an emergency: (id, label, found, raw text that satisfied it)
    completeness: list[tuple[str, str, bool, str | None]] = field(default_factory=list)
    # Request facts (classifiers/facts.py) in the identifiers' provenance shape, role "fact"
    facts: list[Identifier] = field(default_factory=list)
    facts_found: set[str] = field(default_factory=set)
    identifiers: list[Identifier] = field(default_factory=list)
    # What the request lacks, phrased for the sender ("the time period requested"): the
    # automated response lists them.
    deficiencies: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    # Working state the stages share while the message is analysed (the body's spaCy Doc,
    # classifiers/nlp.py) and what releases it: both emptied before the context leaves
    # the worker, so they are never pickled or stored.
    scratch: dict[str, Any] = field(default_factory=dict)
    resources: ExitStack | None = None

    @property
    def decision(self) -> Decision:
        return strongest(self.verdicts)

    @property
    def reason_codes(self) -> list[str]:
        seen: list[str] = []
        for verdict in self.verdicts:
            if verdict.code not in seen:
                seen.append(verdict.code)
        return seen
