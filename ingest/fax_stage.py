"""The fax stage: a fax's document is its request, so it is read (OCR) before it is removed.

Two ways in: the provider webhook (the envelope's channel is ``fax-webhook``) and email
from a configured fax-gateway sender (``fax-email``). The document's text becomes the body
that the rest of the road reads (emergency cover sheet, identifiers, facts); the document
itself is then removed like any attachment, its hash kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers

from config.settings import FaxSettings, Settings
from ingest.attachments import _payload_bytes
from ingest.context import MessageContext
from ingest.headers import first_address
from ingest.mime import content_type, layout
from ingest.ocr import OcrError, is_fax_document, ocr_document
from ingest.quotes import quoted_spans
from ingest.text import normalise
from ingest.verdicts import Decision, Verdict

_FAX_FROM = re.compile(r"(?:fax|caller id|from)[^0-9+]{0,20}(\+?[\d][\d ().-]{6,20}\d)", re.I)


def calling_number(text: str, region: str = "US") -> str | None:
    """The sending fax number as E.164, from a gateway's subject or body."""
    for match in _FAX_FROM.finditer(text):
        try:
            number = phonenumbers.parse(match.group(1), region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


@dataclass
class FaxStage:
    """Owns ``ctx.channel`` and ``ctx.fax``; replaces ``ctx.body_text`` with the OCR text."""

    settings: FaxSettings
    name: str = "fax"
    runs_after_drop: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> FaxStage:
        return cls(settings.fax)

    def _channel(self, ctx: MessageContext) -> str | None:
        if ctx.envelope.channel == "fax-webhook":
            return "fax-webhook"
        _, address = first_address(ctx.headers.from_header)
        if self.settings.enabled and address and address in self.settings.gateway_senders:
            return "fax-email"
        return None

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        channel = self._channel(ctx)
        if channel is None or ctx.message is None:
            return []
        ctx.channel = channel
        extra = ctx.envelope.extra
        ctx.fax = {k: v for k, v in extra.items() if k in ("calling", "called", "fax_id", "pages")}
        if "calling" not in ctx.fax:
            found = calling_number(f"{ctx.headers.subject}\n{ctx.body_text[:2000]}")
            if found:
                ctx.fax["calling"] = found
        documents = [
            part
            for part in layout(ctx.message).attachments
            if is_fax_document(content_type(part), _payload_bytes(part)[:8])
        ]
        if not documents:
            return [
                Verdict(
                    self.name,
                    Decision.NOTE,
                    "fax_without_document",
                    "A fax arrived without a PDF or TIFF document.",
                )
            ]
        texts: list[str] = []
        pages = read = 0
        seconds = 0.0
        for part in documents:
            budget = self.settings.max_pages - read
            if budget <= 0:
                break
            try:
                result = ocr_document(
                    _payload_bytes(part), self.settings.ocr_dpi, self.settings.ocr_language, budget
                )
            except OcrError as exc:
                return [
                    Verdict(
                        self.name,
                        Decision.NOTE,
                        "fax_ocr_failed",
                        f"The fax document could not be read: {exc}.",
                    )
                ]
            texts.append(result.text)
            pages += result.pages
            read += result.pages_read
            seconds += result.seconds
        ctx.body_text = normalise("\n\n".join(texts))
        ctx.quoted_spans = quoted_spans(ctx.body_text)
        ctx.fax["pages"] = str(pages)
        ctx.fax["ocr_seconds"] = f"{seconds:.2f}"
        verdicts = [
            Verdict(
                self.name,
                Decision.NOTE,
                "fax_ocr",
                f"{read} of {pages} fax page(s) read by OCR in {seconds:.1f} s.",
            )
        ]
        if read < pages:
            verdicts.append(
                Verdict(
                    self.name,
                    Decision.NOTE,
                    "fax_pages_over_limit",
                    f"Only the first {read} pages were read.",
                )
            )
        return verdicts
