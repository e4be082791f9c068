"""The emergency flag: a subject reading "Emergency Disclosure Request".

Matched on words, case-insensitive, after reply/forward/[EXTERNAL] prefixes and through
any punctuation, so "[EXT] FW: EMERGENCY-DISCLOSURE-REQUEST!!" matches; a negation just
before it ("Non-emergency …", "Not an emergency …") does not. The flag is computed for
every message, dropped ones included: a spoofed emergency is itself worth seeing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from classifiers.completeness import EmergencyChecker, default_checker
from classifiers.nlp import message_doc
from config.settings import Settings
from core.context import MessageContext
from core.verdicts import Decision, Verdict

_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
_PHRASE = ("emergency", "disclosure", "request")
_NEGATIONS = frozenset({"non", "not", "no", "nonemergency"})
_ARTICLES = frozenset({"a", "an", "the"})
# How much of a fax's text is its cover sheet.
COVER_SHEET_LINES = 25
COVER_SHEET_CHARS = 10_000


def is_emergency_subject(subject: str) -> bool:
    words = [w.casefold() for w in _WORDS.findall(subject)]
    for i in range(len(words) - 2):
        if tuple(words[i : i + 3]) != _PHRASE:
            continue
        before = words[max(0, i - 2) : i]
        negated = bool(before) and (
            before[-1] in _NEGATIONS
            or (len(before) == 2 and before[0] in _NEGATIONS and before[1] in _ARTICLES)
        )
        if not negated:
            return True
    return False


@dataclass
class EmergencyStage:
    """Owns ``ctx.emergency`` and ``ctx.emergency_suspected``.

    The subject rule runs on every message, dropped ones included. The body signal runs on
    mail that was not dropped and has no emergency subject: it pages at a lower severity.
    """

    checker: EmergencyChecker = field(default_factory=default_checker)
    name: str = "emergency"
    runs_after_drop: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> EmergencyStage:
        return cls()

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        ctx.emergency = is_emergency_subject(ctx.headers.subject)
        if not ctx.emergency and ctx.channel.startswith("fax"):
            # a fax's "subject" is its cover sheet: the first lines of the document (cut
            # from the first characters: the whole body is not split to take 25 lines)
            head = ctx.body_text[:COVER_SHEET_CHARS].splitlines()[:COVER_SHEET_LINES]
            if any(is_emergency_subject(line) for line in head):
                ctx.emergency = True
                return [
                    Verdict(
                        self.name,
                        Decision.NOTE,
                        "emergency_cover_sheet",
                        'The fax cover sheet reads "Emergency Disclosure Request".',
                    ),
                    Verdict(
                        self.name,
                        Decision.NOTE,
                        "emergency_subject",
                        "Treated as an emergency subject.",
                    ),
                ]
        if ctx.emergency:
            return [
                Verdict(
                    self.name,
                    Decision.NOTE,
                    "emergency_subject",
                    'The subject reads "Emergency Disclosure Request".',
                )
            ]
        if ctx.decision is Decision.DROP:
            return []
        signal = self.checker.body_emergency_signal(
            ctx.body_text, ctx.quoted_spans, message_doc(ctx)
        )
        if signal is None:
            return []
        ctx.emergency_suspected = True
        first = signal.matches[0]
        return [
            Verdict(
                self.name,
                Decision.NOTE,
                "emergency_suspected",
                f"The body suggests an emergency ({signal.strength}: {first.raw!r}).",
            )
        ]


@dataclass
class CompletenessStage:
    """Owns ``ctx.completeness``; adds what an emergency request lacks to
    ``ctx.deficiencies`` (the response asks for it, the alert shows it)."""

    checker: EmergencyChecker = field(default_factory=default_checker)
    name: str = "completeness"
    runs_after_drop: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> CompletenessStage:
        return cls()

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        if not (ctx.emergency or ctx.emergency_suspected):
            return []
        subjects = any(i.role == "subject" for i in ctx.identifiers)
        result = self.checker.check_emergency_completeness(
            ctx.body_text, ctx.quoted_spans, subjects, ctx.facts_found, message_doc(ctx)
        )
        ctx.completeness = [(i.id, i.label, i.found, i.raw) for i in result.items]
        for item in result.items:
            # missing accounts are already asked for by the identifier stage
            if not item.found and item.id != "accounts_concerned":
                ctx.deficiencies.append(item.label)
        if result.complete:
            return [
                Verdict(
                    self.name,
                    Decision.PASS,
                    "emergency_complete",
                    "The emergency request has every item the guidelines ask for.",
                )
            ]
        return [
            Verdict(
                self.name,
                Decision.NOTE,
                "emergency_incomplete",
                "Missing: " + "; ".join(result.missing) + ".",
            )
        ]
