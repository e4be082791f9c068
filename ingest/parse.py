"""The parse stage: headers, defects and the text body of one message.

mail-parser reads the message (its defect list is recorded as-is); when it raises, as it
does on some malformed trees, the stdlib compat32 parser takes over and the failure is
itself recorded as a defect. Parsing never fails the message.
"""

from __future__ import annotations

import email
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

import mailparser

from config.settings import Settings
from ingest import headers as h
from ingest.context import MessageContext, ParsedHeaders
from ingest.header_block import header_block_problem
from ingest.mime import content_type, layout
from ingest.quotes import quoted_spans
from ingest.text import html_to_text, normalise, part_text
from ingest.verdicts import Decision, Verdict

# mail-parser logs a warning for every content type it does not itself handle.
logging.getLogger("mailparser").setLevel(logging.ERROR)

MAX_DEFECTS = 50
# Written by responders (Exchange, vacation programs) that set no Auto-Submitted.
AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")


def read_message(raw: bytes) -> tuple[Message, list[str]]:
    """The parsed tree and its defects; never raises for any bytes."""
    defects: list[str] = []
    try:
        parsed = mailparser.parse_from_bytes(raw)
        message: Message = parsed.message
        for item in parsed.defects or []:
            for name in item.values() if isinstance(item, dict) else [item]:
                defects.append(str(name)[:200])
    except Exception as exc:  # mail-parser raises many types on odd input
        defects.append(f"mailparser_error:{type(exc).__name__}")
        try:
            message = email.message_from_bytes(raw)
            defects.extend(type(d).__name__ for d in message.defects)
        except RecursionError:
            # A tree too deep for the stdlib: keep the headers, treat the rest as one
            # opaque attachment (it is removed anyway).
            defects.append("mime_too_deep_to_parse")
            message = BytesHeaderParser().parsebytes(raw)
    return message, defects[:MAX_DEFECTS]


def read_headers(message: Message) -> ParsedHeaders:
    from_values = h.all_headers(message, "From")
    return ParsedHeaders(
        message_id=(h.message_ids(h.header(message, "Message-ID")) or (None,))[0],
        subject=h.header(message, "Subject") or "",
        # Addresses are read from the raw header: decoding RFC 2047 first would let an
        # encoded display name ("=?utf-8?q?agent=40fbi.gov?=") pose as the address.
        from_header=from_values[0] if from_values else "",
        from_count=len(from_values),
        to=tuple(h.clean(v) for v in h.all_headers(message, "To"))[:20],
        reply_to=h.header(message, "Reply-To"),
        date=h.header(message, "Date"),
        in_reply_to=h.message_ids(h.header(message, "In-Reply-To")),
        references=h.message_ids(h.header(message, "References")),
        auto_submitted=h.header(message, "Auto-Submitted"),
        precedence=h.header(message, "Precedence"),
        list_id=h.header(message, "List-Id"),
        auto_reply_headers=tuple(name for name in AUTO_REPLY_HEADERS if name in message),
        authentication_results=tuple(h.all_headers(message, "Authentication-Results"))[:20],
    )


def body_text(message: Message) -> tuple[str, list[str]]:
    """The body as text: plain parts as they are, HTML parts converted; in tree order."""
    pieces: list[str] = []
    defects: list[str] = []
    found = layout(message)
    for part in found.body:
        text, defect = part_text(part)
        if defect:
            defects.append(defect)
        if content_type(part) == "text/html":
            text = html_to_text(text)
        text = normalise(text)
        if text.strip():
            pieces.append(text.strip("\n"))
    return normalise("\n\n".join(pieces)), defects + found.defects


@dataclass
class ParseStage:
    """Owns ``ctx.message``, ``ctx.headers``, ``ctx.defects``, ``ctx.body_text``,
    ``ctx.quoted_spans``."""

    name: str = "parse"
    runs_after_drop: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseStage:
        return cls()

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        message, defects = read_message(ctx.raw)
        ctx.message = message
        ctx.headers = read_headers(message)
        # Files on disk may end every line in LF; the listener refused mixed ones already.
        ctx.headers.ambiguity = header_block_problem(ctx.raw, strict=False)
        text, text_defects = body_text(message)
        ctx.body_text = text
        ctx.quoted_spans = quoted_spans(text)
        ctx.defects = (defects + text_defects)[:MAX_DEFECTS]
        verdicts = []
        if ctx.headers.ambiguity:
            verdicts.append(
                Verdict(
                    self.name,
                    Decision.HOLD,
                    "ambiguous_header_block",
                    f"The header block can be read two ways ({ctx.headers.ambiguity}): "
                    "its sender is not believed.",
                )
            )
        if ctx.defects:
            verdicts.append(
                Verdict(
                    self.name,
                    Decision.NOTE,
                    "mime_defects",
                    f"The message has {len(ctx.defects)} MIME defect(s); it was read leniently.",
                )
            )
        if not text.strip():
            verdicts.append(
                Verdict(self.name, Decision.NOTE, "empty_body", "The message has no text body.")
            )
        return verdicts
