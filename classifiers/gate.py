"""The law-enforcement gate: mail from anyone but law enforcement is disregarded.

The decision rests on the RFC 5322 From domain, what a person reads. In order:

1. one From header with one valid mailbox (else ``no_from``/``multiple_from``/``no_sender_domain``);
2. the domain policy: deny list, LE suffixes and allowed domains, lookalikes (labels,
   glued words, homoglyphs, one-edit typos of registered agency domains, agency claims in
   the display name over a non-LE address) — non-LE mail is dropped;
3. sender authentication (``classifiers.auth``): an aligned DKIM or SPF pass; a failure is
   dropped, a temporary error or no result is held for staff to verify (configurable);
4. notes that do not decide but that staff and replies must know: the agency from the .gov
   registry, a Reply-To or envelope sender outside the LE policy (never used for answers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from classifiers.auth import AuthResult, AuthStatus, SenderAuthenticator
from classifiers.dns import Resolver, StaticResolver, SystemResolver
from classifiers.domains import DomainDecision, DomainPolicy, skeleton
from classifiers.registry import AgencyRegistry
from config.settings import AuthSettings, DirectoryEntry, Settings
from core.addresses import domain_of
from core.context import MessageContext, Sender
from core.headers import address_count, first_address
from core.verdicts import Decision, Verdict

_ACTIONS = {"continue": Decision.PASS, "hold": Decision.HOLD, "drop": Decision.DROP}


def make_resolver(settings: AuthSettings) -> Resolver:
    if settings.dns == "static":
        return StaticResolver(settings.static_dns)
    return SystemResolver(settings.dns_timeout_seconds)


def make_authenticator(settings: Settings, policy: DomainPolicy) -> SenderAuthenticator:
    auth = settings.auth
    return SenderAuthenticator(
        org_domain=policy.registrable,
        resolver=make_resolver(auth),
        trusted_authserv_ids=auth.trusted_authserv_ids,
        trusted_peers=auth.trusted_peers,
        verify=auth.verify,
        dns_timeout=auth.dns_timeout_seconds,
        boundary_hosts=auth.boundary_hosts,
    )


@dataclass(frozen=True)
class Explanation:
    """Everything the gate concluded about one address, for ``le-intake domains check``."""

    address: str
    decision: DomainDecision
    near_miss: str | None
    agency: str | None
    agency_type: str | None
    verdicts: tuple[Verdict, ...]


@dataclass
class GateStage:
    """Owns ``ctx.sender``, ``ctx.agency``, ``ctx.agency_type``, ``ctx.sender_auth``."""

    policy: DomainPolicy
    registry: AgencyRegistry
    authenticator: SenderAuthenticator
    auth_settings: AuthSettings
    directory: tuple[DirectoryEntry, ...] = ()
    name: str = "gate"
    runs_after_drop: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> GateStage:
        policy = DomainPolicy(settings.le_policy)
        policy.warm_up()
        registry = AgencyRegistry.from_csv(extra_domains=settings.le_policy.allowed_domains)
        authenticator = make_authenticator(settings, policy)
        return cls(policy, registry, authenticator, settings.auth, settings.directory)

    def _verdict(self, decision: Decision, code: str, message: str) -> Verdict:
        return Verdict(self.name, decision, code, message)

    # -- domain ------------------------------------------------------------------------
    def domain_verdicts(
        self, domain: str, display_name: str
    ) -> tuple[DomainDecision, str | None, list[Verdict]]:
        decision = self.policy.decide(domain)
        near = None
        if (
            decision.code != "denied_domain"
            and decision.registrable not in self.policy.allowed_domains
        ):
            seen_as = skeleton(decision.registrable)
            near = self.registry.near_miss(seen_as)
            if near is None and seen_as != decision.registrable and seen_as in self.registry.known:
                near = seen_as  # a homoglyph spelling of a known domain imitates it
        verdicts: list[Verdict] = []
        if decision.allowed and near is None:
            kind = Decision.HOLD if decision.verify else Decision.PASS
            verdicts.append(self._verdict(kind, decision.code, decision.explanation))
            return decision, near, verdicts
        if decision.allowed:  # under an LE suffix, but a typo of a registered agency
            verdicts.append(
                self._verdict(
                    Decision.DROP,
                    "lookalike_domain",
                    f"{decision.registrable} is one edit away from the registered {near}.",
                )
            )
            return decision, near, verdicts
        if decision.code != "lookalike_domain":
            verdicts.append(self._verdict(Decision.DROP, decision.code, decision.explanation))
        if decision.lookalike or near:
            why = f"imitates {near}" if near else "imitates a law-enforcement domain"
            verdicts.append(self._verdict(Decision.DROP, "lookalike_domain", f"{domain} {why}."))
        elif display_name and self.policy.display_name_claims_agency(display_name):
            verdicts.append(
                self._verdict(
                    Decision.DROP,
                    "lookalike_domain",
                    "The display name claims an agency over a non-law-enforcement address.",
                )
            )
        return decision, near, verdicts

    def vouched_at_boundary(self, raw: bytes, peer: str) -> bool:
        """For the spool's urgent lane, before analysis: the boundary MTA passed the From
        and the domain policy has nothing against it (a lookalike that signs its own mail
        is authenticated too, and must not jump the queue)."""

        def clean(domain: str, display_name: str) -> bool:
            _, _, verdicts = self.domain_verdicts(domain, display_name)
            return all(v.decision is Decision.PASS for v in verdicts)

        return self.authenticator.boundary_vouches(raw, peer, clean)

    def explain(self, address: str, display_name: str = "") -> Explanation:
        domain = domain_of(address.lower())
        decision, near, verdicts = self.domain_verdicts(domain, display_name)
        agency = self.registry.lookup(domain) if decision.allowed else None
        return Explanation(
            address,
            decision,
            near,
            agency.name if agency else None,
            agency.type if agency else None,
            tuple(verdicts),
        )

    # -- the stage ---------------------------------------------------------------------
    def _fax(self, ctx: MessageContext) -> list[Verdict]:
        """A fax has no authenticated sender: held for a call-back, matched against the
        trusted directory's fax numbers so staff see who it claims to be from."""
        calling = ctx.fax.get("calling", "")
        ctx.sender = Sender(f"fax:{calling or 'unknown'}", "", "", "")
        ctx.sender_auth = "none"
        verdicts = []
        entry = next((e for e in self.directory if calling and calling in e.fax), None)
        if entry is not None:
            # A caller id is whatever the sending machine says: it names who the fax claims
            # to be from, never the agency staff may take it for.
            ctx.fax["claimed_agency"] = entry.agency
            verdicts.append(
                self._verdict(
                    Decision.NOTE,
                    "fax_number_in_directory",
                    f"The fax claims to be from {entry.agency}: its calling number {calling} is "
                    f"theirs in the trusted directory, but caller ids can be forged. Call back "
                    f"on {entry.phone} to verify.",
                )
            )
        else:
            verdicts.append(
                self._verdict(
                    Decision.NOTE,
                    "fax_number_unknown",
                    f"The calling number {calling or '(none)'} is not in the trusted directory.",
                )
            )
        verdicts.append(
            self._verdict(
                Decision.HOLD,
                "fax_unverified",
                "Faxes carry no authenticated sender: verify by calling the agency back.",
            )
        )
        return verdicts

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        if ctx.channel.startswith("fax"):
            return self._fax(ctx)
        from_header = ctx.headers.from_header
        if ctx.headers.from_count == 0:
            return [self._verdict(Decision.DROP, "no_from", "The message has no From header.")]
        if ctx.headers.from_count > 1 or address_count(from_header) > 1:
            return [self._verdict(Decision.DROP, "multiple_from", "More than one From mailbox.")]
        display, address = first_address(from_header)
        domain = domain_of(address)
        if not domain:
            return [
                self._verdict(
                    Decision.DROP, "no_sender_domain", "The From header holds no valid mailbox."
                )
            ]
        decision, _near, verdicts = self.domain_verdicts(domain, display)
        ctx.sender = Sender(address, domain, display, decision.registrable)
        if any(v.decision is Decision.DROP for v in verdicts):
            return verdicts

        agency = self.registry.lookup(domain)
        if agency is not None:
            ctx.agency, ctx.agency_type = agency.name, agency.type
        elif domain.endswith(".gov"):
            verdicts.append(
                self._verdict(
                    Decision.NOTE,
                    "gov_domain_not_in_registry",
                    f"{decision.registrable} is not in the shipped .gov registry snapshot.",
                )
            )
        verdicts.extend(self._identity_notes(ctx))
        if ctx.message is not None:
            verdicts.extend(self._authenticate(ctx, domain))
        return verdicts

    def _identity_notes(self, ctx: MessageContext) -> list[Verdict]:
        notes = []
        if ctx.headers.reply_to:
            _, reply_to = first_address(ctx.headers.reply_to)
            reply_domain = domain_of(reply_to)
            if reply_to and not self.policy.decide(reply_domain).allowed:
                notes.append(
                    self._verdict(
                        Decision.NOTE,
                        "reply_to_outside_policy",
                        f"Reply-To points outside law enforcement ({reply_domain}); "
                        "answers go only to the authenticated From.",
                    )
                )
        envelope_domain = domain_of(ctx.envelope.mail_from.lower())
        if envelope_domain and not self.policy.decide(envelope_domain).allowed:
            notes.append(
                self._verdict(
                    Decision.NOTE,
                    "envelope_sender_outside_policy",
                    f"The envelope sender's domain {envelope_domain} is not law enforcement.",
                )
            )
        return notes

    def _authenticate(self, ctx: MessageContext, domain: str) -> list[Verdict]:
        assert ctx.message is not None
        if ctx.headers.ambiguity:
            # Two readings of the headers: a signature may cover a From other than the one
            # read here, so nothing vouches for this one.
            ctx.sender_auth = AuthStatus.NONE.value
            return [
                self._verdict(
                    Decision.HOLD,
                    "sender_unverified",
                    "The header block can be read two ways; the sender is not authenticated.",
                )
            ]
        result = self.authenticator.authenticate(ctx.raw, ctx.message, ctx.envelope, domain)
        notes = [
            self._verdict(
                Decision.NOTE,
                "dkim_body_length_limit",
                f"{finding}: text after the signed length is not covered by the signature.",
            )
            for finding in result.findings
            if "l= (body length)" in finding
        ]
        return [*notes, self._status_verdict(result, ctx)]

    def _status_verdict(self, result: AuthResult, ctx: MessageContext) -> Verdict:
        ctx.sender_auth = result.status.value
        source = "our boundary MTA" if result.source == "authentication-results" else "le-intake"
        if result.status is AuthStatus.PASS:
            return self._verdict(
                Decision.PASS, "sender_authenticated", f"Authenticated ({source}): {result.detail}."
            )
        if result.status is AuthStatus.FAIL:
            return self._verdict(
                _ACTIONS[self.auth_settings.on_fail],
                "sender_auth_failed",
                f"The From domain is not authenticated ({source}): {result.detail}.",
            )
        if result.status is AuthStatus.TEMPERROR:
            return self._verdict(
                _ACTIONS[self.auth_settings.on_temperror],
                "sender_auth_temperror",
                f"Authentication could not be completed ({result.detail}); verify by hand.",
            )
        return self._verdict(
            _ACTIONS[self.auth_settings.on_none],
            "sender_unverified",
            "No authentication result for the From domain; verify the sender by hand.",
        )
