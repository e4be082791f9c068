"""Address rules every layer applies the same way: the domain of an address, whether a
domain lies within another, and which of our request addresses a recipient is.

Written once: each ad-hoc ``partition("@")`` elsewhere was a chance to cut an address
differently from the gate that authenticated it.
"""

from __future__ import annotations


def split_address(address: str) -> tuple[str, str]:
    """(local part, domain), lower-cased, cut at the last "@"."""
    local, _, domain = address.strip().lower().rpartition("@")
    return local, domain


def domain_of(address: str) -> str:
    """The domain of a validated address; empty when there is none."""
    local, at, domain = address.partition("@")
    if not (at and local) or "@" in domain:
        return ""
    return domain.strip().strip(".").lower()


def within(domain: str, parent: str) -> bool:
    """``domain`` is ``parent`` or one of its subdomains (never merely a suffix of it:
    ``evilfbi.gov`` is not within ``fbi.gov``)."""
    return domain == parent or domain.endswith("." + parent)


class RequestAddresses:
    """The addresses we take mail for; ``local+anything@domain`` counts as ``local@domain``
    (sub-addresses carry reply tokens)."""

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self.addresses = frozenset(a.lower() for a in addresses)

    def canonical(self, address: str) -> str | None:
        local, domain = split_address(address)
        base = local.split("+", 1)[0]
        candidate = f"{base}@{domain}"
        return candidate if candidate in self.addresses else None
