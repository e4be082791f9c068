"""DomainPolicy on the demo configuration: agencies, non-agencies, and lookalikes."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from classifiers.domains import US_STATES, DomainPolicy
from config.settings import LEPolicySettings, load_settings
from core.addresses import within


@pytest.fixture(scope="module")
def policy() -> DomainPolicy:
    return DomainPolicy(load_settings(environ={}).le_policy)


@pytest.mark.parametrize(
    ("domain", "normalised", "registrable"),
    [
        ("fbi.gov", "fbi.gov", "fbi.gov"),
        ("cyber.fbi.gov", "cyber.fbi.gov", "fbi.gov"),
        ("FBI.GOV.", "fbi.gov", "fbi.gov"),
        (" Fbi.Gov ", "fbi.gov", "fbi.gov"),
        ("met.police.uk", "met.police.uk", "met.police.uk"),
        ("army.mil", "army.mil", "army.mil"),
        ("rcmp-grc.gc.ca", "rcmp-grc.gc.ca", "rcmp-grc.gc.ca"),
        ("interieur.gouv.fr", "interieur.gouv.fr", "interieur.gouv.fr"),
        ("nypd.org", "nypd.org", "nypd.org"),
        ("sub.nypd.org", "sub.nypd.org", "nypd.org"),
        ("lapd.online", "lapd.online", "lapd.online"),
    ],
)
def test_allowed(policy: DomainPolicy, domain: str, normalised: str, registrable: str) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is True
    assert decision.code == "le_domain"
    assert decision.lookalike is False
    assert decision.domain == normalised
    assert decision.registrable == registrable


def test_allowed_explanations_name_the_rule(policy: DomainPolicy) -> None:
    assert policy.decide("cyber.fbi.gov").explanation == "cyber.fbi.gov is under the .gov suffix."
    assert policy.decide("sub.nypd.org").explanation == "nypd.org is an allowed agency domain."


@pytest.mark.parametrize(
    "domain",
    ["gmail.com", "example.com", "notnypd.org", "example.co.uk", "icecream.com", "justice.com"],
)
def test_ordinary_domains_are_not_allowed_and_not_lookalikes(
    policy: DomainPolicy, domain: str
) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is False
    assert decision.code == "non_le_domain"
    assert decision.lookalike is False
    assert decision.explanation == f"{decision.registrable} is not a law-enforcement domain."


@pytest.mark.parametrize("domain", ["gov", "gov.", "", ".", "localhost"])
def test_bare_labels_have_no_usable_domain(policy: DomainPolicy, domain: str) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is False
    assert decision.code == "no_sender_domain"


@pytest.mark.parametrize("domain", ["police.uk", "gov.uk", "gouv.fr"])
def test_an_allowed_suffix_alone_is_not_an_agency(policy: DomainPolicy, domain: str) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is False
    assert decision.code == "non_le_domain"


@pytest.mark.parametrize(
    ("domain", "registrable"),
    [
        ("fbi.gov.example.com", "example.com"),
        ("fbi-gov.com", "fbi-gov.com"),
        ("fbigov.net", "fbigov.net"),
        ("police-uk.co", "police-uk.co"),
        ("secure-fbi.com", "secure-fbi.com"),
        ("nypd.org.evil.com", "evil.com"),
        ("mail.fbi.gov.ru", "gov.ru"),
        ("dhs-gov.us", "dhs-gov.us"),
    ],
)
def test_ascii_lookalikes(policy: DomainPolicy, domain: str, registrable: str) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is False
    assert decision.code == "non_le_domain"
    assert decision.lookalike is True
    assert decision.registrable == registrable
    assert decision.explanation.endswith("and imitates one.")


@pytest.mark.parametrize(
    "domain",
    [
        "fb\u0456.gov",  # Cyrillic small letter byelorussian-ukrainian i
        "xn--fb-kmc.gov",  # a punycode label under .gov
        "fbi.xn--gov-abc.gov",
        "det\u0435ctive.nypd.org",  # Cyrillic e under an allowed agency domain
    ],
)
def test_internationalised_labels_under_allowed_names_are_lookalikes(
    policy: DomainPolicy, domain: str
) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is False
    assert decision.code == "lookalike_domain"
    assert decision.lookalike is True


@pytest.mark.parametrize("domain", ["fb\u0456.com", "p\u043elice-uk.co", "xn--fbi-gov-7ve.com"])
def test_internationalised_spellings_of_agency_words_are_lookalikes(
    policy: DomainPolicy, domain: str
) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is False
    assert decision.code == "non_le_domain"
    assert decision.lookalike is True


@pytest.mark.parametrize("domain", ["gm\u0430il.com", "m\u00fcller.de", "xn--80ak6aa92e.com"])
def test_internationalised_domains_that_imitate_no_agency_are_only_non_le(
    policy: DomainPolicy, domain: str
) -> None:
    decision = policy.decide(domain)
    assert decision.code == "non_le_domain"
    assert decision.lookalike is False


def test_denied_domain_wins_over_allowed_suffix() -> None:
    denying = DomainPolicy(
        LEPolicySettings(allowed_suffixes=("gov",), denied_domains=("compromised.gov",))
    )
    for domain in ("compromised.gov", "mail.compromised.gov", "COMPROMISED.GOV."):
        decision = denying.decide(domain)
        assert decision.allowed is False
        assert decision.code == "denied_domain"
        assert decision.explanation == "compromised.gov is on the deny list."
    # whole labels only: a neighbour whose name merely ends the same is still allowed
    assert denying.decide("notcompromised.gov").allowed is True
    assert denying.decide("fbi.gov").allowed is True


def test_denied_domain_wins_over_allowed_domain() -> None:
    denying = DomainPolicy(
        LEPolicySettings(allowed_domains=("nypd.org",), denied_domains=("old.nypd.org",))
    )
    assert denying.decide("old.nypd.org").code == "denied_domain"
    assert denying.decide("mail.old.nypd.org").code == "denied_domain"
    assert denying.decide("nypd.org").code == "le_domain"


def test_policy_suffix_outside_public_suffix_list_matches_on_whole_labels() -> None:
    custom = DomainPolicy(LEPolicySettings(allowed_suffixes=("police.example",)))
    assert custom.decide("county.police.example").allowed is True
    assert custom.decide("police.example").allowed is False
    assert custom.decide("notpolice.example").allowed is False


@pytest.mark.parametrize(
    "name",
    [
        "FBI",
        "Special Agent John Doe, FBI",
        "Federal Bureau of Investigation",
        "Department of Justice",
        "Homeland Security Investigations",
        "Metropolitan Police",
        "NYPD Detective Squad",
        "Law Enforcement Liaison",
        "State Police",
        "fbi_agent",
        "Bob Fbi-Smith",
    ],
)
def test_display_name_claims_agency(policy: DomainPolicy, name: str) -> None:
    assert policy.display_name_claims_agency(name) is True


@pytest.mark.parametrize(
    "name",
    ["John Smith", "Nicole", "Janice", "Policeman Bob", "Alice Lawson", "Federal Express", ""],
)
def test_display_name_without_agency_words(policy: DomainPolicy, name: str) -> None:
    assert policy.display_name_claims_agency(name) is False


def test_decide_never_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args)[:80])
        raise OSError("network access is forbidden in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)

    fresh = DomainPolicy(load_settings(environ={}).le_policy)
    fresh.warm_up()
    assert fresh.decide("cyber.fbi.gov").registrable == "fbi.gov"
    assert fresh.decide("a.b.example.co.uk").registrable == "example.co.uk"
    assert fresh.decide("fbi.gov.example.com").lookalike is True
    assert attempts == []


DEMO = load_settings(environ={}).le_policy


@pytest.mark.parametrize("entry", DEMO.agency_domains)
def test_every_shipped_agency_domain_is_allowed_at_its_apex_and_below(
    policy: DomainPolicy, entry: str
) -> None:
    for domain in (entry, f"cyber.{entry}"):
        decision = policy.decide(domain)
        assert decision.allowed is True, decision
        assert decision.code == "le_domain"
        assert decision.lookalike is False


@pytest.mark.parametrize("entry", DEMO.allowed_suffixes)
def test_every_shipped_public_suffix_allows_subdomains_only(
    policy: DomainPolicy, entry: str
) -> None:
    assert policy.decide(f"agency.{entry}").allowed is True
    # nobody mails from the suffix itself, unless it lies under another (pnn.police.uk)
    under_another = any(within(entry, o) and o != entry for o in DEMO.allowed_suffixes)
    assert policy.decide(entry).allowed is under_another


def test_the_agency_domains_are_not_public_suffixes() -> None:
    assert not set(DEMO.agency_domains) & set(DEMO.allowed_suffixes)


@pytest.mark.parametrize("state", sorted(US_STATES))
def test_us_state_government_is_law_enforcement(policy: DomainPolicy, state: str) -> None:
    decision = policy.decide(f"oag.state.{state}.us")
    assert decision.allowed is True
    assert decision.code == "le_domain"
    assert decision.verify is False
    assert policy.decide(f"state.{state}.us").allowed is False  # the namespace itself


@pytest.mark.parametrize(
    "domain",
    ["co.fairfax.va.us", "sheriff.co.fairfax.va.us", "police.ci.austin.tx.us",
     "pd.town.vail.co.us", "ci.santa-fe.nm.us"],
)  # fmt: skip
def test_us_localities_are_held_for_verification_never_dropped(
    policy: DomainPolicy, domain: str
) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is True
    assert decision.verify is True
    assert decision.code == "local_government_domain"


def test_us_localities_can_be_allowed_outright() -> None:
    settings = DEMO.model_copy(update={"us_locality": "allow"})
    decision = DomainPolicy(settings).decide("sheriff.co.fairfax.va.us")
    assert (decision.allowed, decision.verify, decision.code) == (True, False, "le_domain")


@pytest.mark.parametrize(
    "domain",
    ["k12.va.us", "school.k12.va.us", "example.us", "state.va.us.example.com", "co.zz.us"],
)
def test_other_us_names_are_not_government(policy: DomainPolicy, domain: str) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is False or decision.code != "local_government_domain"
    assert decision.verify is False


@pytest.mark.parametrize(
    "domain", ["evil.example%fbi.gov", "fbi.gov_", "a!b.gov", "-fbi.gov", "fbi-.gov", "x..gov"]
)
def test_non_ldh_labels_are_refused(policy: DomainPolicy, domain: str) -> None:
    decision = policy.decide(domain)
    assert decision.allowed is False
    assert decision.code == "invalid_domain"


def test_a_percent_hack_address_is_no_mailbox() -> None:
    from core.headers import first_address

    assert first_address("Agent <agent@evil.example%fbi.gov>") == ("Agent", "")
    assert first_address("Agent <agent@fbi.gov>") == ("Agent", "agent@fbi.gov")
