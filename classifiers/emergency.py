"""The emergency flag: a subject reading "Emergency Disclosure Request".

Matched on words, case-insensitive, after reply/forward/[EXTERNAL] prefixes and through
any punctuation, so "[EXT] FW: EMERGENCY-DISCLOSURE-REQUEST!!" matches; a negation just
before it ("Non-emergency …", "Not an emergency …") does not. The flag is computed for
every message, dropped ones included: a spoofed emergency is itself worth seeing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from config.settings import Settings
from ingest.context import MessageContext
from ingest.verdicts import Decision, Verdict

_WORDS = re.compile(r"[^\W_]+", re.UNICODE)
_PHRASE = ("emergency", "disclosure", "request")
_NEGATIONS = frozenset({"non", "not", "no", "nonemergency"})
_ARTICLES = frozenset({"a", "an", "the"})


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
    """Owns ``ctx.emergency``."""

    name: str = "emergency"
    runs_after_drop: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> EmergencyStage:
        return cls()

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        ctx.emergency = is_emergency_subject(ctx.headers.subject)
        if not ctx.emergency:
            return []
        return [
            Verdict(
                self.name,
                Decision.NOTE,
                "emergency_subject",
                'The subject reads "Emergency Disclosure Request".',
            )
        ]
