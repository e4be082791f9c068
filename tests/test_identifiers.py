"""Account identifiers in request text: what is found, what is not, and whose it is."""

from __future__ import annotations

import pytest

from classifiers.identifiers import IdentifierExtractor, IdentifierStage
from classifiers.quotes import quoted_spans
from config.settings import load_settings
from core.findings import Identifier

SENDER = "jsmith@fbi.gov"
SENDER_DOMAIN = "fbi.gov"


@pytest.fixture(scope="module")
def extractor() -> IdentifierExtractor:
    return IdentifierStage.from_settings(load_settings(environ={})).extractor


def _extract(
    extractor: IdentifierExtractor,
    text: str,
    sender: str = SENDER,
    domain: str = SENDER_DOMAIN,
) -> list[Identifier]:
    found = extractor.extract(text, quoted_spans(text), sender, domain)
    for ident in found:  # provenance holds for every result
        assert ident.recognizer
        assert ident.pattern
        assert 0 <= ident.start < ident.end <= len(text)
        assert text[ident.start : ident.end] == ident.raw
    return found


def _pairs(found: list[Identifier], kind: str) -> list[str]:
    return [i.value for i in found if i.kind == kind]


def _one(found: list[Identifier], kind: str, value: str) -> Identifier:
    matches = [i for i in found if i.kind == kind and i.value == value]
    assert len(matches) == 1, found
    return matches[0]


# -- positives: (text, kind, value, raw, pattern) ---------------------------------

POSITIVES = [
    # usernames
    ("Please preserve the account @bad_guy1.", "username", "bad_guy1", "@bad_guy1", "HANDLE"),
    ("Handle (@Bad_Guy) posted threats", "username", "bad_guy", "@Bad_Guy", "HANDLE"),
    (
        "Profile https://twitter.com/Bad_Guy please",
        "username",
        "bad_guy",
        "https://twitter.com/Bad_Guy",
        "PROFILE_URL",
    ),
    (
        "Profile https://x.com/other_one.",
        "username",
        "other_one",
        "https://x.com/other_one",
        "PROFILE_URL",
    ),
    (
        "Mobile link https://mobile.twitter.com/third3 today",
        "username",
        "third3",
        "https://mobile.twitter.com/third3",
        "PROFILE_URL",
    ),
    (
        "See https://twitter.com/handle_c?lang=en",
        "username",
        "handle_c",
        "https://twitter.com/handle_c?lang=en",
        "PROFILE_URL",
    ),
    (
        "Without scheme twitter.com/nohttp too",
        "username",
        "nohttp",
        "twitter.com/nohttp",
        "PROFILE_URL",
    ),
    ("username: foo_bar", "username", "foo_bar", "foo_bar", "USERNAME_CUE"),
    ("Username: Foo", "username", "foo", "Foo", "USERNAME_CUE"),
    ("the screen name foo_bar is used", "username", "foo_bar", "foo_bar", "USERNAME_CUE"),
    ('Screen name "Bad_Guy"', "username", "bad_guy", "Bad_Guy", "USERNAME_CUE"),
    ("Please preserve the account foo_1.", "username", "foo_1", "foo_1", "USERNAME_CUE"),
    ("handle: jdoe", "username", "jdoe", "jdoe", "USERNAME_CUE"),
    # user ids
    ("User ID: 123", "user_id", "123", "123", "USER_ID_CUE"),
    ("account ID 1234567890", "user_id", "1234567890", "1234567890", "USER_ID_CUE"),
    ("User ID 0012345", "user_id", "12345", "0012345", "USER_ID_CUE"),
    ("account #: 123456", "user_id", "123456", "123456", "USER_ID_CUE"),
    ("Account ID:\n123456", "user_id", "123456", "123456", "USER_ID_CUE"),
    # status ids
    (
        "Tweet ID 1849123456789012345",
        "status_id",
        "1849123456789012345",
        "1849123456789012345",
        "STATUS_ID_CUE",
    ),
    (
        "status ID #1849123456789012345",
        "status_id",
        "1849123456789012345",
        "1849123456789012345",
        "STATUS_ID_CUE",
    ),
    (
        "Post https://twitter.com/someone/status/1849123456789012345 now",
        "status_id",
        "1849123456789012345",
        "https://twitter.com/someone/status/1849123456789012345",
        "STATUS_URL",
    ),
    # phones (US default region)
    (
        "Subject phone (202) 555-0199.",
        "phone",
        "+12025550199",
        "(202) 555-0199",
        "PhoneNumberMatcher:US",
    ),
    (
        "Subject phone 202-555-0143",
        "phone",
        "+12025550143",
        "202-555-0143",
        "PhoneNumberMatcher:US",
    ),
    (
        "Subject phone 202.555.0188",
        "phone",
        "+12025550188",
        "202.555.0188",
        "PhoneNumberMatcher:US",
    ),
    (
        "Subject phone +1 202 555 0172",
        "phone",
        "+12025550172",
        "+1 202 555 0172",
        "PhoneNumberMatcher:US",
    ),
    (
        "His number is (212) 456-7890.",
        "phone",
        "+12124567890",
        "(212) 456-7890",
        "PhoneNumberMatcher:US",
    ),
    ("Phone +61 2 9876 5432", "phone", "+61298765432", "+61 2 9876 5432", "PhoneNumberMatcher:US"),
    (
        "Call +44 20 7946 0958 today",
        "phone",
        "+442079460958",
        "+44 20 7946 0958",
        "PhoneNumberMatcher:US",
    ),
    # emails
    (
        "Target email JOHN.Doe@Example.COM.",
        "email",
        "john.doe@example.com",
        "JOHN.Doe@Example.COM",
        "EMAIL",
    ),
    ("target bad@yahoo.com, thanks", "email", "bad@yahoo.com", "bad@yahoo.com", "EMAIL"),
    # sids
    (
        "SID AC0123456789abcdef0123456789abcdef",
        "sid",
        "AC0123456789abcdef0123456789abcdef",
        "AC0123456789abcdef0123456789abcdef",
        "SID",
    ),
    (
        "Number SID PN0123456789ABCDEF0123456789ABCDEF",
        "sid",
        "PN0123456789abcdef0123456789abcdef",
        "PN0123456789ABCDEF0123456789ABCDEF",
        "SID",
    ),
    # ips
    ("Login from 192.168.1.20 at noon", "ip", "192.168.1.20", "192.168.1.20", "IPV4"),
    ("Login from 203.0.113.5, then", "ip", "203.0.113.5", "203.0.113.5", "IPV4"),
    ("Login from 2001:db8::1 at noon", "ip", "2001:db8::1", "2001:db8::1", "IPV6"),
    (
        "Login from 2001:0db8:0000:0000:0000:ff00:0042:8329",
        "ip",
        "2001:db8::ff00:42:8329",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "IPV6",
    ),
    # other urls: only content the platform hosts for an account can be looked up
    (
        "The scam page is served from https://sweepstakes-4417.twil.io/claim.",
        "url",
        "https://sweepstakes-4417.twil.io/claim",
        "https://sweepstakes-4417.twil.io/claim",
        "URL",
    ),
]


@pytest.mark.parametrize(("text", "kind", "value", "raw", "pattern"), POSITIVES)
def test_positive(
    extractor: IdentifierExtractor, text: str, kind: str, value: str, raw: str, pattern: str
) -> None:
    found = _extract(extractor, text)
    ident = _one(found, kind, value)
    assert ident.raw == raw
    assert ident.pattern == pattern
    assert ident.role == "subject"
    assert 0 < ident.confidence <= 1


def test_status_url_also_names_its_account(extractor: IdentifierExtractor) -> None:
    found = _extract(extractor, "https://twitter.com/Someone/status/1849123456789012345")
    assert _pairs(found, "username") == ["someone"]
    assert _pairs(found, "status_id") == ["1849123456789012345"]
    assert {i.recognizer for i in found} == {"platform_url"}


def test_i_web_status_url_names_the_status(extractor: IdentifierExtractor) -> None:
    found = _extract(extractor, "See https://x.com/i/web/status/1849000000000000001")
    assert _pairs(found, "status_id") == ["1849000000000000001"]


def test_user_id_list(extractor: IdentifierExtractor) -> None:
    found = _extract(extractor, "User IDs: 1, 2 and 3")
    assert _pairs(found, "user_id") == ["1", "2", "3"]


def test_tweet_id_list(extractor: IdentifierExtractor) -> None:
    found = _extract(extractor, "Tweet IDs 1849123456789012345 and 1849123456789012346")
    assert _pairs(found, "status_id") == ["1849123456789012345", "1849123456789012346"]


def test_list_ends_at_its_line(extractor: IdentifierExtractor) -> None:
    found = _extract(extractor, "User IDs: 1, 2 and 3\n4567 is the case number")
    assert _pairs(found, "user_id") == ["1", "2", "3"]
    found = _extract(extractor, "User ID: 123\n456")
    assert _pairs(found, "user_id") == ["123"]


def test_blank_line_between_cue_and_number_breaks_it(extractor: IdentifierExtractor) -> None:
    assert _pairs(_extract(extractor, "User ID:\n\n123456"), "user_id") == []


def test_uk_national_number_with_uk_sender_is_plus_44(extractor: IdentifierExtractor) -> None:
    text = "Subject phone 020 7946 0958"
    found = _extract(extractor, text, "dc.jones@met.police.uk", "met.police.uk")
    ident = _one(found, "phone", "+442079460958")
    assert ident.pattern == "PhoneNumberMatcher:GB"
    assert ident.raw == "020 7946 0958"
    # the same digits from a US sender are not a UK number
    assert _pairs(_extract(extractor, text), "phone") == []


def test_region_for_sender_domain(extractor: IdentifierExtractor) -> None:
    assert extractor.region_for("met.police.uk") == "GB"
    assert extractor.region_for("rcmp-grc.gc.ca") == "CA"
    assert extractor.region_for("afp.gov.au") == "AU"
    assert extractor.region_for("fbi.gov") == "US"
    assert extractor.region_for("") == "US"


# -- negatives: (text, kind) ------------------------------------------------------

NEGATIVES = [
    ("The tweet 123 was deleted.", "status_id"),  # too short for a post ID
    ("Status 404 was returned by the server.", "status_id"),
    ("See the attached report.pdf for details.", "url"),  # a file name
    ("Under 18 U.S.C. 2703(d), e.g. records.", "url"),
    ("Version 2.0.1 of the app.", "url"),
    ("https://twitter.com/home", "username"),
    ("https://x.com/search?q=threat", "username"),
    ("https://x.com/i/flow/login", "username"),
    ("https://twitter.com/intent/tweet?text=hi", "username"),
    ("https://x.com/explore and https://twitter.com/settings/account", "username"),
    ("handle @abcdefghijklmnop is too long", "username"),
    ("the account jsmith", "username"),  # a plain lower-case word needs a colon
    ("Screen name is foo", "username"),
    ("ID: 123", "user_id"),
    ("Account 12345", "user_id"),
    ("SID AC0123456789abcdef0123456789abcde", "sid"),  # 31 hex digits
    ("SID ZZ0123456789abcdef0123456789abcdef", "sid"),  # wrong prefix
    ("SID AC0123456789abcdef0123456789abcdeg", "sid"),  # not hex
    ("Login from 999.1.1.1", "ip"),
    ("Login from 256.256.256.256", "ip"),
    ("At 10:30:45 with MAC aa:bb:cc:dd:ee:ff", "ip"),
    ("phone: 555-0199", "phone"),
    ("user@localhost", "email"),
]


@pytest.mark.parametrize(("text", "kind"), NEGATIVES)
def test_negative(extractor: IdentifierExtractor, text: str, kind: str) -> None:
    assert _pairs(_extract(extractor, text), kind) == []


@pytest.mark.parametrize(
    "url",
    [
        "https://twitter.com/home",
        "https://x.com/search?q=threat",
        "https://x.com/i/flow/login",
        "https://twitter.com/intent/tweet?text=hi",
    ],
)
def test_platform_non_account_paths_yield_nothing(extractor: IdentifierExtractor, url: str) -> None:
    assert _extract(extractor, f"See {url} for details") == []


def test_email_domain_is_not_a_handle(extractor: IdentifierExtractor) -> None:
    found = _extract(extractor, "Write to john@example.com or a@b.co today")
    assert _pairs(found, "username") == []
    assert _pairs(found, "email") == ["john@example.com", "a@b.co"]


def test_sixteen_char_handle_is_not_cut_to_fifteen(extractor: IdentifierExtractor) -> None:
    found = _extract(extractor, "see @abcdefghijklmnop and @abcdefghijklmno")
    assert _pairs(found, "username") == ["abcdefghijklmno"]


# -- roles ------------------------------------------------------------------------


def _role(found: list[Identifier], kind: str, value: str) -> str:
    return _one(found, kind, value).role


def test_signature_after_closing_is_requester(extractor: IdentifierExtractor) -> None:
    text = (
        "Please preserve @target_1 and phone (310) 555-0123.\n\n"
        "Sincerely,\n"
        "SA John Smith\n"
        "Federal Bureau of Investigation\n"
        "(202) 555-0199\n"
        "john.personal@gmail.com\n"
    )
    found = _extract(extractor, text)
    assert _role(found, "username", "target_1") == "subject"
    assert _role(found, "phone", "+13105550123") == "subject"
    assert _role(found, "phone", "+12025550199") == "requester"
    assert _role(found, "email", "john.personal@gmail.com") == "requester"


def test_signature_after_dashes_is_requester(extractor: IdentifierExtractor) -> None:
    text = "Please preserve @target_1.\n\n-- \nJohn Smith\n(202) 555-0198\nsmith@protonmail.com\n"
    found = _extract(extractor, text)
    assert _role(found, "username", "target_1") == "subject"
    assert _role(found, "phone", "+12025550198") == "requester"
    assert _role(found, "email", "smith@protonmail.com") == "requester"


def test_letterhead_before_salutation_is_requester(extractor: IdentifierExtractor) -> None:
    text = (
        "Federal Bureau of Investigation\nWashington Field Office\n(202) 555-0100\n\n"
        "Dear Custodian of Records,\nPlease preserve @target_2.\n"
    )
    found = _extract(extractor, text)
    assert _role(found, "phone", "+12025550100") == "requester"
    assert _role(found, "username", "target_2") == "subject"


def test_sender_own_address_is_requester(extractor: IdentifierExtractor) -> None:
    text = "Replies to J.Smith@County-Sheriff.US please; target is bad@yahoo.com.\n"
    found = _extract(extractor, text, "j.smith@county-sheriff.us", "county-sheriff.us")
    assert _role(found, "email", "j.smith@county-sheriff.us") == "requester"
    assert _role(found, "email", "bad@yahoo.com") == "subject"


def test_any_address_at_an_le_domain_is_requester(extractor: IdentifierExtractor) -> None:
    text = "Preserve victim@gmail.com. My colleague is other.agent@ic3.gov; cc det@nypd.org.\n"
    found = _extract(extractor, text)
    assert _role(found, "email", "victim@gmail.com") == "subject"
    assert _role(found, "email", "other.agent@ic3.gov") == "requester"
    assert _role(found, "email", "det@nypd.org") == "requester"


def test_contact_me_at_phone_is_requester(extractor: IdentifierExtractor) -> None:
    text = (
        "Please preserve @target_1. You can contact me at (202) 555-0199 with questions.\n"
        "The subject uses (310) 555-0123.\n"
    )
    found = _extract(extractor, text)
    assert _role(found, "phone", "+12025550199") == "requester"
    assert _role(found, "phone", "+13105550123") == "subject"
    assert _role(found, "username", "target_1") == "subject"


def test_quoted_text_is_other(extractor: IdentifierExtractor) -> None:
    text = (
        "New request for @new_target.\n\n"
        "On Mon, Jan 1, 2024 at 10:00 AM Platform <lawenforcement@example-platform.com> wrote:\n"
        "> We need more information about @old_target and 202-555-0111.\n"
    )
    found = _extract(extractor, text)
    assert _role(found, "username", "new_target") == "subject"
    assert _role(found, "username", "old_target") == "other"
    assert _role(found, "phone", "+12025550111") == "other"


def test_greater_than_quote_is_other(extractor: IdentifierExtractor) -> None:
    text = "Target: @target\n> quoted @quoted_handle\nmore text\n"
    found = _extract(extractor, text)
    assert _role(found, "username", "target") == "subject"
    assert _role(found, "username", "quoted_handle") == "other"


def test_forwarded_message_is_not_quoted(extractor: IdentifierExtractor) -> None:
    text = (
        "Please see below.\n\n"
        "---------- Forwarded message ---------\n"
        "From: Victim <victim@example.com>\n"
        "Date: Mon, Jan 1, 2024\n"
        "Subject: threat\n\n"
        "The account @threat_acct is threatening me.\n"
    )
    found = _extract(extractor, text)
    assert _role(found, "username", "threat_acct") == "subject"


def test_platform_own_domain_is_other(extractor: IdentifierExtractor) -> None:
    text = (
        "Please reply to lawenforcement@example-platform.com; see "
        "https://help.example-platform.com/guidelines and https://example-platform.com/le\n"
    )
    found = _extract(extractor, text)
    assert {(i.kind, i.role) for i in found} == {("email", "other"), ("url", "other")}
    assert len(found) == 3


@pytest.mark.parametrize(
    "url",
    [
        "https://www.law.cornell.edu/uscode/text/18/2702",
        "https://uscode.house.gov/view.xhtml?req=2702",
        "https://www.justice.gov/criminal",
        "https://www.fbi.gov/investigate",
    ],
)
def test_law_citation_and_agency_urls_are_other(extractor: IdentifierExtractor, url: str) -> None:
    found = _extract(extractor, f"Pursuant to 18 U.S.C. 2702(b)(8), see {url} and @target_1.")
    assert _role(found, "url", url) == "other"
    assert _role(found, "username", "target_1") == "subject"


def test_same_identifier_keeps_strongest_role(extractor: IdentifierExtractor) -> None:
    text = "Target @dup_handle.\n> earlier mention of @dup_handle\n"
    found = _extract(extractor, text)
    dup = _one(found, "username", "dup_handle")
    assert dup.role == "subject"
    assert dup.start == text.index("@dup_handle")


def test_results_are_in_text_order(extractor: IdentifierExtractor) -> None:
    text = "IP 10.0.0.1, user @zed, email a@b.com, User ID: 42"
    found = _extract(extractor, text)
    assert [i.kind for i in found] == ["ip", "username", "email", "user_id"]
    assert [i.start for i in found] == sorted(i.start for i in found)


def test_thank_you_sentence_in_body_is_not_a_signature(extractor: IdentifierExtractor) -> None:
    text = "Thank you for preserving @target_1.\nThe subject's phone is (310) 555-0123.\n"
    found = _extract(extractor, text)
    assert _role(found, "username", "target_1") == "subject"
    assert _role(found, "phone", "+13105550123") == "subject"


def test_other_urls_are_context_unless_the_request_is_about_them(
    extractor: IdentifierExtractor,
) -> None:
    text = "See the news story at https://news.example.com/story for background on @target_1.\n"
    assert _role(_extract(extractor, text), "url", "https://news.example.com/story") == "other"


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (
            "User IDs:\n - 1598877665544332211\n - 1602233114455667788\n",
            "user_id",
            "1602233114455667788",
        ),
        ("@bluegrass_bets (ID: 1388776655443322110)\n", "user_id", "1388776655443322110"),
        ("The tweet\n1849000000000000015 was quoted.\n", "status_id", "1849000000000000015"),
        ("see https://x.com/intent/user?user_id=44196397 now\n", "user_id", "44196397"),
        (
            "https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Fx.com%2Fborderln_cargo"
            "&data=05\n",
            "username",
            "borderln_cargo",
        ),
        ("logins from 198.51.100.23:51234 yesterday\n", "ip", "198.51.100.23"),
        (
            "messaging service ch0f1e2d3c4b5a69788796a5b4c3d2e1f0 please\n",
            "sid",
            "CH0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        ),
    ],
)
def test_found_by_the_evaluation_fixes(
    extractor: IdentifierExtractor, text: str, kind: str, value: str
) -> None:
    assert _role(_extract(extractor, text), kind, value) == "subject"


@pytest.mark.parametrize(
    "text",
    [
        "Pls preserve @coastal_rx_hub for 90 days. -TFO Ramirez 619-555-0122\n",
        "Please add the IDs. Thank you. -- Diana Wu, SA, FBI San Francisco, (415) 555-0143\n",
        "Should you have any questions, please contact Special\nAgent Rosa Castillo at "
        "(713) 555-0147.\n",
        "Preserve @a_target please.\n\nTyler Harris\nKentucky State Police\n(502) 555-0100\n",
        "Your ref LE-2026-118842 is noted for @a_target.\n",
    ],
)
def test_the_senders_own_numbers_and_references_are_not_subjects(
    extractor: IdentifierExtractor, text: str
) -> None:
    assert not [i for i in _extract(extractor, text) if i.kind == "phone" and i.role == "subject"]


def test_acronym_after_the_account_is_not_a_handle(extractor: IdentifierExtractor) -> None:
    found = _extract(extractor, "Records for the account SID AC0123456789abcdef0123456789abcdef.\n")
    assert ("username", "sid") not in {(i.kind, i.value) for i in found}


# -- roles told from the sentence around the identifier ------------------------------------

CONTEXT_ROLES = [
    # (text, kind, value, role)
    (
        "Our victim, who uses the account @maple_and_moss, has been receiving threats "
        "from @bad_actor_1.",
        "username",
        "maple_and_moss",
        "other",
    ),
    (
        "Our victim, who uses the account @maple_and_moss, has been receiving threats "
        "from @bad_actor_1.",
        "username",
        "bad_actor_1",
        "subject",
    ),
    (
        "The second account is @delta_route_7, not @delta_route7 as I wrote below.",
        "username",
        "delta_route7",
        "other",
    ),
    (
        "The second account is @delta_route_7, not @delta_route7 as I wrote below.",
        "username",
        "delta_route_7",
        "subject",
    ),
    (
        "Please disregard my earlier request for @old_handle; the correct account is @new_handle.",
        "username",
        "old_handle",
        "other",
    ),
    (
        "Please disregard my earlier request for @old_handle; the correct account is @new_handle.",
        "username",
        "new_handle",
        "subject",
    ),
    (
        "The victim's mobile (+61 491 570 156) is listed for context only. The suspect "
        "used @harbour_rat.",
        "phone",
        "+61491570156",
        "other",
    ),
    (
        "The number 312-786-0100 appears in the call detail records; please ignore it.",
        "phone",
        "+13127860100",
        "other",
    ),
    (
        "A local anchor posts as @news_anchor; she is NOT a suspect.",
        "username",
        "news_anchor",
        "other",
    ),
    (
        "The scheme advertises 1-800-466-4411, which belongs to a legitimate bank.",
        "phone",
        "+18004664411",
        "other",
    ),
    (
        "The complainant's own number (212) 456-7890 is mentioned for reference only.",
        "phone",
        "+12124567890",
        "other",
    ),
    (
        "Should you need to discuss the order, I am on (212) 456-7890 during office hours.",
        "phone",
        "+12124567890",
        "requester",
    ),
    (
        "Request Type: Subscriber\nOfficer Phone: 404-892-0116\nTarget: @peach_state_plug\n",
        "phone",
        "+14048920116",
        "requester",
    ),
    (
        "Agency: FDLE | Officer: SA Grace Liu | Phone: 850-617-2127 | Target: @gulf_flipper",
        "phone",
        "+18506172127",
        "requester",
    ),
    (
        '---------- Forwarded message ---------\nFrom: "Det. Kevin Park" <k.park@example.org>\n'
        "Subject: draft\n\nPlease preserve @carjack_crew.",
        "email",
        "k.park@example.org",
        "other",
    ),
    (
        "The account @phish_king links to https://usps-fee.example.net/track daily.",
        "url",
        "https://usps-fee.example.net/track",
        "other",
    ),
    (
        "It was quoted by the commissioner's own account (@CommishDunbar) to warn people, "
        "and by @doxx_crew_1.",
        "username",
        "commishdunbar",
        "other",
    ),
    (
        "It was quoted by the commissioner's own account (@CommishDunbar) to warn people, "
        "and by @doxx_crew_1.",
        "username",
        "doxx_crew_1",
        "subject",
    ),
    (
        "We want @scoot_swaps only; the second account we listed, @nqtr_vintage, belongs "
        "to the complainant.",
        "username",
        "nqtr_vintage",
        "other",
    ),
    (
        "We want @scoot_swaps only; the second account we listed, @nqtr_vintage, belongs "
        "to the complainant.",
        "username",
        "scoot_swaps",
        "subject",
    ),
    (
        "He uses Instagram (@cactus_leaks) and, on X, @cactus_leaks_tus.",
        "username",
        "cactus_leaks",
        "other",
    ),
    (
        "Our own VPN egress (203.0.113.77) appears in the logs too; the suspect used "
        "198.51.100.23.",
        "ip",
        "203.0.113.77",
        "other",
    ),
    (
        "If I have a profile link like https://x.com/username, do you need the ID?",
        "username",
        "username",
        "other",
    ),
    (
        "Please reply to me rather than to lawenforcement@twilio.com.",
        "email",
        "lawenforcement@twilio.com",
        "other",
    ),
    (
        "Please send the records to our unit mailbox cyber.unit@fbi.gov.",
        "email",
        "cyber.unit@fbi.gov",
        "requester",
    ),
    (
        "Sgt. Luc Beaulieu\nRCMP E Division\nT: 778-555-0164 | C: (212) 456-7890\n",
        "phone",
        "+12124567890",
        "requester",
    ),
    (
        "Requester: Tpr. Nicole Medeiros | n.medeiros@example.org | (212) 456-7890\n"
        "Process: Search Warrant\n",
        "phone",
        "+12124567890",
        "requester",
    ),
    (
        "# | Type | Identifier | Role\n1 | Username | @wolf_pak | Target\n"
        "2 | Username | @jm_photo | Victim (context only, no records sought)\n",
        "username",
        "jm_photo",
        "other",
    ),
    (
        "# | Type | Identifier | Role\n1 | Username | @wolf_pak | Target\n"
        "2 | Username | @jm_photo | Victim (context only, no records sought)\n",
        "username",
        "wolf_pak",
        "subject",
    ),
    (
        "The offender also used the mobile (212) 456-7890 in March.",
        "phone",
        "+12124567890",
        "subject",
    ),
]


@pytest.mark.parametrize(("text", "kind", "value", "role"), CONTEXT_ROLES)
def test_role_from_the_sentence(
    extractor: IdentifierExtractor, text: str, kind: str, value: str, role: str
) -> None:
    assert _role(_extract(extractor, text), kind, value) == role


@pytest.mark.parametrize(
    "text",
    [
        "RE: VPD GO 2026-204417 - production order, Criminal Code s. 487.014",
        "Our file 2025-1187345 refers.",
    ],
)
def test_year_prefixed_reference_numbers_are_not_phones(
    extractor: IdentifierExtractor, text: str
) -> None:
    assert _pairs(_extract(extractor, text), "phone") == []
