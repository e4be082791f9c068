"""Emergencies stated in the body, and what an emergency request leaves out."""

from __future__ import annotations

import pytest

from classifiers.completeness import (
    ITEMS,
    Completeness,
    EmergencyChecker,
    body_emergency_signal,
    check_emergency_completeness,
)
from classifiers.quotes import quoted_spans


@pytest.fixture(scope="module")
def checker() -> EmergencyChecker:
    return EmergencyChecker()


def _signal_matches(checker: EmergencyChecker, text: str) -> tuple[str, list[tuple[str, str]]]:
    signal = checker.body_emergency_signal(text, quoted_spans(text))
    assert signal is not None, text
    for match in signal.matches:  # provenance holds for every match
        assert text[match.start : match.end] == match.raw
        assert match.pattern
    return signal.strength, [(m.pattern, m.raw) for m in signal.matches]


# -- body signal: (text, strength, [(pattern, raw), ...]) ------------------------------

SIGNAL_POSITIVES = [
    (
        "Disclosure is requested pursuant to 18 U.S.C. § 2702(b)(8).",
        "statute",
        [("STATUTE_2702_B8", "18 U.S.C. § 2702(b)(8)")],
    ),
    ("We ask under 2702(b)(8) for the records.", "statute", [("STATUTE_2702_B8", "2702(b)(8)")]),
    ("See §2702 (c)(4).", "statute", [("STATUTE_2702_C4", "§2702 (c)(4)")]),
    ("Requested per 18 USC 2702(b)(8).", "statute", [("STATUTE_2702_B8", "18 USC 2702(b)(8)")]),
    (
        "This request is made under section 2702(c)(4).",
        "statute",
        [("STATUTE_2702_C4", "section 2702(c)(4)")],
    ),
    (
        "Authority: 18 U.S.C. §§ 2702(b)(8) and (c)(4).",
        "statute",
        [("STATUTE_2702_B8_C4", "18 U.S.C. §§ 2702(b)(8) and (c)(4)")],
    ),
    (
        # a negation earlier in the sentence does not reach a citation three words on
        "Without a court order in hand, we rely on 18 U.S.C. 2702(b)(8).",
        "statute",
        [("STATUTE_2702_B8", "18 U.S.C. 2702(b)(8)")],
    ),
    (
        "There is an imminent threat to life.",
        "danger_claim",
        [("THREAT_TO_LIFE", "imminent threat to life")],
    ),
    (
        "The victim faces danger of death or serious physical injury.",
        "danger_claim",
        [("DEATH_OR_INJURY", "danger of death or serious physical injury")],
    ),
    (
        # hard-wrapped mail: the line break does not break the phrase
        "The victim faces danger of death or serious\nphysical injury.",
        "danger_claim",
        [("DEATH_OR_INJURY", "danger of death or serious\nphysical injury")],
    ),
    (
        "There is a risk of serious bodily harm to the complainant.",
        "danger_claim",
        [("DEATH_OR_INJURY", "risk of serious bodily harm")],
    ),
    ("A child is in immediate danger.", "danger_claim", [("IN_DANGER", "in immediate danger")]),
    (
        "The user is threatening suicide on a live stream.",
        "danger_claim",
        [("SUICIDE_THREAT", "threatening suicide")],
    ),
    (
        "A 9-year-old was kidnapped from her school this morning.",
        "danger_claim",
        [("KIDNAPPING", "kidnapped")],
    ),
    ("Two employees are being held hostage.", "danger_claim", [("HOSTAGE", "held hostage")]),
    (
        "There is an active shooter at Lincoln High School.",
        "danger_claim",
        [("ACTIVE_SHOOTER", "active shooter")],
    ),
    (
        "The account posted a bomb threat against the mall.",
        "danger_claim",
        [("BOMB_THREAT", "bomb threat")],
    ),
    (
        "He threatened to kill his ex-wife tonight.",
        "danger_claim",
        [("THREAT_TO_KILL", "threatened to kill")],
    ),
    ("The subject is suicidal and armed.", "danger_claim", [("SUICIDE_THREAT", "suicidal")]),
    (
        "Their lives are at risk.",
        "danger_claim",
        [("LIFE_IN_DANGER", "lives are at risk")],
    ),
    (
        # the negation is in another clause
        "No warrant has been obtained, but the victim is in imminent danger.",
        "danger_claim",
        [("IN_DANGER", "in imminent danger")],
    ),
    (
        "We have no doubt the child is in grave danger.",
        "danger_claim",
        [("IN_DANGER", "in grave danger")],
    ),
    (
        # "No." of a case number is not a negation
        "Case No. 2024-55: kidnapped child, location unknown.",
        "danger_claim",
        [("KIDNAPPING", "kidnapped")],
    ),
    (
        "The missing girl is in imminent danger under 2702(c)(4).",
        "statute",
        [("IN_DANGER", "in imminent danger"), ("STATUTE_2702_C4", "2702(c)(4)")],
    ),
    (
        # only what the sender writes now counts, not the quoted earlier mail
        "A hostage is being held at gunpoint.\n\n"
        "On Mon, Jan 6, 2025 at 9:00 AM Desk <le@example-platform.com> wrote:\n"
        "> Is there an imminent threat to life?\n",
        "danger_claim",
        [("HOSTAGE", "hostage")],
    ),
]


@pytest.mark.parametrize(("text", "strength", "matches"), SIGNAL_POSITIVES)
def test_body_signal_positives(
    checker: EmergencyChecker, text: str, strength: str, matches: list[tuple[str, str]]
) -> None:
    assert _signal_matches(checker, text) == (strength, matches)


SIGNAL_NEGATIVES = [
    pytest.param("There is no imminent danger to anyone at this time.", id="no-imminent-danger"),
    pytest.param(
        "This is not an emergency. We are investigating a kidnapping from 2019.",
        id="disclaimer-withdraws-claims",
    ),
    pytest.param("Please treat this as a non-emergency request.", id="non-emergency"),
    pytest.param(
        "Thanks for the reply.\n\n"
        "On Mon, Jan 6, 2025 at 9:00 AM Desk <le@example-platform.com> wrote:\n"
        "> The victim is in imminent danger of death under 2702(b)(8).\n",
        id="quoted-only",
    ),
    pytest.param("> Is there an imminent threat to life?\n\nNo.\n", id="quoted-line"),
    pytest.param("Records are requested under 18 U.S.C. § 2702(c)(2).", id="2702-c-2"),
    pytest.param("Records are requested under 18 U.S.C. 2703(d).", id="2703-d"),
    pytest.param(
        "Please preserve the account.\n\nRegards,\nDet. Jane Roe\n"
        "Emergency contact: (555) 010-0199\n",
        id="emergency-contact-signature",
    ),
    pytest.param(
        "Emergency contact (24/7 watch desk): (555) 010-0199", id="emergency-contact-line"
    ),
    pytest.param("The victim was not kidnapped; she left voluntarily.", id="not-kidnapped"),
    pytest.param("If there is an imminent threat to life, please call 911.", id="conditional"),
    pytest.param("We have no indication of a risk of serious bodily harm.", id="no-indication"),
    pytest.param(
        "Neither the complainant nor her children are in immediate danger.", id="neither-nor"
    ),
    pytest.param("The threat to life is not credible.", id="denied-after"),
    pytest.param(
        "Please preserve @someone.\n\nSincerely,\nSA John Doe\nCrisis and Hostage Negotiation Unit",
        id="unit-in-signature",
    ),
    pytest.param("Active shooter training for staff is scheduled for May.", id="training"),
    pytest.param("This request is not made under 18 U.S.C. 2702(b)(8).", id="statute-negated"),
    pytest.param("The victim suffered non-life-threatening injuries.", id="non-life-threatening"),
    pytest.param("Please disclose subscriber information for @someone.", id="plain-request"),
]


@pytest.mark.parametrize("text", SIGNAL_NEGATIVES)
def test_body_signal_negatives(checker: EmergencyChecker, text: str) -> None:
    assert checker.body_emergency_signal(text, quoted_spans(text)) is None


def test_signal_spans_and_patterns(checker: EmergencyChecker) -> None:
    text = "Under 2702(b)(8): a child is in immediate danger."
    signal = checker.body_emergency_signal(text, [])
    assert signal is not None
    assert signal.patterns == ["STATUTE_2702_B8", "IN_DANGER"]
    assert [text[s:e] for s, e in signal.spans] == ["2702(b)(8)", "in immediate danger"]
    assert [m.kind for m in signal.matches] == ["statute", "danger_claim"]


def test_quoted_argument_is_honoured(checker: EmergencyChecker) -> None:
    """The caller's quoted spans are what is skipped, whatever the text looks like."""
    text = "A child is in immediate danger."
    assert checker.body_emergency_signal(text, [(0, len(text))]) is None
    assert checker.body_emergency_signal(text, [(0, 5)]) is not None


# -- completeness on whole requests -------------------------------------------------

COMPLETE = """To the Custodian of Records,

The Springfield Police Department is investigating an abduction that occurred at 7:40 PM
tonight. A 14-year-old girl was taken from a bus stop by a man who had been messaging her
through the account @lost_boy_42. We believe she is in imminent danger of serious physical
injury.

We request the subscriber information, IP logs and login history for @lost_boy_42 for the
last 48 hours. This information is needed to locate the suspect and the victim before she is
harmed. We cannot wait for a court order: the threat is imminent.

This request is made under 18 U.S.C. § 2702(b)(8).

Thank you,
Det. Maria Lopez
Springfield Police Department
(217) 555-0142
"""

SUICIDE = """Hello,

I am a dispatcher with the Lakeview County Sheriff's Office. At 02:10 this morning the
account holder, a 19-year-old man, posted from @dark_days_77 that he is going to end his
life tonight, and he has been threatening suicide in replies to friends since then.

We request the phone number associated with the account and recent IP addresses in order
to locate him and conduct a welfare check.

Deputy Sam Carter
"""

BOMB_THREAT = """Good afternoon,

At 11:52 today the X account @northside_reaper posted a bomb threat against the school he
attends, Northside Middle School, stating that the building would "go up" at 3 PM. The
students have been evacuated but the threat is ongoing. We cannot wait for legal process.

Please provide everything you hold on @northside_reaper from November 1 through the present.

Lt. Dana Whitfield
Northside Police Department
dwhitfield@northsidepd.gov
"""

GENERIC = """URGENT

We have an imminent threat to life involving a user of your platform. Pursuant to
18 U.S.C. 2702(c)(4) please disclose the subscriber information and IP logs for the
account immediately. Any delay could cost a life.

Officer R. Banks
"""

HOSTAGE = """Dear Sir or Madam,

Two employees of Riverside Credit Union are being held hostage inside the branch at
400 Main Street by an armed man who is live-streaming from the account @riverside_siege.
We need the location information for the device doing the streaming, so that tactical
officers can find the hostages and prevent further harm. Normal legal process would take
too long; every minute counts.

Sgt. Ana Ruiz, Riverside PD
"""

# A reply to our auto-response: what it quotes (our list, their earlier words) is not new.
REPLY = """The information we need is the login history and IP addresses for the account.

Thanks,
Det. K. Osei

On Tue, Nov 12, 2024 at 10:03 AM Law Enforcement <lawenforcement@example-platform.com> wrote:
> Your emergency request is missing: the nature of the emergency; who is in danger;
> why the normal legal process would be too slow.
>
> Earlier you wrote: a 16-year-old boy was abducted and is in imminent danger; we cannot
> wait for a court order.
"""

# The negated "bomb threat" and the signature's unit name do not say what is happening.
NEGATED_NATURE = """Emergency Disclosure Request

This is not a bomb threat case, but the complainant is in grave danger: a user of
your platform, @jd_outlaw, knows where she lives and has posted photos of a handgun
outside her home. We request his current location and the phone number associated with
the account to locate him before he acts. We have no time to obtain a warrant. Please
search the last 7 days.

Regards,
Inv. Paul Marsh
Domestic Violence Task Force
"""

# item id -> (raw, pattern) for every item found; items not listed must be missing.
Expected = dict[str, tuple[str | None, str]]

COMPLETENESS_CASES = [
    pytest.param(
        COMPLETE,
        True,
        {"agent_name", "agent_phone"},
        {
            "nature_of_emergency": ("abduction", "KIDNAPPING"),
            "person_in_danger": ("A 14-year-old girl", "AGED_PERSON"),
            "accounts_concerned": (None, "identifiers_present"),
            "information_requested": ("subscriber information", "SUBSCRIBER_INFO"),
            "why_necessary": ("needed to locate", "NEEDED_FOR"),
            "how_information_averts_harm": ("to locate", "AVERT_ACTION"),
            "why_normal_process_too_slow": ("cannot wait for a court order", "CANNOT_WAIT"),
            "agent_name_and_contact": (None, "facts:agent_name+agent_phone"),
            "time_period": ("last 48 hours", "LAST_N_UNITS"),
        },
        id="complete-abduction",
    ),
    pytest.param(
        SUICIDE,
        True,
        {"agent_name"},
        {
            "nature_of_emergency": ("end his\nlife", "SUICIDE_THREAT"),
            "person_in_danger": ("a 19-year-old man", "AGED_PERSON"),
            "accounts_concerned": (None, "identifiers_present"),
            "information_requested": ("phone number associated", "LINKED_CONTACT"),
            "why_necessary": ("in order\nto locate", "IN_ORDER_TO"),
            "how_information_averts_harm": ("to locate", "AVERT_ACTION"),
        },
        id="suicide-no-urgency-period-contact",
    ),
    pytest.param(
        BOMB_THREAT,
        True,
        {"agent_name", "agent_email"},
        {
            "nature_of_emergency": ("bomb threat", "BOMB_THREAT"),
            "person_in_danger": ("the school", "PERSON_AT_RISK"),
            "accounts_concerned": (None, "identifiers_present"),
            "why_normal_process_too_slow": ("the threat is ongoing", "IS_IMMINENT"),
            "agent_name_and_contact": (None, "facts:agent_name+agent_email"),
            "time_period": ("from November 1 through the present", "DATE_RANGE"),
        },
        id="bomb-threat-no-information-or-purpose",
    ),
    pytest.param(
        GENERIC,
        False,
        set(),
        {
            "information_requested": ("subscriber information", "SUBSCRIBER_INFO"),
            "why_normal_process_too_slow": ("delay could cost", "DELAY"),
        },
        id="generic-threat-to-life",
    ),
    pytest.param(
        HOSTAGE,
        True,
        {"time_period"},
        {
            "nature_of_emergency": ("held hostage", "HOSTAGE"),
            "person_in_danger": ("employees", "PERSON_AT_RISK"),
            "accounts_concerned": (None, "identifiers_present"),
            "information_requested": ("location information", "LOCATION"),
            "why_necessary": ("so that", "SO_THAT"),
            "how_information_averts_harm": ("prevent further harm", "AVERT_ACTION"),
            "why_normal_process_too_slow": ("take\ntoo long", "TOO_SLOW"),
            "time_period": (None, "facts:time_period"),
        },
        id="hostage-no-contact",
    ),
    pytest.param(
        REPLY,
        True,
        {"agent_name", "agent_phone"},
        {
            "accounts_concerned": (None, "identifiers_present"),
            "information_requested": ("login history", "LOGIN_HISTORY"),
            "agent_name_and_contact": (None, "facts:agent_name+agent_phone"),
        },
        id="reply-quoting-earlier-mail",
    ),
    pytest.param(
        NEGATED_NATURE,
        True,
        {"agent_name", "agent_phone", "agent_email"},
        {
            "person_in_danger": ("the complainant", "PERSON_AT_RISK"),
            "accounts_concerned": (None, "identifiers_present"),
            "information_requested": ("location", "LOCATION"),
            "why_necessary": ("to locate", "TO_PURPOSE"),
            "how_information_averts_harm": ("to locate", "AVERT_ACTION"),
            "why_normal_process_too_slow": ("no time to obtain a warrant", "NO_TIME"),
            "agent_name_and_contact": (None, "facts:agent_name+agent_email+agent_phone"),
            "time_period": ("last 7 days", "LAST_N_UNITS"),
        },
        id="negated-nature-signature-unit",
    ),
]


def _check(
    checker: EmergencyChecker, text: str, identifiers: bool, facts: set[str]
) -> Completeness:
    quoted = quoted_spans(text)
    result = checker.check_emergency_completeness(text, quoted, identifiers, facts)
    assert [i.id for i in result.items] == [item_id for item_id, _ in ITEMS]
    for item in result.items:
        if item.span is not None:  # a text span points at its raw text, outside quotes
            start, end = item.span
            assert text[start:end] == item.raw
            assert not any(s <= start < e for s, e in quoted)
        if not item.found:
            assert (item.span, item.raw, item.pattern) == (None, None, None)
    return result


@pytest.mark.parametrize(("text", "identifiers", "facts", "expected"), COMPLETENESS_CASES)
def test_completeness(
    checker: EmergencyChecker,
    text: str,
    identifiers: bool,
    facts: set[str],
    expected: Expected,
) -> None:
    result = _check(checker, text, identifiers, facts)
    assert set(result.found_ids) == set(expected)
    assert set(result.missing_ids) == {item_id for item_id, _ in ITEMS} - set(expected)
    assert {i.id: (i.raw, i.pattern) for i in result.items if i.found} == expected
    labels = dict(ITEMS)
    assert result.missing == [labels[i] for i in result.missing_ids]
    assert result.complete == (not result.missing)


def test_missing_labels_read_as_a_list_for_the_sender(checker: EmergencyChecker) -> None:
    result = _check(checker, GENERIC, False, set())
    assert result.missing == [
        "the nature of the emergency",
        "who is in danger",
        "the accounts concerned (usernames, profile URLs or phone numbers)",
        "why that information is necessary to prevent the harm",
        "how the information would help avert the harm",
        "the requesting agent's name and a phone number or email address",
        "the time period the information should cover",
    ]


def test_shared_span_between_why_and_how(checker: EmergencyChecker) -> None:
    result = _check(checker, NEGATED_NATURE, True, set())
    assert result.item("why_necessary").span == result.item("how_information_averts_harm").span


# -- single items: (text, item id, raw or None) -------------------------------------

ITEM_PHRASES = [
    ("A 14-year-old girl was taken.", "person_in_danger", "A 14-year-old girl"),
    ("Students at the school are at risk.", "person_in_danger", "Students"),
    ("Shots may be fired at a school.", "person_in_danger", "a school"),
    ("The threat is to the public.", "person_in_danger", "the public"),
    ("We need this to identify the person making threats.", "why_necessary", "to identify"),
    ("It will help us locate him.", "why_necessary", "help us locate"),
    ("Please disclose in order to prevent an attack.", "why_necessary", "in order to prevent"),
    ("Please feel free to contact me.", "why_necessary", None),
    ("to identify the person making threats", "how_information_averts_harm", None),
    ("Officers will conduct a welfare check.", "how_information_averts_harm", "welfare check"),
    (
        "We cannot wait for a court order.",
        "why_normal_process_too_slow",
        "cannot wait for a court order",
    ),
    (
        "There is no time to obtain legal process.",
        "why_normal_process_too_slow",
        "no time to obtain legal process",
    ),
    ("The threat is imminent.", "why_normal_process_too_slow", "The threat is imminent"),
    ("Exigent circumstances exist.", "why_normal_process_too_slow", "Exigent circumstances"),
    ("Send records since November 1.", "time_period", "since November 1"),
    ("IP logs from 11/01/2024 to present.", "time_period", "from 11/01/2024 to present"),
    ("Login history for the past 72 hours.", "time_period", "past 72 hours"),
    (
        "Logins between Nov. 3, 2024 and Nov. 5, 2024.",
        "time_period",
        "between Nov. 3, 2024 and Nov. 5, 2024",
    ),
    ("Please send subscriber info.", "information_requested", "subscriber info"),
    ("the email address linked to the account", "information_requested", "email address linked"),
    ("His login history would show it.", "information_requested", "login history"),
    ("There is no bomb threat.", "nature_of_emergency", None),
    ("She is the victim of sextortion.", "nature_of_emergency", "sextortion"),
    ("A missing child was last seen at 6 PM.", "nature_of_emergency", "missing child"),
    (
        "Please preserve the account.\n\nRegards,\nInv. P. Marsh\nDomestic Violence Task Force",
        "nature_of_emergency",
        None,
    ),
    ("It involves domestic violence.", "nature_of_emergency", "domestic violence"),
]


@pytest.mark.parametrize(("text", "item_id", "raw"), ITEM_PHRASES)
def test_item_phrases(checker: EmergencyChecker, text: str, item_id: str, raw: str | None) -> None:
    item = _check(checker, text, True, set()).item(item_id)
    assert item.raw == raw
    assert item.found == (raw is not None)


AGENT_FACTS = [
    ({"agent_name", "agent_phone"}, True),
    ({"agent_name", "agent_email"}, True),
    ({"agent_name"}, False),
    ({"agent_phone", "agent_email"}, False),
    (set(), False),
]


@pytest.mark.parametrize(("facts", "found"), AGENT_FACTS)
def test_agent_needs_name_and_a_contact(
    checker: EmergencyChecker, facts: set[str], found: bool
) -> None:
    item = _check(checker, "Call me.", True, facts).item("agent_name_and_contact")
    assert item.found == found
    assert item.span is None


def test_time_period_fact_wins_over_text(checker: EmergencyChecker) -> None:
    item = _check(checker, "For the last 48 hours.", True, {"time_period"}).item("time_period")
    assert (item.found, item.pattern, item.span) == (True, "facts:time_period", None)


def test_module_functions_match_methods(checker: EmergencyChecker) -> None:
    quoted = quoted_spans(COMPLETE)
    assert body_emergency_signal(COMPLETE, quoted) == checker.body_emergency_signal(
        COMPLETE, quoted
    )
    facts = {"agent_name", "agent_phone"}
    assert check_emergency_completeness(
        COMPLETE, quoted, True, facts
    ) == checker.check_emergency_completeness(COMPLETE, quoted, True, facts)


def test_long_body_reports_first_occurrences(checker: EmergencyChecker) -> None:
    """A long body is one pass; each item points at its earliest phrase."""
    facts = {"agent_name", "agent_phone"}
    once = _check(checker, COMPLETE, True, facts)
    repeated = _check(checker, (COMPLETE + "\n") * 100, True, facts)
    assert repeated == once
