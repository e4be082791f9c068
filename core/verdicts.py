"""The result shapes every stage speaks: verdicts with reason codes, and the final outcome."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Decision(StrEnum):
    """What a verdict asks of the message's road, weakest first."""

    PASS = "pass"  # noqa: S105 - a check passed; recorded for the audit trail
    NOTE = "note"  # something worth recording (attachments removed, emergency subject)
    HOLD = "hold"  # keep, but staff must verify before anything is sent
    DROP = "drop"  # disregard: record metadata and reason, never answer


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    CONFIRMED = "confirmed"
    FOLLOWUP = "followup"
    HELD = "held"
    DROPPED = "dropped"
    DUPLICATE = "duplicate"
    FAILED = "failed"


@dataclass(frozen=True)
class Verdict:
    """One finding of one stage: a machine-readable ``code`` and a sentence for people."""

    stage: str
    decision: Decision
    code: str
    message: str


_STRENGTH = {Decision.PASS: 0, Decision.NOTE: 0, Decision.HOLD: 1, Decision.DROP: 2}


def strongest(verdicts: list[Verdict]) -> Decision:
    """The decision that wins: any drop beats any hold beats the rest."""
    best = Decision.PASS
    for verdict in verdicts:
        if _STRENGTH[verdict.decision] > _STRENGTH[best]:
            best = verdict.decision
    return best
