"""DNS for sender authentication, behind one small seam.

``SystemResolver`` asks the configured nameservers through dnspython with a short time
budget. ``StaticResolver`` answers from a table (settings ``[auth.static_dns]``): tests and
offline demos use it, so nothing in them touches the network. A temporary failure raises
``TempDnsError`` and is told apart from "no such record" (an empty list), because the
first means "hold and verify by hand" and the second may mean "fail".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import dns.exception
import dns.resolver


class TempDnsError(Exception):
    """The answer could not be had now (timeout, SERVFAIL); it may come later."""


class Resolver(Protocol):
    def lookup(self, name: str, qtype: str) -> list[str]:
        """Answers as text (TXT strings joined), [] for NXDOMAIN/no data."""
        ...


TEMPFAIL = "TEMPFAIL"


class StaticResolver:
    """Answers from a table ``{"name": {"TXT": [...], "A": [...]}}``; the value
    ``"TEMPFAIL"`` in place of a list makes that lookup a temporary failure."""

    def __init__(self, records: Mapping[str, Mapping[str, Sequence[str] | str]]) -> None:
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}

    def lookup(self, name: str, qtype: str) -> list[str]:
        answer = self.records.get(name.lower().rstrip("."), {}).get(qtype.upper(), [])
        if answer == TEMPFAIL:
            raise TempDnsError(f"{qtype} {name}: temporary failure (static table)")
        return [str(a) for a in answer]


class SystemResolver:
    def __init__(self, lifetime: float = 3.0) -> None:
        self.resolver = dns.resolver.Resolver()
        self.lifetime = lifetime

    def lookup(self, name: str, qtype: str) -> list[str]:
        try:
            answers = self.resolver.resolve(name, qtype, lifetime=self.lifetime)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise TempDnsError(f"{qtype} {name}: {type(exc).__name__}") from exc
        except dns.exception.DNSException as exc:
            raise TempDnsError(f"{qtype} {name}: {type(exc).__name__}") from exc
        out: list[str] = []
        for rdata in answers:
            if qtype.upper() == "TXT":
                out.append(b"".join(rdata.strings).decode("utf-8", "replace"))
            elif qtype.upper() == "MX":
                out.append(f"{rdata.preference} {rdata.exchange.to_text(omit_final_dot=True)}")
            else:
                out.append(rdata.to_text())
        return out
