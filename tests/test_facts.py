"""Request facts: legal process, periods, deadlines, the agent, case numbers, and
preservation past Twilio's 90 days. What is found, what is not, and where it came from."""

from __future__ import annotations

from datetime import date
from typing import get_args

import pytest

from classifiers.facts import LEGAL_PROCESSES, Fact, FactExtractor, FactKind, RequestFacts
from classifiers.quotes import quoted_spans

NOW = date(2026, 11, 2)  # a Monday
US = "rachel.ortega@fbi.gov"
UK = "tom.ashby@westyorkshire.police.uk"
AU = "jack.wren@police.vic.gov.au"
KINDS = set(get_args(FactKind))


@pytest.fixture(scope="module")
def extractor() -> FactExtractor:
    return FactExtractor()


def _extract(
    extractor: FactExtractor, text: str, sender: str = US, now: date = NOW
) -> RequestFacts:
    facts = extractor.extract(text, quoted_spans(text), sender, now=now)
    for fact in facts.facts:  # provenance and spans hold for every result
        assert fact.kind in KINDS
        assert fact.recognizer
        assert fact.pattern
        assert 0 < fact.confidence <= 1
        assert text[fact.start : fact.end] == fact.raw
        if fact.raw:
            assert 0 <= fact.start < fact.end <= len(text)
        else:  # only the envelope sender stands in for text
            assert (fact.kind, fact.recognizer, fact.start, fact.end) == (
                "agent_email",
                "envelope",
                0,
                0,
            )
    return facts


def _values(facts: RequestFacts, kind: FactKind) -> list[str]:
    return [f.value for f in facts.of(kind)]


def _one(facts: RequestFacts, kind: FactKind) -> Fact:
    found = facts.of(kind)
    assert len(found) == 1, facts.of(kind)
    return found[0]


# -- positives: (text, kind, value, sender) ------------------------------------------------

LEGAL_PROCESS = [
    pytest.param(
        "Pursuant to the attached federal grand jury subpoena, please produce basic "
        "subscriber information for the account @blue_harbor_77.",
        "subpoena",
        US,
        id="grand-jury-subpoena",
    ),
    pytest.param(
        "Enclosed is an order issued under 18 U.S.C. § 2703(d) by the U.S. District Court "
        "for the District of Massachusetts.",
        "2703d_order",
        US,
        id="2703d-citation",
    ),
    pytest.param(
        "Before the court is an application for an Order under 18 U.S.C. §§ 3122, 3123, "
        "2703(c) & (d) for records of the Target Account.",
        "2703d_order",
        US,
        id="2703-c-and-d",
    ),
    pytest.param(
        "We have obtained a D-Order for the account; a copy is attached.",
        "2703d_order",
        US,
        id="d-order",
    ),
    pytest.param(
        "Attached is a search warrant signed by the Hon. Teresa Quill, 201st District Court.",
        "search_warrant",
        US,
        id="search-warrant",
    ),
    pytest.param(
        "Please find the enclosed Search and Seizure Warrant (AO 93) for the account.",
        "search_warrant",
        US,
        id="search-and-seizure-warrant",
    ),
    pytest.param(
        "The signed warrant covers the accounts that published the posts listed below.",
        "search_warrant",
        US,
        id="the-warrant",
    ),
    pytest.param(
        "Please treat this letter as a formal request to preserve records under "
        "Title 18 U.S.C. 2703(f).",
        "preservation_2703f",
        US,
        id="2703f-citation",
    ),
    pytest.param(
        "PRESERVATION REQUEST\n\nPlease preserve all records for the account @ldn_example.",
        "preservation_2703f",
        UK,
        id="preservation-request-heading",
    ),
    pytest.param(
        "I have requested pursuant to Title 18 U S C 2703 f that you preserve the logs.",
        "preservation_2703f",
        US,
        id="2703f-ocr-spacing",
    ),
    pytest.param(
        "EMERGENCY DISCLOSURE REQUEST - 18 U.S.C. 2702(b)(8)\n\nThe account posted a threat.",
        "emergency_2702b8",
        US,
        id="emergency-heading",
    ),
    pytest.param(
        "We request the most recent login IP addresses under 18 U.S.C. 2702(c)(4).",
        "emergency_2702b8",
        US,
        id="2702c4",
    ),
    pytest.param(
        "This is an emergency request: we believe a person is at risk of serious harm.",
        "emergency_2702b8",
        AU,
        id="emergency-request",
    ),
    pytest.param(
        "This request is made under the Mutual Legal Assistance Treaty between the United "
        "States and the Republic of Korea; the MLAT request is attached.",
        "mlat",
        US,
        id="mlat",
    ),
    pytest.param(
        "The Department of Justice Office of International Affairs transmits the attached "
        "MLA request from the Federal Prosecutor of Belgium.",
        "mlat",
        US,
        id="mla-request",
    ),
    pytest.param(
        "A letter rogatory issued by the Tribunal judiciaire de Paris is attached.",
        "letter_rogatory",
        US,
        id="letter-rogatory",
    ),
    pytest.param(
        "Please find enclosed Letters Rogatory from the Superior Court of Justice.",
        "letter_rogatory",
        US,
        id="letters-rogatory",
    ),
    pytest.param(
        "The court has also issued a non-disclosure order; please do not notify the user.",
        "nondisclosure_2705b",
        US,
        id="non-disclosure-order",
    ),
    pytest.param(
        "Notice to the subscriber is precluded by an order under 18 U.S.C. § 2705(b).",
        "nondisclosure_2705b",
        US,
        id="2705b",
    ),
    pytest.param(
        "Please find attached a court order signed by Judge Amara Osei.",
        "court_order",
        US,
        id="court-order",
    ),
    pytest.param(
        "Enclosed is a production order made at Leeds Crown Court on 30 October 2026.",
        "court_order",
        UK,
        id="production-order",
    ),
    pytest.param(
        "IT IS HEREBY ORDERED that Example Platform shall disclose the records below.",
        "court_order",
        US,
        id="it-is-hereby-ordered",
    ),
]


@pytest.mark.parametrize(("text", "value", "sender"), LEGAL_PROCESS)
def test_legal_process(extractor: FactExtractor, text: str, value: str, sender: str) -> None:
    facts = _extract(extractor, text, sender)
    assert value in facts.legal_process
    assert set(facts.legal_process) <= set(LEGAL_PROCESSES)


def test_several_processes_co_occur(extractor: FactExtractor) -> None:
    text = (
        "Attached is an order under 18 U.S.C. § 2703(d) for records of @blue_harbor_77, "
        "together with a court order under 18 U.S.C. § 2705(b) commanding you not to "
        "notify any person of its existence for one year."
    )
    facts = _extract(extractor, text)
    # The generic "court order" names the 2705(b) order: it is not a third document.
    assert set(facts.legal_process) == {"2703d_order", "nondisclosure_2705b"}
    assert all(f.recognizer == "regex" for f in facts.of("legal_process"))


def test_one_fact_per_process_the_most_confident(extractor: FactExtractor) -> None:
    text = (
        "Attached is a search warrant for the account. The warrant also covers direct "
        "messages. Please contact me about the warrant."
    )
    fact = _one(_extract(extractor, text), "legal_process")
    assert (fact.value, fact.pattern, fact.raw) == (
        "search_warrant",
        "SEARCH_WARRANT",
        "search warrant",
    )


TIME_PERIODS = [
    pytest.param(
        "Please produce records for the period from January 1, 2026 through March 31, 2026.",
        "2026-01-01/2026-03-31",
        US,
        id="month-name-through",
    ),
    pytest.param(
        "Login IP history between 01/01/2026 and 03/31/2026.",
        "2026-01-01/2026-03-31",
        US,
        id="numeric-us-between",
    ),
    pytest.param(
        "Subscriber information, 2026-01-01 to 2026-03-31.",
        "2026-01-01/2026-03-31",
        US,
        id="iso-to",
    ),
    pytest.param(
        "Please preserve records for 1 January 2026 – 31 March 2026.",
        "2026-01-01/2026-03-31",
        UK,
        id="day-first-en-dash",
    ),
    pytest.param(
        "IP logs between 01/02/2026 and 28/02/2026 inclusive.",
        "2026-02-01/2026-02-28",
        UK,
        id="numeric-uk-day-first",
    ),
    pytest.param(
        "Records between 03/04/2026 and 05/06/2026.",
        "2026-04-03/2026-06-05",
        AU,
        id="numeric-au-day-first",
    ),
    pytest.param(
        "Records between 03/04/2026 and 05/06/2026.",
        "2026-03-04/2026-05-06",
        US,
        id="numeric-us-month-first",
    ),
    pytest.param(
        "Please provide login history from September 1, 2026 to present.",
        "2026-09-01/..",
        US,
        id="to-present",
    ),
    pytest.param(
        "Period: from 1 June 2026 to the date of this request.",
        "2026-06-01/..",
        UK,
        id="to-date-of-request",
    ),
    pytest.param(
        "All posts on the account since October 1, 2026.",
        "2026-10-01/..",
        US,
        id="since",
    ),
    pytest.param(
        "Please provide the login IP addresses for the past 90 days.",
        "2026-08-04/2026-11-02",
        US,
        id="past-90-days",
    ),
    pytest.param(
        "Direct messages exchanged in the last six (6) months.",
        "2026-05-02/2026-11-02",
        US,
        id="last-six-months",
    ),
    pytest.param(
        "Records for July 1 through October 31, 2026.",
        "2026-07-01/2026-10-31",
        US,
        id="year-less-start",
    ),
    pytest.param(
        "Connection logs from 2026-01-01T00:00:00Z to 2026-03-31T23:59:59Z.",
        "2026-01-01/2026-03-31",
        US,
        id="iso-timestamps",
    ),
    pytest.param(
        "Records from March 1, 2026 00:00 UTC through March 3, 2026 23:59 UTC.",
        "2026-03-01/2026-03-03",
        US,
        id="times-of-day",
    ),
    pytest.param(
        "Billing records from March 2026 to May 2026.",
        "2026-03-01/2026-05-31",
        US,
        id="month-year",
    ),
    pytest.param(
        "Subscriber changes from December 1, 2025 - February 28, 2026.",
        "2025-12-01/2026-02-28",
        US,
        id="hyphen",
    ),
    pytest.param(
        "All records from account creation to present.",
        "../..",
        US,
        id="creation-to-present",
    ),
]


@pytest.mark.parametrize(("text", "value", "sender"), TIME_PERIODS)
def test_time_period(extractor: FactExtractor, text: str, value: str, sender: str) -> None:
    assert _values(_extract(extractor, text, sender), "time_period") == [value]


DEADLINES = [
    pytest.param("Please respond by December 1, 2026.", "2026-12-01", id="respond-by"),
    pytest.param(
        "Records must be produced no later than 5:00 p.m. EST on November 30, 2026.",
        "2026-11-30",
        id="no-later-than-time-on",
    ),
    pytest.param("Return date: November 23, 2026.", "2026-11-23", id="return-date"),
    pytest.param(
        "Please produce responsive records within ten (10) days of service.",
        "2026-11-12",
        id="within-ten-days",
    ),
    pytest.param(
        "Please respond within 10 business days of receipt.",
        "2026-11-16",
        id="within-business-days",
    ),
    pytest.param(
        "Comply with this subpoena on or before 12/15/2026.", "2026-12-15", id="on-or-before"
    ),
    pytest.param(
        "Please provide the requested records by Friday, November 20, 2026.",
        "2026-11-20",
        id="provide-by",
    ),
    pytest.param("Deadline: 2026-11-30", "2026-11-30", id="deadline-iso"),
    pytest.param(
        "The subpoena requires production on or before the return date of December 3, 2026.",
        "2026-12-03",
        id="return-date-of",
    ),
    pytest.param(
        "Kindly confirm preservation within 5 days of receipt.", "2026-11-07", id="kindly-within"
    ),
    pytest.param(
        "Given the risk, please reply within 24 hours.", "2026-11-03", id="within-24-hours"
    ),
]


@pytest.mark.parametrize(("text", "value"), DEADLINES)
def test_deadline(extractor: FactExtractor, text: str, value: str) -> None:
    assert _values(_extract(extractor, text), "deadline") == [value]


CASE_NUMBERS = [
    pytest.param("Re: FBI Case No. 2026-CR-00412", "2026-CR-00412", id="case-no"),
    pytest.param("FBI Case 26-1187", "26-1187", id="case-bare"),
    pytest.param("Reference: ABC-123", "ABC-123", id="reference"),
    pytest.param(
        "Our ref: MPS/CCU/2026/08815 (Operation TALLOW)", "MPS/CCU/2026/08815", id="our-ref"
    ),
    pytest.param("NYPD Complaint 26-09871, 75th Precinct", "26-09871", id="complaint"),
    pytest.param("Re: Grand Jury Subpoena No. 26-GJ-3318", "26-GJ-3318", id="subpoena-no"),
    pytest.param("Cause No. D-1-DC-26-301145", "D-1-DC-26-301145", id="cause-no"),
    pytest.param("(AFP ref. CRM 2026/118442)", "CRM 2026/118442", id="prefixed-ref"),
    pytest.param("Case #: 2026-44817", "2026-44817", id="case-hash-colon"),
    pytest.param("Incident Number 26-004512", "26-004512", id="incident-number"),
    pytest.param("Docket No. 1:26-mj-00217", "1:26-MJ-00217", id="docket-colon"),
]


@pytest.mark.parametrize(("text", "value"), CASE_NUMBERS)
def test_case_number(extractor: FactExtractor, text: str, value: str) -> None:
    fact = _one(_extract(extractor, text), "case_number")
    assert fact.value == value
    assert fact.recognizer == "spacy_matcher"


# -- the agent, from signature blocks ---------------------------------------------------------

SIGNATURES = [
    pytest.param(
        "Sincerely,\n\nRachel Ortega\nSpecial Agent\n"
        "Federal Bureau of Investigation, Boston Division\n"
        "1 Center Plaza, Boston, MA 02108\nOffice: (617) 555-0142\nFax: (617) 555-0199\n"
        "rachel.ortega@fbi.gov\n",
        US,
        (
            "Rachel Ortega",
            "Special Agent",
            "Federal Bureau of Investigation, Boston Division",
            "+16175550142",
            "rachel.ortega@fbi.gov",
        ),
        id="fbi",
    ),
    pytest.param(
        "Yours faithfully,\n\nDC 5512 Tom Ashby\nEconomic Crime Unit\nWest Yorkshire Police\n"
        "Tel: 0113 496 0321\ntom.ashby@westyorkshire.police.uk\n",
        UK,
        (
            "Tom Ashby",
            "DC",
            "West Yorkshire Police",
            "+441134960321",
            "tom.ashby@westyorkshire.police.uk",
        ),
        id="uk-collar-number",
    ),
    pytest.param(
        "Respectfully,\n\nDet. Sgt. Maria L. Delacroix\nInvestigations Bureau\n"
        "Jefferson Parish Sheriff's Office\n(504) 555-0177\nMDelacroix@JPSO.example.gov\n",
        "mdelacroix@jpso.example.gov",
        (
            "Maria L. Delacroix",
            "Det. Sgt.",
            "Jefferson Parish Sheriff's Office",
            "+15045550177",
            "mdelacroix@jpso.example.gov",
        ),
        id="sheriff-rank-abbreviations",
    ),
    pytest.param(
        "-- \nCpl. Andre Mbeki\nTechnological Crime Unit, Royal Canadian Mounted Police\n"
        "613-555-0190 | andre.mbeki@rcmp-grc.gc.ca\n",
        "andre.mbeki@rcmp-grc.gc.ca",
        (
            "Andre Mbeki",
            "Cpl.",
            "Technological Crime Unit, Royal Canadian Mounted Police",
            "+16135550190",
            "andre.mbeki@rcmp-grc.gc.ca",
        ),
        id="dashes-and-bar",
    ),
    pytest.param(
        "Thanks,\nLaura Chen, Task Force Officer\nHSI Seattle\nCell: 206-555-0113\n",
        "laura.chen@hsi.dhs.gov",
        ("Laura Chen", "Task Force Officer", "HSI Seattle", "+12065550113", None),
        id="title-after-comma",
    ),
    pytest.param(
        "Kind regards,\n\nSenior Constable Jack Wren\nCybercrime Squad, Victoria Police\n"
        "Ph: +61 3 5550 1234\njack.wren@police.vic.gov.au\n",
        AU,
        (
            "Jack Wren",
            "Senior Constable",
            "Cybercrime Squad, Victoria Police",
            "+61355501234",
            "jack.wren@police.vic.gov.au",
        ),
        id="australia",
    ),
    pytest.param(
        "Regards,\n\nSupervisory Special Agent Grace Adebayo-Lindqvist\n"
        "Homeland Security Investigations, Cyber Crimes Center\n(703) 555-0186\n",
        "grace.adebayo-lindqvist@ice.dhs.gov",
        (
            "Grace Adebayo-Lindqvist",
            "Supervisory Special Agent",
            "Homeland Security Investigations, Cyber Crimes Center",
            "+17035550186",
            None,
        ),
        id="rank-on-name-line",
    ),
]


@pytest.mark.parametrize(("signature", "sender", "expected"), SIGNATURES)
def test_agent_from_signature(
    extractor: FactExtractor,
    signature: str,
    sender: str,
    expected: tuple[str, str, str, str, str | None],
) -> None:
    text = (
        "Please produce basic subscriber information for the account @blue_harbor_77.\n\n"
        + signature
    )
    facts = _extract(extractor, text, sender)
    name, title, agency, phone, email = expected
    assert (facts.agent_name, facts.agent_title, facts.agency, facts.agent_phone) == (
        name,
        title,
        agency,
        phone,
    )
    assert facts.agent_email == (email or sender)
    assert all(len(facts.of(kind)) == 1 for kind in ("agent_name", "agency", "agent_email"))
    assert facts.of("agent_name")[0].recognizer == "signature"


def test_agent_email_falls_back_to_the_sender(extractor: FactExtractor) -> None:
    text = "Please preserve the account @blue_harbor_77.\n\nThanks,\nLaura Chen\nHSI Seattle\n"
    fact = _one(_extract(extractor, text, "Laura.Chen@hsi.dhs.gov"), "agent_email")
    assert (fact.value, fact.raw, fact.recognizer) == ("laura.chen@hsi.dhs.gov", "", "envelope")


def test_agent_email_prefers_the_senders_own_address(extractor: FactExtractor) -> None:
    text = (
        "Please reply to both of us.\n\nRegards,\n\nJonathan Marsh\nSpecial Agent, FBI Newark\n"
        "newark.cyber@fbi.gov\njmarsh@fbi.gov\n"
    )
    assert _extract(extractor, text, "jmarsh@fbi.gov").agent_email == "jmarsh@fbi.gov"


def test_agency_falls_back_to_the_letterhead(extractor: FactExtractor) -> None:
    text = (
        "U.S. Department of Justice\nFederal Bureau of Investigation\nWashington Field Office\n\n"
        "Dear Custodian of Records,\n\nPlease produce subscriber information for "
        "@blue_harbor_77.\n\nSincerely,\n\nRachel Ortega\nSpecial Agent\n"
    )
    fact = _one(_extract(extractor, text), "agency")
    assert (fact.value, fact.recognizer) == ("Federal Bureau of Investigation", "letterhead")


def test_signature_without_closing_is_the_last_paragraph(extractor: FactExtractor) -> None:
    text = (
        "Please disclose the login IP addresses for @blue_harbor_77.\n\n"
        "Agent K. Lawson\nFederal Bureau of Investigation\n"
    )
    facts = _extract(extractor, text)
    assert (facts.agent_name, facts.agent_title) == ("K. Lawson", "Agent")
    assert facts.of("agent_name")[0].pattern.startswith("LAST_PARAGRAPH")


# -- preservation past the 90 days Twilio keeps records --------------------------------------

OVER_LIMIT = [
    pytest.param(
        "Pursuant to 18 U.S.C. 2703(f), please preserve all records for the account "
        "@blue_harbor_77 for 180 days.",
        180,
        "FOR_DURATION",
        id="for-180-days",
    ),
    pytest.param(
        "PRESERVATION REQUEST - 18 U.S.C. 2703(f)\n\nPlease retain the records for a "
        "period of one year.",
        365,
        "FOR_DURATION",
        id="for-one-year",
    ),
    pytest.param(
        "Please extend the preservation of the account's records for an additional "
        "one hundred and eighty (180) days.",
        180,
        "FOR_DURATION",
        id="extension",
    ),
    pytest.param(
        "Please preserve, under 18 U.S.C. 2703(f), records for six (6) months.",
        181,
        "FOR_DURATION",
        id="six-months",
    ),
    pytest.param(
        "This is a request to preserve the account's records from January 1, 2026 through "
        "June 30, 2026 under 18 U.S.C. 2703(f).",
        181,
        "PERIOD_SPAN:RANGE",
        id="period-span",
    ),
    pytest.param(
        "Preservation request: please preserve all content for the past 120 days.",
        120,
        "PERIOD_SPAN:RELATIVE_PAST",
        id="relative-period",
    ),
]


@pytest.mark.parametrize(("text", "days", "pattern"), OVER_LIMIT)
def test_preservation_over_limit(
    extractor: FactExtractor, text: str, days: int, pattern: str
) -> None:
    facts = _extract(extractor, text)
    assert facts.is_preservation
    fact = _one(facts, "preservation_days_over_limit")
    assert (fact.value, fact.pattern) == (str(days), pattern)
    assert facts.preservation_days_over_limit == days


# -- negatives: (text, kind, sender) --------------------------------------------------------

NEGATIVES = [
    pytest.param(
        "Thank you for the records.\n\nOn Mon, Nov 2, 2026 at 9:30 AM Rachel Ortega wrote:\n"
        "> Attached is a grand jury subpoena for @blue_harbor_77.\n",
        "legal_process",
        US,
        id="subpoena-in-quoted-reply",
    ),
    pytest.param(
        "We searched open sources and found the account; please search your records for "
        "any linked accounts.",
        "legal_process",
        US,
        id="search-is-not-a-warrant",
    ),
    pytest.param(
        "We are preparing the paperwork now. A court order will follow within the week.",
        "legal_process",
        US,
        id="court-order-will-follow",
    ),
    pytest.param(
        "This is a routine, non-emergency request for information.",
        "legal_process",
        US,
        id="non-emergency",
    ),
    pytest.param(
        "This is not an emergency request; routine handling is fine.",
        "legal_process",
        US,
        id="not-an-emergency-request",
    ),
    pytest.param(
        "An arrest warrant was issued on October 2, 2026; the warrant is held by the Marshals.",
        "legal_process",
        US,
        id="arrest-warrant",
    ),
    pytest.param(
        "Do you accept California search warrants served by email under Cal. Penal Code "
        "1524.2, or only through your portal?",
        "legal_process",
        US,
        id="question-about-process",
    ),
    pytest.param(
        "Please do not disclose this request to the account holder.",
        "legal_process",
        US,
        id="do-not-disclose-is-no-2705b-order",
    ),
    pytest.param(
        "We anticipate submitting the MLA request through the Central Authority shortly.",
        "legal_process",
        UK,
        id="anticipated-mla",
    ),
    pytest.param(
        "Metropolitan Police Service\nNew Scotland Yard\n3 November 2026\n\n"
        "Dear Sir or Madam,\n\nPlease provide subscriber details for @ldn_example.\n",
        "time_period",
        UK,
        id="letterhead-date",
    ),
    pytest.param(
        "Date: November 2, 2026\nTo: Legal Process Team\n\nPlease provide subscriber details "
        "for @blue_harbor_77.\n",
        "time_period",
        US,
        id="date-line",
    ),
    pytest.param(
        "The post was made on October 19, 2026 and deleted on October 20, 2026.",
        "time_period",
        US,
        id="event-dates",
    ),
    pytest.param(
        "Thanks.\n\n> For the period from January 1, 2026 through March 31, 2026, please "
        "produce\n> subscriber information.\n",
        "time_period",
        US,
        id="quoted-period",
    ),
    pytest.param(
        "Ticket: 10-11 for room 3-4 on floor 2.",
        "time_period",
        US,
        id="number-ranges",
    ),
    pytest.param(
        "We anticipate submitting the MLA request within 90 days.",
        "deadline",
        UK,
        id="within-not-about-responding",
    ),
    pytest.param(
        "The account was created by March 1, 2026 according to its profile.",
        "deadline",
        US,
        id="by-not-about-responding",
    ),
    pytest.param(
        "Please respond by email to the address below.",
        "deadline",
        US,
        id="respond-by-email",
    ),
    pytest.param(
        "Thanks.\n\n> Return date: November 23, 2026.\n",
        "deadline",
        US,
        id="quoted-return-date",
    ),
    pytest.param(
        "Reference: https://www.law.cornell.edu/uscode/text/18/2703",
        "case_number",
        US,
        id="law-url",
    ),
    pytest.param(
        "Reference: www.legislation.gov.uk/ukpga/2016/25/section/87",
        "case_number",
        UK,
        id="law-host-without-scheme",
    ),
    pytest.param(
        "Reference: 18 U.S.C. § 2703(d)",
        "case_number",
        US,
        id="statute",
    ),
    pytest.param(
        "Your ref: TW-LE-2026-0099. Thank you for your earlier reply.",
        "case_number",
        US,
        id="your-ref",
    ),
    pytest.param(
        "In case 2026 brings more reports, contact me.",
        "case_number",
        US,
        id="in-case-year",
    ),
    pytest.param(
        "Case No.\n(UNDER SEAL)",
        "case_number",
        US,
        id="case-no-without-number",
    ),
    pytest.param(
        "Thanks for the update.\n\nOn Tue, Nov 3, 2026 at 8:00 AM Hannah Okonjo wrote:\n"
        "> Regards,\n>\n> DC 4471 Hannah Okonjo\n> Metropolitan Police Service\n",
        "agent_name",
        UK,
        id="quoted-signature",
    ),
    pytest.param(
        "Thanks for the update.\n\nOn Tue, Nov 3, 2026 at 8:00 AM Okonjo, Hannah (MPS) <\n"
        "hannah.okonjo@met.police.uk> wrote:\n> Yours faithfully,\n",
        "agent_email",
        "",
        id="wrapped-attribution-address",
    ),
    pytest.param(
        "Sgt. Jose Ybarra is the affiant and may be contacted for questions.\n\nThe records "
        "should be sent to the address on file.",
        "agent_name",
        US,
        id="name-in-body",
    ),
    pytest.param(
        "Please reply to this address.\n\nRegards,\n\nCyber Crime Unit\nMetropolitan Police "
        "Service\n",
        "agent_name",
        UK,
        id="unit-is-not-a-name",
    ),
    pytest.param(
        "Please fax the records.\n\nRegards,\n\nTom Ashby\nFax: 0113 496 0999\n",
        "agent_phone",
        UK,
        id="fax-is-not-the-phone",
    ),
    pytest.param(
        "Pursuant to 18 U.S.C. 2703(f) please preserve the records for 90 days.",
        "preservation_days_over_limit",
        US,
        id="ninety-days-is-the-limit",
    ),
    pytest.param(
        "Please produce the records from January 1, 2026 through June 30, 2026 pursuant to "
        "the attached subpoena.",
        "preservation_days_over_limit",
        US,
        id="long-period-but-no-preservation",
    ),
    pytest.param(
        "Under 18 U.S.C. 2703(f), please preserve the records; we may ask for a single "
        "90-day extension.",
        "preservation_days_over_limit",
        US,
        id="ninety-day-extension",
    ),
]


@pytest.mark.parametrize(("text", "kind", "sender"), NEGATIVES)
def test_negative(extractor: FactExtractor, text: str, kind: FactKind, sender: str) -> None:
    assert _extract(extractor, text, sender).of(kind) == ()


def test_letterhead_date_is_not_a_period_but_the_request_is(extractor: FactExtractor) -> None:
    text = (
        "Federal Bureau of Investigation\nNovember 2, 2026\n\nDear Custodian of Records,\n\n"
        "Please provide the login IP addresses for @blue_harbor_77 for the past 30 days.\n"
    )
    fact = _one(_extract(extractor, text), "time_period")
    assert (fact.value, fact.raw) == ("2026-10-03/2026-11-02", "past 30 days")


def test_relative_facts_follow_now(extractor: FactExtractor) -> None:
    text = "Please respond within 7 days with login IPs for the past 2 weeks."
    facts = _extract(extractor, text, now=date(2027, 1, 28))
    assert facts.deadline == "2027-02-04"
    assert facts.time_periods == ("2027-01-14/2027-01-28",)


# -- whole letters ---------------------------------------------------------------------------

SUBPOENA_LETTER = """\
U.S. Department of Justice
Federal Bureau of Investigation
Boston Division

November 2, 2026

Example Platform, Inc.
Attn: Custodian of Records

Re: Grand Jury Subpoena No. 26-GJ-3318
    FBI Case No. 2026-CR-00412

Dear Custodian of Records:

The attached federal grand jury subpoena commands production of basic
subscriber information for the account @blue_harbor_77 (User ID 783214)
for the period from January 1, 2026 through March 31, 2026, as described
in 18 U.S.C. 2703(c)(2). The investigation concerns suspected wire fraud.

The court has also issued an order under 18 U.S.C. 2705(b); please do
not notify the account holder.

Return date: November 23, 2026. If you have questions, please see
https://www.law.cornell.edu/uscode/text/18/2705 or call me.

Sincerely,

Rachel Ortega
Special Agent
Federal Bureau of Investigation, Boston Division
Office: (617) 555-0142
rachel.ortega@fbi.gov
"""


def test_subpoena_letter(extractor: FactExtractor) -> None:
    facts = _extract(extractor, SUBPOENA_LETTER)
    assert facts.legal_process == ("subpoena", "nondisclosure_2705b")
    assert facts.case_numbers == ("26-GJ-3318", "2026-CR-00412")
    assert facts.time_periods == ("2026-01-01/2026-03-31",)
    assert facts.deadline == "2026-11-23"
    assert facts.agent_name == "Rachel Ortega"
    assert facts.agent_title == "Special Agent"
    assert facts.agency == "Federal Bureau of Investigation, Boston Division"
    assert facts.agent_phone == "+16175550142"
    assert facts.agent_email == "rachel.ortega@fbi.gov"
    assert facts.preservation_days_over_limit is None
    assert not facts.is_emergency


PRESERVATION_LETTER = """\
OFFICIAL-SENSITIVE

West Yorkshire Police
Economic Crime Unit

Our ref: WYP/ECU/2026/04417

Dear Sir or Madam,

PRESERVATION REQUEST - 18 U.S.C. 2703(f)

We request that you preserve all records, including content, for the
account @leeds_example_01 for the period 01/03/2026 to 31/10/2026, for
180 days, pending a formal Mutual Legal Assistance request via the UK
Central Authority.

Please confirm preservation no later than 09/11/2026.

Yours faithfully,

DC 5512 Tom Ashby
Economic Crime Unit
West Yorkshire Police
Tel: 0113 496 0321
tom.ashby@westyorkshire.police.uk
"""


def test_preservation_letter(extractor: FactExtractor) -> None:
    facts = _extract(extractor, PRESERVATION_LETTER, UK)
    # The MLA request is only anticipated: the letter itself is a preservation request.
    assert facts.legal_process == ("preservation_2703f",)
    assert facts.case_numbers == ("WYP/ECU/2026/04417",)
    assert facts.time_periods == ("2026-03-01/2026-10-31",)
    assert facts.deadline == "2026-11-09"
    assert facts.preservation_days_over_limit == 180
    assert (facts.agent_name, facts.agent_title, facts.agency) == (
        "Tom Ashby",
        "DC",
        "West Yorkshire Police",
    )
    assert facts.agent_phone == "+441134960321"


EMERGENCY_REPLY = """\
Update: the account also uses a second phone. Please include it.

Thanks,
Nora Castellanos
SSA, FBI WFO
(703) 555-0122

-----Original Message-----
From: Castellanos, Nora (WF) (FBI) <nora.castellanos@fbi.gov>
Sent: Monday, November 2, 2026 2:47 AM
Subject: Emergency Disclosure Request -- FBI Case 26-1187

EMERGENCY DISCLOSURE REQUEST - 18 U.S.C. 2702(b)(8)

Information requested for the period from October 27, 2026 to present.
Return date: November 3, 2026.
"""


def test_quoted_original_is_ignored(extractor: FactExtractor) -> None:
    facts = _extract(extractor, EMERGENCY_REPLY, "nora.castellanos@fbi.gov")
    assert facts.legal_process == ()
    assert facts.time_periods == ()
    assert facts.deadline is None
    assert facts.case_numbers == ()
    assert (facts.agent_name, facts.agent_title, facts.agency) == (
        "Nora Castellanos",
        "SSA",
        "FBI WFO",
    )
    # The address in the quoted headers is not used; the envelope sender is.
    assert _one(facts, "agent_email").recognizer == "envelope"


def test_nothing_about_the_account_holder_is_recorded(extractor: FactExtractor) -> None:
    facts = _extract(extractor, SUBPOENA_LETTER)
    assert {f.kind for f in facts.facts} <= KINDS
    assert not any("fraud" in f.raw.lower() or "fraud" in f.value for f in facts.facts)
    assert not any("blue_harbor" in f.raw for f in facts.facts)


def test_empty_text(extractor: FactExtractor) -> None:
    facts = _extract(extractor, "", "")
    assert facts == RequestFacts(())
    assert (facts.deadline, facts.agent_name, facts.preservation_days_over_limit) == (
        None,
        None,
        None,
    )
