"""What analysis finds in a request: account identifiers with their provenance.

Plain frozen data, picklable, so a worker process can hand findings back to the loop
that records them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """Whose an identifier is: the account the request is about, the requester's own,
    anyone else's; a request fact (classifiers/facts.py) is stored beside them."""

    SUBJECT = "subject"
    REQUESTER = "requester"
    OTHER = "other"
    FACT = "fact"


@dataclass(frozen=True)
class Identifier:
    """One account identifier found in the text, with the provenance a reviewer needs."""

    kind: str
    value: str
    raw: str
    start: int
    end: int
    role: str
    confidence: float
    recognizer: str
    pattern: str

    def report(self) -> dict[str, Any]:
        """The replay report's shape: the contract's kind, value and role, and where it
        came from, so a reviewer can check a finding without the body."""
        return {
            "kind": self.kind,
            "value": self.value,
            "role": self.role,
            "provenance": {
                "recognizer": self.recognizer,
                "pattern": self.pattern,
                "span": [self.start, self.end],
                "confidence": self.confidence,
            },
        }
