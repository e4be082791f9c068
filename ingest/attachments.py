"""The attachment stage: every attachment removed, and only its description kept.

What is kept per part is what staff and the sender need to know what was removed —
filename, declared and sniffed type, size, sha256 — and nothing of its content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message

import puremagic

from config.settings import Settings
from core.context import MessageContext, RemovedAttachment
from core.headers import clean, decoded
from core.verdicts import Decision, Verdict
from ingest.mime import content_type, filename_of, layout


def _payload_bytes(part: Message) -> bytes:
    if part.is_multipart() or content_type(part).startswith("message/"):
        try:
            return part.as_bytes()
        except RecursionError:
            return b""  # a tree too deep to serialise; the defect is recorded by the walk
        except (ValueError, LookupError, UnicodeError, TypeError, AttributeError):
            try:
                return str(part.get_payload()).encode("utf-8", "replace")
            except RecursionError:
                return b""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _sniff(data: bytes) -> str | None:
    if not data:
        return None
    try:
        matches = puremagic.magic_string(data[:4096])
    except (puremagic.PureError, ValueError, IndexError):
        return None
    for match in matches:
        if match.mime_type:
            return str(match.mime_type)
    return None


def describe(part: Message) -> RemovedAttachment:
    data = _payload_bytes(part)
    name = filename_of(part)
    return RemovedAttachment(
        filename=decoded(name)[:255] if name else None,
        declared_type=clean(content_type(part), 255),
        sniffed_type=_sniff(data),
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


@dataclass
class AttachmentStage:
    """Owns ``ctx.attachments``."""

    name: str = "attachments"
    runs_after_drop: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> AttachmentStage:
        return cls()

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        if ctx.message is None:
            return []
        ctx.attachments = [describe(part) for part in layout(ctx.message).attachments]
        if not ctx.attachments:
            return []
        names = ", ".join(a.filename or "(unnamed)" for a in ctx.attachments[:10])
        return [
            Verdict(
                self.name,
                Decision.NOTE,
                "attachments_removed",
                f"{len(ctx.attachments)} attachment(s) removed: {names}.",
            )
        ]
