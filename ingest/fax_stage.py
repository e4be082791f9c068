"""The fax stage: a fax's document is its request, so it is read (OCR) before it is removed.

Two ways in: the provider webhook (the envelope's channel is ``fax-webhook``) and email
from a configured fax-gateway sender (``fax-email``) whose domain authenticates it (an
aligned DKIM or SPF pass, as the gate asks of any sender): a forged gateway From is
ordinary mail. The document's text becomes the body
that the rest of the road reads (emergency cover sheet, identifiers, facts); the document
itself is then removed like any attachment, its hash kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from classifiers.auth import AuthStatus, SenderAuthenticator
from classifiers.domains import DomainPolicy
from classifiers.gate import make_authenticator
from classifiers.quotes import quoted_spans
from config.settings import FaxSettings, Settings
from core.addresses import domain_of
from core.context import MessageContext
from core.headers import first_address
from core.verdicts import Decision, Verdict
from ingest.attachments import _payload_bytes
from ingest.mime import content_type, layout
from ingest.ocr import OcrError, OcrLimits, is_fax_document, ocr_document, ocr_time_cap
from ingest.text import normalise


@dataclass
class FaxStage:
    """Owns ``ctx.channel`` and ``ctx.fax``; replaces ``ctx.body_text`` with the OCR text."""

    settings: FaxSettings
    name: str = "fax"
    runs_after_drop: bool = True

    # Verifies that gateway mail really comes from the gateway (None: no gateways).
    authenticator: SenderAuthenticator | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> FaxStage:
        authenticator = None
        if settings.fax.enabled and settings.fax.gateway_senders:
            authenticator = make_authenticator(settings, DomainPolicy(settings.le_policy))
        return cls(settings.fax, authenticator=authenticator)

    def _channel(self, ctx: MessageContext) -> tuple[str | None, list[Verdict]]:
        if ctx.envelope.channel == "fax-webhook":
            return "fax-webhook", []
        _, address = first_address(ctx.headers.from_header)
        if not (self.settings.enabled and address and address in self.settings.gateway_senders):
            return None, []
        # A From line is not proof: only mail the gateway's domain authenticates is a fax
        # (else it is ordinary mail and the gate decides on it like any other).
        status = AuthStatus.NONE
        if self.authenticator is not None and ctx.message is not None and not ctx.headers.ambiguity:
            domain = domain_of(address)
            status = self.authenticator.authenticate(
                ctx.raw, ctx.message, ctx.envelope, domain
            ).status
        if status is AuthStatus.PASS:
            return "fax-email", []
        return None, [
            Verdict(
                self.name,
                Decision.NOTE,
                "fax_gateway_unauthenticated",
                f"The From names the fax gateway {address}, but its domain is not "
                f"authenticated ({status.value}): read as ordinary mail.",
            )
        ]

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        channel, refused = self._channel(ctx)
        if channel is None or ctx.message is None:
            return refused
        ctx.channel = channel
        # Only the signed webhook's fields say who called: a gateway's Subject or body is
        # text anyone can type, so a fax-email has no calling number.
        extra = ctx.envelope.extra if channel == "fax-webhook" else {}
        ctx.fax = {k: v for k, v in extra.items() if k in ("calling", "called", "fax_id", "pages")}
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
        pages = read = looked = 0
        seconds = 0.0
        more = False
        problems: list[Verdict] = []
        limits = OcrLimits.from_settings(self.settings)
        for part in documents:
            budget = self.settings.max_pages - looked
            left = self.settings.max_ocr_seconds - seconds
            if budget <= 0:
                more = True
                break
            if left <= 0:
                problems.append(self._hold("fax_ocr_time_cap", ocr_time_cap(limits, read)))
                break
            try:
                result = ocr_document(
                    _payload_bytes(part),
                    self.settings.ocr_dpi,
                    self.settings.ocr_language,
                    budget,
                    limits=replace(limits, max_seconds=left),
                )
            except OcrError as exc:
                # The document is removed like any attachment: staff must get it again.
                problems.append(
                    self._hold("fax_ocr_failed", f"A fax document could not be read: {exc}.")
                )
                continue
            texts.append(result.text)
            pages += result.pages
            read += result.pages_read
            looked += result.pages_looked_at
            seconds += result.seconds
            more = more or result.more_pages
            problems.extend(self._hold(hit.code, hit.message) for hit in result.caps)
            problems.extend(
                Verdict(
                    self.name,
                    Decision.NOTE,
                    "fax_page_scaled",
                    f"Page {number} was read at {dpi} dpi to stay under the pixel cap.",
                )
                for number, dpi in result.scaled
            )
        if texts:
            ctx.body_text = normalise("\n\n".join(texts))
            ctx.quoted_spans = quoted_spans(ctx.body_text)
        ctx.fax["pages"] = f"{pages}+" if more else str(pages)
        ctx.fax["ocr_seconds"] = f"{seconds:.2f}"
        of = f"more than {pages}" if more else str(pages)
        verdicts = [
            Verdict(
                self.name,
                Decision.NOTE,
                "fax_ocr",
                f"{read} of {of} fax page(s) read by OCR in {seconds:.1f} s.",
            )
        ]
        if more or looked < pages:
            verdicts.append(
                self._hold(
                    "fax_pages_over_limit",
                    f"Only the first {looked} of {of} pages were looked at (the cap is "
                    f"{self.settings.max_pages}).",
                )
            )
        # One verdict per cap, with the first page's sentence: a bomb repeats on every page.
        seen: set[str] = set()
        for verdict in problems:
            if verdict.code in seen and verdict.decision is Decision.HOLD:
                continue
            seen.add(verdict.code)
            verdicts.append(verdict)
        return verdicts

    def _hold(self, code: str, message: str) -> Verdict:
        """A cap or a failure of OCR holds the case: staff read what was not."""
        return Verdict(self.name, Decision.HOLD, code, message)
