"""The law-enforcement gate: mail from anyone but law enforcement is disregarded.

The decision rests on the RFC 5322 From domain (what the person sees); the envelope
sender is recorded beside it. A display name is never evidence: "FBI <x@gmail.com>" is a
lookalike, not an agency. Sender authentication (SPF/DKIM/DMARC) is [gate]'s next step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from classifiers.domains import DomainPolicy
from config.settings import Settings
from ingest.context import MessageContext, Sender
from ingest.headers import address_count, domain_of, first_address
from ingest.verdicts import Decision, Verdict


@dataclass
class GateStage:
    """Owns ``ctx.sender``."""

    policy: DomainPolicy
    name: str = "gate"
    runs_after_drop: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GateStage:
        policy = DomainPolicy(settings.le_policy)
        policy.warm_up()
        return cls(policy)

    def _drop(self, code: str, message: str) -> Verdict:
        return Verdict(self.name, Decision.DROP, code, message)

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        if ctx.headers.from_count == 0:
            return [self._drop("no_from", "The message has no From header.")]
        if ctx.headers.from_count > 1:
            return [self._drop("multiple_from", "The message has more than one From header.")]
        if address_count(ctx.headers.from_header) > 1:
            return [self._drop("multiple_from", "The From header names more than one mailbox.")]
        display, address = first_address(ctx.headers.from_header)
        domain = domain_of(address)
        if not address or not domain:
            return [self._drop("no_sender_domain", "The From header holds no usable address.")]
        decision = self.policy.decide(domain)
        ctx.sender = Sender(address, domain, display, decision.registrable)
        verdicts: list[Verdict] = []
        if decision.allowed:
            verdicts.append(Verdict(self.name, Decision.PASS, decision.code, decision.explanation))
            return verdicts
        if decision.code != "lookalike_domain":
            verdicts.append(self._drop(decision.code, decision.explanation))
        if decision.lookalike:
            verdicts.append(
                self._drop("lookalike_domain", f"{domain} imitates a law-enforcement domain.")
            )
        if display and self.policy.display_name_claims_agency(display) and not decision.lookalike:
            verdicts.append(
                self._drop(
                    "lookalike_domain",
                    "The display name claims an agency over a non-law-enforcement address.",
                )
            )
        return verdicts
