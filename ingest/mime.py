"""Walking a MIME tree once and sorting every leaf into body or attachment.

The rule (Twitter: "our support system removes all attachments"): the body is the
inline text/plain and text/html parts; everything else is an attachment — anything with
``Content-Disposition: attachment`` or a filename, any non-text leaf, text types other than
plain/html (calendar, vcard, csv), and a whole ``message/rfc822`` (one attachment, its inner
parts not walked). In ``multipart/alternative`` one alternative is chosen as body and the
other text alternatives are dropped silently; non-text alternatives are attachments.

Caps guard against hostile trees: nesting deeper than ``MAX_DEPTH`` or more than
``MAX_PARTS`` parts stops the walk, and what lies beyond is recorded as one attachment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message

MAX_DEPTH = 32
MAX_PARTS = 1000

_BODY_SUBTYPES = ("plain", "html")


@dataclass
class Layout:
    body: list[Message] = field(default_factory=list)
    attachments: list[Message] = field(default_factory=list)
    defects: list[str] = field(default_factory=list)
    parts_seen: int = 0


def _disposition(part: Message) -> str:
    try:
        value = part.get_content_disposition()
    except (ValueError, IndexError, AttributeError):
        return ""
    return (value or "").lower()


def filename_of(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, IndexError, LookupError, AttributeError, TypeError):
        return None
    if name is None:
        try:
            name = part.get_param("name")  # type: ignore[assignment]
        except (ValueError, IndexError, AttributeError, TypeError):
            return None
        if isinstance(name, tuple):
            name = name[2]
    return str(name) if name else None


def content_type(part: Message) -> str:
    try:
        return part.get_content_type().lower()
    except (ValueError, IndexError, AttributeError):
        return "application/octet-stream"


def is_body_leaf(part: Message) -> bool:
    maintype, _, subtype = content_type(part).partition("/")
    return (
        maintype == "text"
        and subtype in _BODY_SUBTYPES
        and _disposition(part) != "attachment"
        and filename_of(part) is None
    )


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def _choose_alternative(children: list[Message]) -> Message | None:
    """Prefer plain text, then HTML, then the first nested multipart holding a body."""
    for wanted in ("text/plain", "text/html"):
        for child in children:
            if content_type(child) == wanted and is_body_leaf(child):
                return child
    for child in children:
        # message/rfc822 counts as multipart to the stdlib, but it is an attachment
        if content_type(child).startswith("multipart/"):
            return child
    return None


def layout(message: Message) -> Layout:
    result = Layout()
    _walk(message, 0, result)
    return result


def _walk(part: Message, depth: int, out: Layout) -> None:
    out.parts_seen += 1
    if out.parts_seen > MAX_PARTS:
        if "too_many_parts" not in out.defects:
            out.defects.append("too_many_parts")
            out.attachments.append(part)
        return
    ctype = content_type(part)
    if ctype == "message/rfc822" or (ctype.startswith("message/") and part.is_multipart()):
        out.attachments.append(part)
        return
    if part.is_multipart():
        if depth >= MAX_DEPTH:
            out.defects.append("nesting_too_deep")
            out.attachments.append(part)
            return
        children = _children(part)
        if ctype == "multipart/alternative":
            chosen = _choose_alternative(children)
            for child in children:
                if child is chosen:
                    _walk(child, depth + 1, out)
                elif content_type(child) not in ("text/plain", "text/html"):
                    _collect_attachments(child, depth + 1, out)
            return
        for child in children:
            _walk(child, depth + 1, out)
        return
    if is_body_leaf(part):
        out.body.append(part)
    else:
        out.attachments.append(part)


def _collect_attachments(part: Message, depth: int, out: Layout) -> None:
    """An unchosen alternative: none of its text is body, but its files are removed too."""
    # the part count and the defects are shared, so the caps hold across alternatives
    sub = Layout(parts_seen=out.parts_seen, defects=out.defects)
    _walk(part, depth, sub)
    out.parts_seen = sub.parts_seen
    out.attachments.extend(sub.attachments)
