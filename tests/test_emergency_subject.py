"""The emergency flag: which subjects read "Emergency Disclosure Request" and which do not."""

from __future__ import annotations

import pytest

from classifiers.emergency import EmergencyStage, is_emergency_subject
from config.settings import load_settings
from core.context import MessageContext, ParsedHeaders
from core.headers import decoded
from core.verdicts import Decision
from ingest.parse import ParseStage
from ingest.pipeline import build_stages, run_stages
from tests.conftest import ENVELOPE


def _ctx(subject: str) -> MessageContext:
    return MessageContext(raw=b"", envelope=ENVELOPE, headers=ParsedHeaders(subject=subject))


def _raw(subject_header: str, from_header: str = "Agent <agent@fbi.gov>") -> bytes:
    return (
        f"From: {from_header}\r\n"
        "To: lawenforcement@example-platform.com\r\n"
        f"Subject: {subject_header}\r\n"
        "Message-ID: <edr-1@fbi.gov>\r\n"
        "\r\n"
        "Imminent threat to life; please disclose records for @target_1.\r\n"
    ).encode()


MATCHING = [
    "Emergency Disclosure Request",
    "emergency disclosure request",
    "EMERGENCY DISCLOSURE REQUEST",
    "eMeRgEnCy DiScLoSuRe ReQuEsT",
    "Re: Emergency Disclosure Request",
    "RE: RE: Emergency Disclosure Request",
    "Fwd: Emergency Disclosure Request",
    "FW: Emergency Disclosure Request",
    "[EXTERNAL] Emergency Disclosure Request",
    "[EXT] FW: EMERGENCY-DISCLOSURE-REQUEST!!",
    "[EXTERNAL] RE: Fwd: emergency disclosure request",
    "RE: [EXT] Emergency Disclosure Request / Case No. 24-CR-0199",
    "URGENT: Emergency Disclosure Request",
    "URGENT - EMERGENCY DISCLOSURE REQUEST - threat to life",
    "Emergency Disclosure Request - Case 2024-00123",
    "Emergency Disclosure Request #FBI-123456",
    "Emergency Disclosure Request: Twitter account @example",
    "  Emergency   Disclosure    Request  ",
    "Emergency\tDisclosure\tRequest",
    "Emergency, Disclosure; Request.",
    "**Emergency Disclosure Request**",
    "Emergency.Disclosure.Request",
    "Emergency_Disclosure_Request",
    "Emergency-Disclosure-Request",
    "Emergency\u2014Disclosure\u2014Request",  # em dashes
    "Emergency \u2013 Disclosure \u2013 Request",  # en dashes
    "Emergency\u2011Disclosure\u2011Request",  # non-breaking hyphens
    "This is an Emergency Disclosure Request",
    "Not urgent but Emergency Disclosure Request",
    "Non-emergency and Emergency Disclosure Request",
]


@pytest.mark.parametrize("subject", MATCHING)
def test_matching_subjects(subject: str) -> None:
    assert is_emergency_subject(subject) is True


# RFC 2047 encoded subjects as they arrive, decoded the way the parse stage decodes them.
ENCODED = [
    ("=?UTF-8?Q?Emergency_Disclosure_=E2=80=93_Request?=", "Emergency Disclosure \u2013 Request"),
    (
        "=?UTF-8?B?RW1lcmdlbmN5IOKAlCBEaXNjbG9zdXJlIOKAlCBSZXF1ZXN0?=",
        "Emergency \u2014 Disclosure \u2014 Request",
    ),
    (
        "=?utf-8?q?Emergency=E2=80=91Disclosure=E2=80=91Request?=",
        "Emergency\u2011Disclosure\u2011Request",
    ),
    (
        "=?UTF-8?Q?RE:_[EXTERNAL]_EMERGENCY_=E2=80=94_DISCLOSURE_=E2=80=94_REQUEST?=",
        "RE: [EXTERNAL] EMERGENCY \u2014 DISCLOSURE \u2014 REQUEST",
    ),
]


@pytest.mark.parametrize(("encoded", "text"), ENCODED)
def test_rfc2047_decoded_unicode_dashes_match(encoded: str, text: str) -> None:
    assert decoded(encoded) == text
    assert is_emergency_subject(decoded(encoded)) is True


NEAR_MISSES = [
    "Non-emergency disclosure request",
    "Non-Emergency Disclosure Request",
    "Non emergency disclosure request",
    "non_emergency disclosure request",
    "Nonemergency disclosure request",
    "Re: Non-emergency disclosure request",
    "Not an Emergency Disclosure Request",
    "Not a Emergency Disclosure Request",
    "NOT Emergency Disclosure Request",
    "No emergency disclosure request needed",
    "Emergency request for disclosure",
    "Disclosure request (emergency)",
    "Emergency disclosure",
    "emergency disclosures requested",
    "Emergency disclosure requests",
    "Emergencies Disclosure Request",
    "Emergencydisclosurerequest",
    "Emergency Data Request",
    "Emergency Non-Disclosure Request",
    "Disclosure Request",
    "",
]


@pytest.mark.parametrize("subject", NEAR_MISSES)
def test_near_misses_do_not_match(subject: str) -> None:
    assert is_emergency_subject(subject) is False


@pytest.mark.parametrize(
    "subject",
    [
        "URGENT - Do not delay: Emergency Disclosure Request",
        "Response not received - Emergency Disclosure Request",
    ],
)
def test_not_two_words_back_that_does_not_negate_the_phrase(subject: str) -> None:
    assert is_emergency_subject(subject) is True


def test_raw_undecoded_encoded_word_is_not_matched() -> None:
    # The classifier sees decoded text; the encoded form's words are not the phrase.
    assert is_emergency_subject("=?UTF-8?Q?Emergency_Disclosure_=E2=80=93_Request?=") is False


def test_stage_sets_flag_and_notes_emergency_subject() -> None:
    ctx = _ctx("[EXT] FW: EMERGENCY-DISCLOSURE-REQUEST!!")
    verdicts = list(EmergencyStage()(ctx))
    assert ctx.emergency is True
    assert [(v.stage, v.decision, v.code) for v in verdicts] == [
        ("emergency", Decision.NOTE, "emergency_subject")
    ]
    assert ctx.decision is Decision.PASS  # a note never holds or drops


def test_stage_leaves_flag_unset_for_ordinary_subject() -> None:
    ctx = _ctx("Non-emergency disclosure request")
    assert list(EmergencyStage()(ctx)) == []
    assert ctx.emergency is False


def test_stage_resets_flag_from_previous_value() -> None:
    ctx = _ctx("Preservation request")
    ctx.emergency = True
    EmergencyStage()(ctx)
    assert ctx.emergency is False


def test_stage_after_parse_reads_folded_encoded_subject() -> None:
    raw = _raw("=?UTF-8?Q?Emergency_Disclosure?=\r\n =?UTF-8?Q?_=E2=80=93_Request_/_Case_24-0042?=")
    ctx = MessageContext(raw=raw, envelope=ENVELOPE)
    ParseStage()(ctx)
    assert ctx.headers.subject == "Emergency Disclosure \u2013 Request / Case 24-0042"
    verdicts = list(EmergencyStage()(ctx))
    assert ctx.emergency is True
    assert [v.code for v in verdicts] == ["emergency_subject"]


def test_emergency_is_flagged_on_dropped_mail_too() -> None:
    stages = build_stages(load_settings(environ={}))
    raw = _raw("Emergency Disclosure Request", from_header='"FBI" <someone@gmail.com>')
    ctx = run_stages(MessageContext(raw=raw, envelope=ENVELOPE), stages)
    assert ctx.decision is Decision.DROP
    assert ctx.emergency is True
    assert "emergency_subject" in ctx.reason_codes
    assert ctx.identifiers == []  # nothing extracted from disregarded mail
