"""Known agency domains: the US .gov registry shipped in ``config/data``, and typo lookups.

The registry tells staff who an address belongs to ("Federal Bureau of Investigation,
Federal - Executive") and catches one-edit typos of real agency domains (``fbl.gov``,
``fbi.gob``): a deletion index (every domain with one character removed) makes a lookup a
handful of dictionary probes instead of 17,000 edit-distance comparisons.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DOTGOV_CSV = Path(__file__).resolve().parent.parent / "config" / "data" / "dotgov-current-full.csv"


@dataclass(frozen=True)
class Agency:
    domain: str
    name: str
    type: str
    city: str
    state: str


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class AgencyRegistry:
    def __init__(self, agencies: dict[str, Agency], extra_domains: tuple[str, ...] = ()) -> None:
        self.agencies = agencies
        self.known = frozenset(agencies) | frozenset(extra_domains)
        self._index: dict[str, set[str]] = {}
        for domain in self.known:
            for variant in _deletions(domain) | {domain}:
                self._index.setdefault(variant, set()).add(domain)

    @classmethod
    def from_csv(
        cls, path: Path = DOTGOV_CSV, extra_domains: tuple[str, ...] = ()
    ) -> AgencyRegistry:
        return cls(_load_csv(path), extra_domains)

    def lookup(self, domain: str) -> Agency | None:
        """The agency of ``domain`` or of the closest registered parent (``cyber.fbi.gov``)."""
        labels = domain.lower().strip(".").split(".")
        for start in range(len(labels) - 1):
            found = self.agencies.get(".".join(labels[start:]))
            if found:
                return found
        return None

    def near_miss(self, registrable: str) -> str | None:
        """A known domain one edit (insert, delete, substitute, swap) away, if any."""
        registrable = registrable.lower()
        if registrable in self.known:
            return None
        candidates: set[str] = set()
        for probe in _deletions(registrable) | {registrable}:
            candidates |= self._index.get(probe, set())
        candidates.discard(registrable)
        for candidate in sorted(candidates):
            if _one_edit(registrable, candidate):
                return candidate
        return None


def _one_edit(a: str, b: str) -> bool:
    if a == b:
        return False
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and a[diffs[0]] == b[diffs[1]]
            and a[diffs[1]] == b[diffs[0]]
        )
    if abs(len(a) - len(b)) != 1:
        return False
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


@cache
def _load_csv(path: Path) -> dict[str, Agency]:
    agencies: dict[str, Agency] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            domain = (row.get("Domain name") or "").strip().lower()
            if not domain:
                continue
            name = (row.get("Organization name") or "").strip()
            sub = (row.get("Suborganization name") or "").strip()
            agencies[domain] = Agency(
                domain=domain,
                name=f"{name} — {sub}" if sub else name,
                type=(row.get("Domain type") or "").strip(),
                city=(row.get("City") or "").strip(),
                state=(row.get("State") or "").strip(),
            )
    return agencies
