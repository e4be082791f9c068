"""The law-enforcement gate on real parsed messages: ParseStage, then GateStage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from classifiers.gate import GateStage
from config.settings import load_settings
from core.context import MessageContext
from core.envelope import Envelope
from core.verdicts import Decision
from ingest.parse import ParseStage
from ingest.pipeline import Stage, build_stages, run_stages

ENVELOPE = Envelope(
    mail_from="bounce@mailer.example",
    rcpt_tos=("lawenforcement@example-platform.com",),
    received_at=datetime(2024, 10, 1, 12, 0, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    # Domain decisions only: unauthenticated mail continues here (tests/test_spoof_catalogue.py
    # covers sender authentication).
    return build_stages(load_settings(environ={"LE_INTAKE_AUTH__ON_NONE": "continue"}))


@pytest.fixture(scope="module")
def parse_and_gate(stages: list[Stage]) -> list[Stage]:
    chosen: list[Stage] = [s for s in stages if isinstance(s, ParseStage | GateStage)]
    assert [s.name for s in chosen] == ["parse", "gate"]
    return chosen


def _raw(*from_lines: str, subject: str = "Preservation request") -> bytes:
    lines = [f"From: {value}" for value in from_lines]
    lines += [
        "To: lawenforcement@example-platform.com",
        f"Subject: {subject}",
        "Message-ID: <req-1@agency.example>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
    ]
    body = "Please preserve all records for the account @target_1.\r\n"
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def _run(raw: bytes, stages: list[Stage]) -> MessageContext:
    return run_stages(MessageContext(raw=raw, envelope=ENVELOPE), stages)


_NOT_DOMAIN = ("sender_unverified", "envelope_sender_outside_policy")


def _gate(ctx: MessageContext) -> list[tuple[Decision, str]]:
    """The gate's domain verdicts (authentication and envelope notes left out)."""
    return [
        (v.decision, v.code)
        for v in ctx.verdicts
        if v.stage == "gate" and v.code not in _NOT_DOMAIN
    ]


def test_stage_table_order(stages: list[Stage]) -> None:
    assert [s.name for s in stages] == [
        "parse",
        "fax",
        "attachments",
        "gate",
        "emergency",
        "identifiers",
        "facts",
        "completeness",
    ]
    gate = next(s for s in stages if s.name == "gate")
    assert gate.runs_after_drop is False


def test_le_sender_passes(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("Special Agent Smith <jsmith@fbi.gov>"), parse_and_gate)
    assert _gate(ctx) == [(Decision.PASS, "le_domain")]
    assert ctx.decision is Decision.PASS
    assert ctx.sender is not None
    assert ctx.sender.address == "jsmith@fbi.gov"
    assert ctx.sender.domain == "fbi.gov"
    assert ctx.sender.display_name == "Special Agent Smith"
    assert ctx.sender.registrable_domain == "fbi.gov"


def test_le_subdomain_sender_records_registrable_domain(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("tips@cyber.ic3.gov"), parse_and_gate)
    assert _gate(ctx) == [(Decision.PASS, "le_domain")]
    assert ctx.sender is not None
    assert ctx.sender.domain == "cyber.ic3.gov"
    assert ctx.sender.registrable_domain == "ic3.gov"


def test_gmail_sender_is_dropped(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("Joe Citizen <joe@gmail.com>"), parse_and_gate)
    assert _gate(ctx) == [(Decision.DROP, "non_le_domain")]
    assert ctx.decision is Decision.DROP
    assert ctx.sender is not None
    assert ctx.sender.domain == "gmail.com"


def test_display_name_spoof_is_non_le_and_lookalike(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw('"FBI" <x@gmail.com>'), parse_and_gate)
    assert _gate(ctx) == [(Decision.DROP, "non_le_domain"), (Decision.DROP, "lookalike_domain")]
    assert ctx.sender is not None
    assert ctx.sender.display_name == "FBI"
    assert ctx.sender.address == "x@gmail.com"


def test_display_name_holding_an_le_address_is_a_spoof(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw('"agent@fbi.gov" <x@gmail.com>'), parse_and_gate)
    assert ctx.sender is not None
    assert ctx.sender.address == "x@gmail.com"
    assert _gate(ctx) == [(Decision.DROP, "non_le_domain"), (Decision.DROP, "lookalike_domain")]


def test_lookalike_domain_is_dropped_once_as_lookalike(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw('"FBI" <agent@fbi-gov.com>'), parse_and_gate)
    assert _gate(ctx) == [(Decision.DROP, "non_le_domain"), (Decision.DROP, "lookalike_domain")]


def test_internationalised_lookalike_under_gov(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("agent@xn--fb-kmc.gov"), parse_and_gate)
    assert _gate(ctx) == [(Decision.DROP, "lookalike_domain")]


def test_two_from_headers_are_dropped(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("jsmith@fbi.gov", "other@gmail.com"), parse_and_gate)
    assert ctx.headers.from_count == 2
    assert _gate(ctx) == [(Decision.DROP, "multiple_from")]
    assert ctx.sender is None


def test_two_le_from_headers_are_still_dropped(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("a@fbi.gov", "b@fbi.gov"), parse_and_gate)
    assert _gate(ctx) == [(Decision.DROP, "multiple_from")]


def test_missing_from_is_dropped(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw(), parse_and_gate)
    assert ctx.headers.from_count == 0
    assert _gate(ctx) == [(Decision.DROP, "no_from")]
    assert ctx.sender is None


@pytest.mark.parametrize("value", ["undisclosed-recipients:;", "", "Agent Smith"])
def test_from_without_address_is_dropped(parse_and_gate: list[Stage], value: str) -> None:
    ctx = _run(_raw(value), parse_and_gate)
    assert _gate(ctx) == [(Decision.DROP, "no_sender_domain")]
    assert ctx.decision is Decision.DROP


@pytest.mark.parametrize(
    "value", ["fbi.gov", "Special Agent <cyber.fbi.gov>", "x@gmail.com@fbi.gov"]
)
def test_from_without_a_mailbox_at_an_le_domain_is_dropped(
    parse_and_gate: list[Stage], value: str
) -> None:
    ctx = _run(_raw(value), parse_and_gate)
    assert _gate(ctx) == [(Decision.DROP, "no_sender_domain")]


def test_from_with_trailing_comment(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("jsmith@fbi.gov (Special Agent Smith)"), parse_and_gate)
    assert _gate(ctx) == [(Decision.PASS, "le_domain")]
    assert ctx.sender is not None
    assert ctx.sender.address == "jsmith@fbi.gov"
    assert ctx.sender.display_name == "Special Agent Smith"


def test_from_with_comments_inside_the_mailbox(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("(Field Office) Agent Smith <jsmith(work)@fbi.gov>"), parse_and_gate)
    assert _gate(ctx) == [(Decision.PASS, "le_domain")]
    assert ctx.sender is not None
    assert ctx.sender.address == "jsmith@fbi.gov"


def test_rfc2047_encoded_display_name(parse_and_gate: list[Stage]) -> None:
    # "Special Agent José" in base64
    ctx = _run(_raw("=?UTF-8?B?U3BlY2lhbCBBZ2VudCBKb3PDqQ==?= <jose@fbi.gov>"), parse_and_gate)
    assert _gate(ctx) == [(Decision.PASS, "le_domain")]
    assert ctx.sender is not None
    assert ctx.sender.display_name == "Special Agent Jos\u00e9"
    # The header is kept raw: addresses are read before any RFC 2047 decoding.
    assert ctx.headers.from_header.endswith("<jose@fbi.gov>")


def test_rfc2047_encoded_agency_display_name_over_gmail(parse_and_gate: list[Stage]) -> None:
    ctx = _run(_raw("=?UTF-8?Q?F=C3=A9d=C3=A9ral_FBI?= <x@gmail.com>"), parse_and_gate)
    assert ctx.sender is not None
    assert ctx.sender.display_name == "F\u00e9d\u00e9ral FBI"
    assert _gate(ctx) == [(Decision.DROP, "non_le_domain"), (Decision.DROP, "lookalike_domain")]


@pytest.mark.parametrize(
    "encoded",
    [
        "=?UTF-8?Q?agent=40fbi=2Egov?= <x@gmail.com>",
        "=?UTF-8?Q?Agent_=3Cagent=40fbi=2Egov=3E?= <x@gmail.com>",
    ],
)
def test_encoded_display_name_cannot_inject_an_le_address(
    parse_and_gate: list[Stage], encoded: str
) -> None:
    ctx = _run(_raw(encoded), parse_and_gate)
    assert ctx.sender is not None
    assert ctx.sender.address == "x@gmail.com"
    assert ctx.decision is Decision.DROP


@pytest.mark.parametrize(
    ("value", "address", "domain"),
    [
        ("Agent <JSMITH@FBI.GOV>", "jsmith@fbi.gov", "fbi.gov"),
        ("Agent <jsmith@FBI.GOV.>", "jsmith@fbi.gov", "fbi.gov"),
        ("JSMITH@CYBER.FBI.GOV", "jsmith@cyber.fbi.gov", "cyber.fbi.gov"),
        ("Detective <det@NYPD.ORG.>", "det@nypd.org", "nypd.org"),
    ],
)
def test_upper_case_and_trailing_dot_domains_pass(
    parse_and_gate: list[Stage], value: str, address: str, domain: str
) -> None:
    ctx = _run(_raw(value), parse_and_gate)
    assert _gate(ctx) == [(Decision.PASS, "le_domain")]
    assert ctx.sender is not None
    assert ctx.sender.address == address
    assert ctx.sender.domain == domain


def test_whole_road_stops_extracting_after_gate_drop(stages: list[Stage]) -> None:
    ctx = _run(_raw("Joe <joe@gmail.com>"), stages)
    assert ctx.decision is Decision.DROP
    assert ctx.identifiers == []
    assert not any(v.stage == "identifiers" for v in ctx.verdicts)


def test_whole_road_extracts_after_gate_pass(stages: list[Stage]) -> None:
    ctx = _run(_raw("jsmith@fbi.gov"), stages)
    assert ctx.decision is Decision.PASS
    assert [(i.kind, i.value) for i in ctx.identifiers] == [("username", "target_1")]
    assert "identifiers_found" in ctx.reason_codes
