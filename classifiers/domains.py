"""Which sender domains are law enforcement, and which merely pretend to be.

The registrable domain comes from tldextract on its bundled public-suffix snapshot:
constructed with no suffix-list URLs and no cache dir, it never touches the network or
the disk. Allowed suffixes are matched on whole labels (``x.fbi.gov`` ends with ``gov``;
``fbigov.net`` does not), so a policy suffix need not be in the public suffix list.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property

import tldextract

from config.settings import LEPolicySettings
from core.addresses import within


@dataclass(frozen=True)
class DomainDecision:
    domain: str
    registrable: str
    allowed: bool
    code: str
    explanation: str
    lookalike: bool = False
    # Government, but of a kind nobody vouches for: held for staff to verify.
    verify: bool = False


# Every state, DC and the territories: ``<agency>.state.<st>.us`` is state government.
US_STATES = frozenset({
    "al", "ak", "az", "ar", "ca", "co", "ct", "de", "fl", "ga", "hi", "id", "il", "in", "ia",
    "ks", "ky", "la", "me", "md", "ma", "mi", "mn", "ms", "mo", "mt", "ne", "nv", "nh", "nj",
    "nm", "ny", "nc", "nd", "oh", "ok", "or", "pa", "ri", "sc", "sd", "tn", "tx", "ut", "vt",
    "va", "wa", "wv", "wi", "wy", "dc", "pr", "gu", "vi", "as", "mp",
})  # fmt: skip
# RFC 1480's locality types under ``<locality>.<st>.us``: city, county, town, village and
# their kin (``police.ci.austin.tx.us``, ``sheriff.co.fairfax.va.us``).
US_LOCALITY_TYPES = frozenset({"ci", "co", "city", "cnty", "town", "vil", "twp", "dst", "cog"})
# An LDH label (RFC 1123); non-ASCII labels are judged as homoglyphs instead.
_LDH = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def ldh_domain(domain: str) -> bool:
    """Every ASCII label is letters, digits and inner hyphens: ``evil.example%fbi.gov`` or
    ``fbi.gov_`` is no host name, whatever a parser makes of it."""
    labels = domain.lower().split(".")
    return all(
        label and (_LDH.fullmatch(label) is not None or not label.isascii()) for label in labels
    )


def _ascii_label_ok(label: str) -> bool:
    return label.isascii() and not label.startswith("xn--")


# Letters of other scripts that look like Latin ones, for the skeleton of a domain.
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁһӏɩոνορατικмнвтАЕОРСХІЈЅΑΒΕΗΙΚΜΝΟΡΤΧΥΖ",
    "aeopcyxijsdhlinvopatikmhbtaeopcxijsabehikmnoptxyz",
)


def skeleton(domain: str) -> str:
    """The ASCII a reader would see: IDNA decoded, confusables mapped, accents dropped."""
    labels = []
    for label in domain.lower().split("."):
        if label.startswith("xn--"):
            with contextlib.suppress(UnicodeError):
                label = label.encode("ascii").decode("idna")
        label = unicodedata.normalize("NFKD", label.translate(_CONFUSABLES))
        labels.append("".join(c for c in label if not unicodedata.combining(c)))
    return ".".join(labels)


class DomainPolicy:
    def __init__(self, settings: LEPolicySettings) -> None:
        self.allowed_suffixes = tuple(settings.allowed_suffixes)
        self.agency_domains = frozenset(settings.agency_domains)
        # Agency domains, shipped or added by operators: the apex and its subdomains.
        self.allowed_domains = frozenset(settings.allowed_domains) | self.agency_domains
        self.us_state_domains = settings.us_state_domains
        self.us_locality = settings.us_locality
        self.denied_domains = frozenset(settings.denied_domains)
        words = {w for w in settings.agency_words}
        tokens = {w for w in words if " " not in w}
        tokens.update(s.split(".")[0] for s in self.allowed_suffixes)
        tokens.update(d.split(".")[0] for d in self.allowed_domains)
        self._tokens = frozenset(t for t in tokens if len(t) >= 2)
        # Labels of the LE suffixes ("uk", "us", "ca") may be glued to an agency word
        # ("policeuk"), but do not make a lookalike on their own.
        self._glue = frozenset(label for s in self.allowed_suffixes for label in s.split(".")) | {
            "us",
            "uk",
            "ca",
            "au",
            "nz",
        }
        self._phrases = tuple(
            re.compile(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])") for w in sorted(words)
        )

    @cached_property
    def _extract(self) -> tldextract.TLDExtract:
        return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def warm_up(self) -> None:
        self._extract("example.com")

    def registrable(self, domain: str) -> str:
        result = self._extract(domain)
        return result.top_domain_under_public_suffix or domain

    def decide(self, domain: str) -> DomainDecision:
        domain = domain.strip().strip(".").lower()
        if not domain or "." not in domain:
            return DomainDecision(domain, domain, False, "no_sender_domain", "No usable domain.")
        if not ldh_domain(domain):
            return DomainDecision(
                domain,
                domain,
                False,
                "invalid_domain",
                "The domain has a label that is not a host name (letters, digits, hyphens).",
            )
        registrable = self.registrable(domain)
        for denied in self.denied_domains:
            if within(domain, denied):
                return DomainDecision(
                    domain, registrable, False, "denied_domain", f"{denied} is on the deny list."
                )
        labels = domain.split(".")
        le_match = next(
            (s for s in self.allowed_suffixes if within(domain, s) and domain != s), None
        )
        exact = next((d for d in self.allowed_domains if within(domain, d)), None)
        if (le_match or exact) and not all(_ascii_label_ok(label) for label in labels):
            return DomainDecision(
                domain,
                registrable,
                False,
                "lookalike_domain",
                "An internationalised (non-ASCII) domain imitating a law-enforcement one.",
                lookalike=True,
            )
        if exact:
            return DomainDecision(
                domain, registrable, True, "le_domain", f"{exact} is an allowed agency domain."
            )
        if le_match:
            return DomainDecision(
                domain, registrable, True, "le_domain", f"{domain} is under the .{le_match} suffix."
            )
        us = self._us_government(labels)
        if us is not None and all(_ascii_label_ok(label) for label in labels):
            return DomainDecision(domain, registrable, *us)
        lookalike = self.imitates_le(domain, registrable)
        return DomainDecision(
            domain,
            registrable,
            False,
            "non_le_domain",
            f"{registrable} is not a law-enforcement domain"
            + (" and imitates one." if lookalike else "."),
            lookalike=lookalike,
        )

    def _us_government(self, labels: list[str]) -> tuple[bool, str, str, bool, bool] | None:
        """(allowed, code, explanation, lookalike, verify) for the .us government
        namespaces (RFC 1480), or None for any other domain."""
        if len(labels) < 4 or labels[-1] != "us" or labels[-2] not in US_STATES:
            return None
        state = labels[-2]
        if labels[-3] == "state" and self.us_state_domains:
            return True, "le_domain", f"state.{state}.us is US state government.", False, False
        if labels[-4] in US_LOCALITY_TYPES:
            namespace = ".".join(labels[-4:])
            if self.us_locality == "allow":
                return True, "le_domain", f"{namespace} is US local government.", False, False
            return (
                True,
                "local_government_domain",
                f"{namespace} is the US locality namespace (county or city government): "
                "held for staff to verify the agency.",
                False,
                True,
            )
        return None

    def imitates_le(self, domain: str, registrable: str) -> bool:
        """A non-LE domain carrying LE labels: ``fbi.gov.example.com``, ``fbi-gov.com``,
        ``fbigov.net``. Only the part left of the public suffix is read."""
        suffix_len = len(registrable.split(".")) - 1
        labels = domain.split(".")[: len(domain.split(".")) - suffix_len]
        for label in labels:
            if not _ascii_label_ok(label):
                label = skeleton(label)
            for piece in label.split("-"):
                if piece in self._tokens or self._segments(piece):
                    return True
        return False

    def _segments(self, word: str) -> bool:
        """True when ``word`` is agency tokens glued together (``fbigov``, ``policeuk``):
        two or more pieces, at least one of them an agency token."""
        n = len(word)
        if n < 4:
            return False
        # best[end] = (pieces, agency pieces) of a split of word[:end], or None
        best: list[tuple[int, int] | None] = [None] * (n + 1)
        best[0] = (0, 0)
        for end in range(1, n + 1):
            for start in range(end):
                prior = best[start]
                piece = word[start:end]
                if prior is None or not (piece in self._tokens or piece in self._glue):
                    continue
                candidate = (prior[0] + 1, prior[1] + (piece in self._tokens))
                current = best[end]
                if current is None or candidate[1] > current[1]:
                    best[end] = candidate
        final = best[n]
        return final is not None and final[0] >= 2 and final[1] >= 1

    def display_name_claims_agency(self, display_name: str) -> bool:
        name = display_name.lower()
        return any(p.search(name) for p in self._phrases)
