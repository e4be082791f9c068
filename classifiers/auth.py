"""Sender authentication: is the From domain really the sender? (DMARC-style alignment)

The From domain counts as authenticated when an *aligned* identifier passed: a DKIM
signature whose ``d=`` has the same organisational domain as From, or SPF ``pass`` for a
MAIL FROM with the same organisational domain (relaxed alignment, RFC 7489 §3.1). The
domain's own DMARC policy is not consulted: for an intake desk every request must align,
whatever the agency publishes.

Results come from one of two places:

- ``Authentication-Results`` written by our boundary MTA (RFC 8601 §5): believed only when
  the message came from a trusted peer, only with a trusted authserv-id (compared without
  case), only above the topmost ``Received`` header a boundary host added (``by`` one of
  ``auth.boundary_hosts``; with none configured or none found, above the first
  ``Received``), and only the topmost such header: anything lower was written before the
  message reached us, by whoever sent it. Results in that header that disagree (an aligned
  pass beside ``dmarc=fail``) are never a pass. The MTA must strip headers carrying our
  authserv-id from incoming mail, as RFC 8601 §5 asks;
- our own verification: dkimpy over every signature, pyspf for the connecting IP and MAIL
  FROM, DNS through the ``classifiers.dns`` seam (a temporary DNS failure is ``temperror``,
  never a fail). A DKIM signature vouches for the From only when its ``h=`` covers From:
  verifiers accept signatures that omit it, and such a signature says nothing of who
  wrote the From line the gate decides on.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from enum import StrEnum
from typing import Any

import authres
import dkim
import spf
from dkim.util import parse_tag_value

from classifiers.dns import Resolver, TempDnsError
from core.addresses import domain_of
from core.envelope import Envelope
from core.headers import first_address

# dkimpy logs every missing key and bad signature at ERROR; the verdict says it once.
logging.getLogger("dkimpy").setLevel(logging.CRITICAL)


class AuthStatus(StrEnum):
    PASS = "pass"  # noqa: S105 - a result name, not a secret
    FAIL = "fail"
    TEMPERROR = "temperror"
    NONE = "none"


@dataclass(frozen=True)
class AuthResult:
    status: AuthStatus
    source: str  # "authentication-results", "verified", or "none"
    detail: str
    findings: tuple[str, ...] = ()


_FAILING = {"fail", "permerror", "softfail", "neutral", "policy"}


@dataclass
class _Tally:
    aligned_pass: list[str]
    failed: list[str]
    temp: list[str]
    findings: list[str]

    # set when one header's results contradict each other (aligned pass and dmarc=fail)
    conflict: str | None = None

    def result(self, source: str) -> AuthResult:
        findings = tuple(self.findings)
        if self.conflict is not None:
            return AuthResult(AuthStatus.FAIL, source, self.conflict, findings)
        if self.aligned_pass:
            return AuthResult(AuthStatus.PASS, source, "; ".join(self.aligned_pass), findings)
        if self.temp:
            return AuthResult(AuthStatus.TEMPERROR, source, "; ".join(self.temp), findings)
        if self.failed:
            return AuthResult(AuthStatus.FAIL, source, "; ".join(self.failed), findings)
        return AuthResult(AuthStatus.NONE, source, "no authentication result", findings)


def peer_host(envelope: Envelope) -> str:
    return peer_host_of(envelope.peer or "")


def peer_host_of(peer: str) -> str:
    host, sep, port = peer.rpartition(":")
    return host.strip("[]") if sep and port.isdigit() else peer


class _SpfQuery(spf.query):  # type: ignore[misc]
    """pyspf with its DNS answered by our resolver (no module-level patching)."""

    resolver: Resolver

    def dns(self, name: str, qtype: str, cnames: Any = None, ignore_void: bool = False) -> Any:
        name = str(name).rstrip(".").lower()
        try:
            answers = self.resolver.lookup(name, qtype)
        except TempDnsError as exc:
            raise spf.TempError(str(exc)) from exc
        if qtype in ("TXT", "SPF"):
            return [[a.encode("utf-8")] for a in answers]
        if qtype == "MX":
            out = []
            for a in answers:
                pref, _, host = a.partition(" ")
                out.append((int(pref or 0), host))
            return out
        if not answers and not ignore_void:
            self.void_lookups += 1
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError("Void lookup limit exceeded")
        return answers


_HEADER_END = re.compile(rb"\r?\n\r?\n")
_RECEIVED_BY = re.compile(r"\bby\s+\[?([A-Za-z0-9.:_-]{1,255})", re.I)
_AUTHSERV_ID = re.compile(r"\s*(?:\([^()]{0,200}\)\s*)*([^\s;()]{1,255})")


def authserv_id(value: str) -> str:
    """The authserv-id of an Authentication-Results value, lower-cased, read without a full
    parse (so an unparseable header of ours is still recognised as ours)."""
    match = _AUTHSERV_ID.match(value)
    return match.group(1).lower() if match else ""


class SenderAuthenticator:
    def __init__(
        self,
        org_domain: Callable[[str], str],
        resolver: Resolver,
        trusted_authserv_ids: tuple[str, ...],
        trusted_peers: tuple[str, ...],
        verify: bool = True,
        dns_timeout: float = 3.0,
        boundary_hosts: tuple[str, ...] = (),
    ) -> None:
        self.org_domain = org_domain
        self.resolver = resolver
        self.trusted_ids = frozenset(i.strip().lower() for i in trusted_authserv_ids)
        self.trusted_peers = frozenset(trusted_peers)
        self.boundary_hosts = frozenset(h.strip().strip(".").lower() for h in boundary_hosts)
        self.verify = verify
        self.dns_timeout = dns_timeout

    def aligned(self, domain: str, from_domain: str) -> bool:
        domain = domain.lower().strip(".")
        return bool(domain) and self.org_domain(domain) == self.org_domain(from_domain)

    def authenticate(
        self, raw: bytes, message: Message, envelope: Envelope, from_domain: str
    ) -> AuthResult:
        if peer_host(envelope) in self.trusted_peers:
            upstream = self.from_headers(message, from_domain)
            if upstream is not None:
                return upstream
        if self.verify:
            return self.verify_message(raw, envelope, from_domain)
        return AuthResult(AuthStatus.NONE, "none", "no trusted result and verification is off")

    def boundary_vouches(
        self, raw: bytes, peer: str, sender_ok: Callable[[str, str], bool] = lambda d, n: True
    ) -> bool:
        """Before any analysis: has our boundary MTA already passed this message's From,
        and does ``sender_ok(domain, display name)`` accept it? (The spool's urgent lane is
        for such mail; a forged emergency must not jump the queue.) Reads only the header
        block, with the rules of ``from_headers``."""
        if peer_host_of(peer) not in self.trusted_peers:
            return False
        end = _HEADER_END.search(raw, 0, 256 * 1024)
        message = BytesHeaderParser(policy=compat32).parsebytes(raw[: end.end() if end else 0])
        from_values = message.get_all("From") or []
        if len(from_values) != 1:
            return False
        display, address = first_address(str(from_values[0]))
        domain = domain_of(address)
        if not domain or not sender_ok(domain, display):
            return False
        result = self.from_headers(message, domain)
        return result is not None and result.status is AuthStatus.PASS

    # -- (a) Authentication-Results from our boundary MTA --------------------------------
    def boundary_index(self, names: list[tuple[str, str]]) -> int:
        """Index of the Received header above which our boundary MTA's results stand: the
        topmost one a boundary host added, else the first; len(names) when there is none
        (a message handed to us directly by the trusted peer)."""
        received = [i for i, (name, _) in enumerate(names) if name == "received"]
        for index in received:
            match = _RECEIVED_BY.search(names[index][1])
            if match and match.group(1).strip(".").lower() in self.boundary_hosts:
                return index
        return received[0] if received else len(names)

    def trusted_header(self, message: Message) -> str | None:
        """The topmost Authentication-Results with a trusted authserv-id above the
        boundary, or None."""
        names = [(str(name).lower(), str(value)) for name, value in message.items()]
        for name, value in names[: self.boundary_index(names)]:
            if name == "authentication-results" and authserv_id(value) in self.trusted_ids:
                return value
        return None

    def from_headers(self, message: Message, from_domain: str) -> AuthResult | None:
        value = self.trusted_header(message)
        if value is None:
            return None
        tally = _Tally([], [], [], [])
        try:
            header = authres.AuthenticationResultsHeader.parse_value(value)
        except Exception:  # authres raises its own and stdlib types on bad syntax
            tally.findings.append("unparseable Authentication-Results from our boundary MTA")
            return tally.result("authentication-results")
        for res in header.results:
            self._tally_result(tally, res, from_domain)
        dmarc_failed = [f for f in tally.failed if f.startswith("dmarc=fail")]
        if tally.aligned_pass and dmarc_failed:
            tally.conflict = (
                f"the boundary MTA's results disagree ({'; '.join(tally.aligned_pass)} but "
                f"{'; '.join(dmarc_failed)})"
            )
        return tally.result("authentication-results")

    def _tally_result(self, tally: _Tally, res: Any, from_domain: str) -> None:
        method, result = str(res.method).lower(), str(res.result).lower()
        props = {f"{p.type}.{p.name}".lower(): str(p.value) for p in res.properties}
        if method == "dmarc":
            domain = props.get("header.from", "")
            if result == "pass" and self.aligned(domain, from_domain):
                tally.aligned_pass.append(f"dmarc=pass header.from={domain}")
            elif result == "fail":
                tally.failed.append(f"dmarc=fail header.from={domain}")
            elif result == "temperror":
                tally.temp.append("dmarc=temperror")
            return
        if method == "dkim":
            domain = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
        elif method == "spf":
            domain = props.get("smtp.mailfrom", "").rpartition("@")[2]
        else:
            return
        self._count(tally, method, result, domain, from_domain)

    def _count(
        self, tally: _Tally, method: str, result: str, domain: str, from_domain: str
    ) -> None:
        """One DKIM or SPF result, from a header or our own check, into the tally."""
        label = f"{method}={result} {domain or '?'}"
        if result == "pass":
            if self.aligned(domain, from_domain):
                tally.aligned_pass.append(label + " (aligned)")
            else:
                tally.failed.append(label + " (not aligned with From)")
        elif result in _FAILING:
            tally.failed.append(label)
        elif result == "temperror":
            tally.temp.append(label)
        else:
            tally.findings.append(label)

    # -- (b) our own verification ------------------------------------------------------
    def verify_message(self, raw: bytes, envelope: Envelope, from_domain: str) -> AuthResult:
        tally = _Tally([], [], [], [])
        self._verify_dkim(raw, from_domain, tally)
        if not tally.aligned_pass:
            self._verify_spf(envelope, from_domain, tally)
        return tally.result("verified")

    def _dnsfunc(self, temp: list[str]) -> Callable[..., bytes | None]:
        def lookup(name: bytes | str, timeout: float = 5) -> bytes | None:
            text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
            try:
                answers = self.resolver.lookup(text.rstrip("."), "TXT")
            except TempDnsError as exc:
                temp.append(str(exc))
                return None
            return answers[0].encode("utf-8") if answers else None

        return lookup

    def _verify_dkim(self, raw: bytes, from_domain: str, tally: _Tally) -> None:
        try:
            verifier = dkim.DKIM(raw, timeout=int(self.dns_timeout) or 1)
        except Exception:  # dkimpy raises on messages it cannot split into headers
            tally.findings.append("message could not be read for DKIM")
            return
        signatures = [v for k, v in verifier.headers if k.lower() == b"dkim-signature"]
        for idx, value in enumerate(signatures[:10]):
            try:
                tags = parse_tag_value(value)
                domain = tags.get(b"d", b"").decode("ascii", "replace").lower()
            except Exception:
                tally.failed.append("dkim=permerror (malformed signature)")
                continue
            if b"l" in tags:
                tally.findings.append(f"DKIM signature of {domain} uses l= (body length)")
            signed = {h.strip().lower() for h in tags.get(b"h", b"").split(b":")}
            temp: list[str] = []
            try:
                ok = verifier.verify(idx=idx, dnsfunc=self._dnsfunc(temp))
            except dkim.DKIMException as exc:
                tally.failed.append(f"dkim=permerror {domain} ({type(exc).__name__})")
                continue
            label = f"dkim={'pass' if ok else 'fail'} {domain}"
            if temp and not ok:
                tally.temp.append(f"dkim=temperror {domain}")
            elif ok and b"from" not in signed:
                tally.failed.append(label + " (From not signed)")
            elif ok and self.aligned(domain, from_domain):
                tally.aligned_pass.append(label + " (aligned)")
            elif ok:
                tally.failed.append(label + " (not aligned with From)")
            else:
                tally.failed.append(label)

    def _verify_spf(self, envelope: Envelope, from_domain: str, tally: _Tally) -> None:
        host = peer_host(envelope)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            tally.findings.append("no connecting IP: SPF not evaluated")
            return
        mail_from = envelope.mail_from or f"postmaster@{envelope.helo or ''}"
        domain = mail_from.rpartition("@")[2].lower()
        query = _SpfQuery(i=host, s=mail_from, h=envelope.helo or domain, querytime=0)
        query.resolver = self.resolver
        try:
            result, _code, _explanation = query.check()
        except Exception as exc:  # pyspf raises on pathological records
            tally.temp.append(f"spf=temperror ({type(exc).__name__})")
            return
        self._count(tally, "spf", result, domain, from_domain)
