"""The states a case and the outbound work move through, as enums (stored as their
string values, so the database and the reports read as before)."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    OPEN = "open"
    HELD = "held"
    EXPIRED = "expired"
    CLOSED = "closed"
