"""The parse stage: headers, defects and the text body of one message.

mail-parser reads the message (its defect list is recorded as-is); when it raises, as it
does on some malformed trees, the stdlib compat32 parser takes over and the failure is
itself recorded as a defect. Parsing never fails the message.
"""

from __future__ import annotations

import email
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser

import mailparser

from classifiers.quotes import quoted_spans
from config.settings import Settings
from core import headers as h
from core.context import MessageContext, ParsedHeaders
from core.verdicts import Decision, Verdict
from ingest.header_block import header_block_problem
from ingest.mime import MAX_PARTS, content_type, layout
from ingest.text import MAX_COMBINING_RUN, html_to_text, long_mark_run, normalise, part_text

# mail-parser logs a warning for every content type it does not itself handle.
logging.getLogger("mailparser").setLevel(logging.ERROR)

MAX_DEFECTS = 50
# Written by responders (Exchange, vacation programs) that set no Auto-Submitted.
AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress")


def _parts(message: Message) -> Iterator[Message]:
    """The tree's parts in order, iteratively (a deep tree must not recurse), at most
    MAX_PARTS."""
    stack = [message]
    seen = 0
    while stack and seen < MAX_PARTS:
        part = stack.pop()
        seen += 1
        yield part
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend(reversed([p for p in payload if isinstance(p, Message)]))


def _decodings(part: Message) -> list[str]:
    """The texts mail-parser may make of a leaf: its declared charset's and UTF-8's."""
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    texts = [data.decode("utf-8", errors="ignore")]
    try:
        charset = part.get_content_charset()
        if charset:
            texts.append(data.decode(charset, errors="replace"))
    except (LookupError, ValueError):
        pass  # an unknown charset: mail-parser falls back to UTF-8 too
    return texts


def has_long_mark_run(message: Message) -> bool:
    """Whether a header or a leaf mail-parser decodes holds a run of combining marks
    longer than the stream-safe limit. mail-parser NFC-normalises every text it decodes,
    and NFC sorts such a run with an insertion sort: 200 000 marks took 39 s."""
    run = long_mark_run()
    for value in message.values():
        if run.search(str(value)) or run.search(h.decoded(value, limit=len(str(value)))):
            return True
    for part in _parts(message):
        if part.is_multipart():
            continue
        if (
            part.get_content_maintype() != "text"
            and part.get("Content-Transfer-Encoding", "").strip().lower() == "base64"
        ):
            continue  # kept as its base64 text, which is ASCII
        if any(run.search(text) for text in _decodings(part)):
            return True
    return False


def _stdlib_defects(message: Message) -> list[str]:
    return [type(d).__name__ for part in _parts(message) for d in part.defects]


def read_message(raw: bytes) -> tuple[Message, list[str]]:
    """The parsed tree and its defects; never raises for any bytes.

    The stdlib parses once; mail-parser then reads that tree for its defect list, unless
    the tree holds a text mail-parser would spend quadratic time normalising (then the
    stdlib's defects stand, and a defect says why)."""
    defects: list[str] = []
    try:
        message = email.message_from_bytes(raw)
    except RecursionError:
        # A tree too deep for the stdlib: keep the headers, treat the rest as one
        # opaque attachment (it is removed anyway).
        defects.append("mailparser_error:MailParserRecursionError")
        defects.append("mime_too_deep_to_parse")
        return BytesHeaderParser().parsebytes(raw), defects
    try:
        if has_long_mark_run(message):
            defects.append(f"combining_marks_over_{MAX_COMBINING_RUN}")
            defects.extend(_stdlib_defects(message))
            return message, defects[:MAX_DEFECTS]
        parsed = mailparser.MailParser(message)
        for item in parsed.defects or []:
            for name in item.values() if isinstance(item, dict) else [item]:
                defects.append(str(name)[:200])
    except Exception as exc:  # mail-parser raises many types on odd input
        name = "MailParserRecursionError" if isinstance(exc, RecursionError) else type(exc).__name__
        defects.append(f"mailparser_error:{name}")
        defects.extend(type(d).__name__ for d in message.defects)
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
