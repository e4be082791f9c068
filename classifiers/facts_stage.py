"""The request-facts stage: legal process, period, deadline, agent, case number.

The facts feed three things: the case record (staff see what was asked, on what
authority, by whom), the automated response's deficiency list (a request with no legal
process or no time period is asked for it), and the emergency completeness check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from classifiers.facts import Fact, FactExtractor
from classifiers.nlp import message_doc
from config.settings import Settings
from core.context import MessageContext
from core.findings import Identifier
from core.verdicts import Decision, Verdict

PRESERVATION_LIMIT_DAYS = 90


def as_finding(fact: Fact) -> Identifier:
    """Facts travel in the same provenance shape as identifiers (role "fact")."""
    return Identifier(
        fact.kind,
        fact.value,
        fact.raw,
        fact.start,
        fact.end,
        "fact",
        fact.confidence,
        fact.recognizer,
        fact.pattern,
    )


@dataclass
class FactStage:
    """Owns ``ctx.facts`` and ``ctx.facts_found``; adds deficiencies."""

    extractor: FactExtractor
    name: str = "facts"
    runs_after_drop: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> FactStage:
        return cls(
            FactExtractor(
                default_region=settings.extraction.default_region,
                ner_model=settings.extraction.ner_model,
            )
        )

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        address = ctx.sender.address if ctx.sender else ""
        facts = self.extractor.extract(
            ctx.body_text,
            ctx.quoted_spans,
            address,
            ctx.envelope.received_at.date() if ctx.envelope.received_at else date.today(),
            message_doc(ctx),
        )
        ctx.facts = [as_finding(f) for f in facts.facts]
        ctx.facts_found = {f.kind for f in facts.facts}
        verdicts: list[Verdict] = []
        if not facts.legal_process and not ctx.emergency:
            ctx.deficiencies.append(
                "the legal process the request relies on (subpoena, court order, search "
                "warrant, preservation request under 18 U.S.C. 2703(f), …)"
            )
        if not facts.time_periods:
            ctx.deficiencies.append("the time period the information should cover")
        if facts.preservation_days_over_limit:
            ctx.deficiencies.append(
                f"a preservation period within {PRESERVATION_LIMIT_DAYS} days (the request "
                f"asks for {facts.preservation_days_over_limit}); extensions can be requested"
            )
            verdicts.append(
                Verdict(
                    self.name,
                    Decision.NOTE,
                    "preservation_over_90_days",
                    f"Preservation asked for {facts.preservation_days_over_limit} days.",
                )
            )
        if facts.legal_process:
            verdicts.append(
                Verdict(
                    self.name,
                    Decision.PASS,
                    "legal_process_named",
                    "Legal process: " + ", ".join(facts.legal_process) + ".",
                )
            )
        return verdicts
