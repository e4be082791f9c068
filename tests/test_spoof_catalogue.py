"""The spoof catalogue: forged, lookalike and unauthenticated senders through a real listener.

Every variant is sent with smtplib to aiosmtpd on a loopback port and processed by the
runner into a real SQLite store; the outcome and the reasons are read back from the store.
DNS comes from a static table (no network): it holds a DKIM key generated for this run and
SPF records. Mail from 127.0.0.1 counts as coming from the boundary MTA (its
Authentication-Results are believed); mail from 127.0.0.2 comes "from outside".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import smtplib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY

import dkim
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from cases.models import MessageRecord
from ingest.smtp import start_smtp_server
from le_intake.app import App, build_app
from tests.conftest import make_settings

RCPT = "lawenforcement@example-platform.com"
TRUSTED_PEER = "127.0.0.1"
OUTSIDE_PEER = "127.0.0.2"

_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = _KEY.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption(),
)
PUBLIC_TXT = "v=DKIM1; k=rsa; p=" + base64.b64encode(
    _KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode("ascii")

STATIC_DNS = {
    "sel._domainkey.fbi.gov": {"TXT": [PUBLIC_TXT]},
    "sel._domainkey.example.com": {"TXT": [PUBLIC_TXT]},
    "sel._domainkey.usss.dhs.gov": {"TXT": "TEMPFAIL"},
    "fbi.gov": {"TXT": [f"v=spf1 ip4:{OUTSIDE_PEER} -all"]},
    "mailer.example": {"TXT": [f"v=spf1 ip4:{OUTSIDE_PEER} -all"]},
    "nypd.org": {"TXT": ["v=spf1 ip4:192.0.2.1 -all"]},
}


_SERIAL = itertools.count(1)


def message(
    from_: str | list[str] | None = "Agent Smith <agent.smith@fbi.gov>",
    subject: str = "Subpoena for subscriber information",
    extra: list[tuple[str, str]] | None = None,
    body: str = "Please produce subscriber records for @target_account.\r\n",
) -> bytes:
    msg = EmailMessage(policy=SMTP_POLICY)
    for name, value in extra or []:
        msg[name] = value
    for value in [from_] if isinstance(from_, str) else from_ or []:
        msg["From"] = value
    msg["To"] = RCPT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<variant-{next(_SERIAL)}@test>"  # each variant is a new message
    msg["Date"] = "Mon, 02 Nov 2026 10:00:00 +0000"
    msg.set_content(body)
    return msg.as_bytes()


def raw_from(header: str, extra: str = "") -> bytes:
    """A message whose From line is written byte-for-byte (8-bit allowed)."""
    return (
        f"{extra}From: {header}\r\nTo: {RCPT}\r\nSubject: Preservation request\r\n"
        f"Message-ID: <raw-{next(_SERIAL)}@test>\r\n\r\n"
        "Please preserve records for @target_account.\r\n"
    ).encode()


def ar(result: str) -> list[tuple[str, str]]:
    return [("Authentication-Results", result)]


def ar_pass(domain: str) -> list[tuple[str, str]]:
    return ar(f"le-intake.local; dkim=pass header.d={domain}; dmarc=pass header.from={domain}")


def signed(raw: bytes, domain: str, length: bool = False) -> bytes:
    signature = dkim.sign(
        raw, b"sel", domain.encode(), PRIVATE_PEM,
        include_headers=[b"from", b"to", b"subject", b"message-id", b"date"], length=length,
    )  # fmt: skip
    return bytes(signature) + raw


def signed_without_from(raw: bytes, domain: str) -> bytes:
    """A valid signature whose h= leaves From out: dkimpy refuses to make one, an attacker
    need not, and verifiers accept it (RFC 6376 asks signers, not verifiers)."""
    signer = dkim.DKIM(raw)
    canon = dkim.CanonicalizationPolicy.from_c_value(b"relaxed/simple")
    body_hash = base64.b64encode(hashlib.sha256(canon.canonicalize_body(signer.body)).digest())
    include = [b"to", b"subject", b"message-id", b"date"]
    fields = [
        (b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", canon.to_c_value()),
        (b"d", domain.encode()), (b"i", b"@" + domain.encode()), (b"q", b"dns/txt"),
        (b"s", b"sel"), (b"t", b"1790000000"), (b"h", b" : ".join(include)),
        (b"bh", body_hash), (b"b", b"0" * 60),
    ]  # fmt: skip
    signer.signature_algorithm = b"rsa-sha256"
    signer.hasher = hashlib.sha256
    key = dkim.crypto.parse_pem_private_key(PRIVATE_PEM)
    header = signer.gen_header(fields, include, canon, b"DKIM-Signature", key)
    return b"DKIM-Signature: " + bytes(header) + raw


def tamper(raw: bytes) -> bytes:
    return raw.replace(b"Subject: Subpoena", b"Subject: Emergency", 1)


@dataclass(frozen=True)
class Variant:
    name: str
    raw: Callable[[], bytes]
    outcome: str
    reasons: tuple[str, ...]
    peer: str = TRUSTED_PEER
    mail_from: str = "agent.smith@fbi.gov"
    absent: tuple[str, ...] = field(default=())


NO_SPF = "bounce@no-spf-record.example"  # a MAIL FROM whose domain publishes nothing
PASS_AR = "le-intake.local; dkim=pass header.d=fbi.gov; dmarc=pass header.from=fbi.gov"
FAIL_AR = "le-intake.local; dmarc=fail header.from=fbi.gov"
# The Received header our boundary MTA adds (auth.boundary_hosts in the demo config).
BOUNDARY_RECEIVED = ("Received", "from attacker.example ([192.0.2.66]) by mx.example-platform.com")

CATALOGUE = [
    Variant("display-name spoof over gmail", lambda: message('"FBI" <x@gmail.com>'),
            "dropped", ("non_le_domain", "lookalike_domain"), mail_from="x@gmail.com"),
    Variant("forged From with dmarc=fail from the boundary MTA",
            lambda: message(extra=ar("le-intake.local; dmarc=fail header.from=fbi.gov")),
            "dropped", ("sender_auth_failed",)),
    Variant("DKIM signed by a different domain", lambda: signed(message(), "example.com"),
            "dropped", ("sender_auth_failed",), peer=OUTSIDE_PEER, mail_from="x@example.com"),
    Variant("SPF pass for an unaligned MAIL FROM", lambda: message(), "dropped",
            ("sender_auth_failed",), peer=OUTSIDE_PEER, mail_from="bounce@mailer.example"),
    Variant("Authentication-Results from an untrusted authserv-id",
            lambda: message(extra=ar("mx.evil.example; dkim=pass header.d=fbi.gov")),
            "held", ("sender_unverified",), mail_from=NO_SPF, absent=("sender_authenticated",)),
    Variant("our authserv-id, but arriving from outside", lambda: message(extra=ar(PASS_AR)),
            "held", ("sender_unverified",), peer=OUTSIDE_PEER, mail_from="x@relay.example",
            absent=("sender_authenticated",)),
    Variant("our authserv-id below the boundary's Received",
            lambda: message(extra=[("Received", "from mx.le-intake.local by intake"),
                                   ("Received", "from attacker by somewhere"),
                                   ("Authentication-Results", PASS_AR)]),
            "held", ("sender_unverified",), mail_from=NO_SPF, absent=("sender_authenticated",)),
    Variant("forged pass just below the boundary MTA's Received, the MTA's own fail above",
            lambda: message(extra=[*ar(FAIL_AR), BOUNDARY_RECEIVED, *ar(PASS_AR)]),
            "dropped", ("sender_auth_failed",), absent=("sender_authenticated",)),
    Variant("forged pass below the boundary's Received, an internal relay's Received on top",
            lambda: message(extra=[("Received", "from mx.example-platform.com by relay.internal"),
                                   BOUNDARY_RECEIVED, *ar(PASS_AR)]),
            "held", ("sender_unverified",), mail_from=NO_SPF, absent=("sender_authenticated",)),
    Variant("the boundary MTA's pass above its Received, under an internal relay's",
            lambda: message(extra=[("Received", "from mx.example-platform.com by relay.internal"),
                                   *ar(PASS_AR), BOUNDARY_RECEIVED]),
            "accepted", ("sender_authenticated",)),
    Variant("two trusted Authentication-Results: only the topmost (fail) is read",
            lambda: message(extra=[*ar(FAIL_AR), *ar(PASS_AR)]),
            "dropped", ("sender_auth_failed",), absent=("sender_authenticated",)),
    Variant("one trusted header whose results disagree (aligned dkim pass, dmarc fail)",
            lambda: message(extra=ar("le-intake.local; dkim=pass header.d=fbi.gov; "
                                     "dmarc=fail header.from=fbi.gov")),
            "dropped", ("sender_auth_failed",), absent=("sender_authenticated",)),
    Variant("our authserv-id written in another case",
            lambda: message(extra=ar(PASS_AR.replace("le-intake.local", "LE-Intake.LOCAL"))),
            "accepted", ("sender_authenticated",)),
    Variant("valid aligned DKIM signature whose h= leaves out From",
            lambda: signed_without_from(message(), "fbi.gov"), "dropped",
            ("sender_auth_failed",), peer=OUTSIDE_PEER, mail_from="bounce@relay.example",
            absent=("sender_authenticated",)),
    Variant("a real agency at the apex of its own domain (garda.ie)",
            lambda: message("Garda <liaison@garda.ie>", extra=ar_pass("garda.ie")),
            "accepted", ("le_domain", "sender_authenticated"), mail_from="liaison@garda.ie"),
    Variant("a German state police apex (polizei.nrw.de)",
            lambda: message("Kripo <k11@polizei.nrw.de>", extra=ar_pass("polizei.nrw.de")),
            "accepted", ("le_domain", "sender_authenticated"), mail_from="k11@polizei.nrw.de"),
    Variant("a state attorney general on oag.state.va.us",
            lambda: message("AAG <aag@oag.state.va.us>", extra=ar_pass("oag.state.va.us")),
            "accepted", ("le_domain", "sender_authenticated"), mail_from="aag@oag.state.va.us"),
    Variant("a county sheriff in the .us locality namespace: held, never dropped",
            lambda: message("Sheriff <d@sheriff.co.fairfax.va.us>",
                            extra=ar_pass("sheriff.co.fairfax.va.us")),
            "held", ("local_government_domain", "sender_authenticated"),
            mail_from="d@sheriff.co.fairfax.va.us"),
    Variant("a %-hack domain that is no host name", lambda: raw_from("agent@evil.example%fbi.gov"),
            "dropped", ("no_sender_domain",), mail_from="x@evil.example"),
    Variant("two From headers", lambda: raw_from("a@fbi.gov", extra="From: b@gmail.com\r\n"),
            "dropped", ("multiple_from",)),
    Variant("two mailboxes in one From", lambda: message("a@fbi.gov, b@gmail.com"),
            "dropped", ("multiple_from",)),
    Variant("encoded-word display name spelling an LE address",
            lambda: raw_from("=?utf-8?q?agent=40fbi=2Egov?= <x@gmail.com>"),
            "dropped", ("non_le_domain",), mail_from="x@gmail.com"),
    Variant("From with comments", lambda: raw_from("agent.smith@fbi.gov (Special Agent)",
                                                   extra=f"Authentication-Results: {PASS_AR}\r\n"),
            "accepted", ("le_domain", "sender_authenticated")),
    Variant("IDN homoglyph: Cyrillic i in fbi.gov", lambda: raw_from("Agent <x@fb\u0456.gov>"),
            "dropped", ("lookalike_domain",), mail_from="x@example.net"),
    Variant("punycode label under .gov", lambda: message("Agent <x@xn--fbi-5cd.gov>"),
            "dropped", ("lookalike_domain",), mail_from="x@example.net"),
    Variant("embedded label fbi.gov.example.com", lambda: message("x@fbi.gov.example.com"),
            "dropped", ("non_le_domain", "lookalike_domain"), mail_from="x@example.com"),
    Variant("hyphen lookalike fbi-gov.com", lambda: message("x@fbi-gov.com"),
            "dropped", ("non_le_domain", "lookalike_domain"), mail_from="x@fbi-gov.com"),
    Variant("glued lookalike fbigov.net", lambda: message("x@fbigov.net"),
            "dropped", ("non_le_domain", "lookalike_domain"), mail_from="x@fbigov.net"),
    Variant("typo of a registered agency under .gov: fbl.gov",
            lambda: message("x@fbl.gov", extra=ar(
                "le-intake.local; dkim=pass header.d=fbl.gov; dmarc=pass header.from=fbl.gov")),
            "dropped", ("lookalike_domain",), mail_from="x@fbl.gov"),
    Variant("typo across suffixes: fbi.gob", lambda: message("x@fbi.gob"),
            "dropped", ("non_le_domain", "lookalike_domain"), mail_from="x@fbi.gob"),
    Variant("upper-case domain", lambda: message("Agent <AGENT.SMITH@FBI.GOV>", extra=ar(PASS_AR)),
            "accepted", ("le_domain", "sender_authenticated")),
    Variant("trailing-dot domain", lambda: message("Agent <agent.smith@fbi.gov.>",
                                                   extra=ar(PASS_AR)),
            "accepted", ("le_domain", "sender_authenticated")),
    Variant("subdomain of an allowed domain, relaxed alignment",
            lambda: message("x@cyber.fbi.gov", extra=ar(PASS_AR)),
            "accepted", ("le_domain", "sender_authenticated")),
    Variant("Reply-To to gmail", lambda: message(extra=[*ar(PASS_AR), ("Reply-To", "x@gmail.com")]),
            "accepted", ("reply_to_outside_policy", "sender_authenticated")),
    Variant("valid DKIM of the From domain, verified by le-intake",
            lambda: signed(message(), "fbi.gov"), "accepted", ("sender_authenticated",),
            peer=OUTSIDE_PEER, mail_from="bounce@relay.example"),
    Variant("DKIM-signed, then a header tampered", lambda: tamper(signed(message(), "fbi.gov")),
            "dropped", ("sender_auth_failed",), peer=OUTSIDE_PEER,
            mail_from="bounce@relay.example"),
    Variant("DKIM with l= and text appended after signing",
            lambda: signed(message(), "fbi.gov", length=True) + b"Also @someone_else.\r\n",
            "accepted", ("sender_authenticated", "dkim_body_length_limit"), peer=OUTSIDE_PEER,
            mail_from="bounce@relay.example"),
    Variant("DNS temporary failure for the DKIM key",
            lambda: signed(message("x@usss.dhs.gov"), "usss.dhs.gov"), "held",
            ("sender_auth_temperror",), peer=OUTSIDE_PEER, mail_from="bounce@relay.example"),
    Variant("aligned SPF pass, no DKIM", lambda: message(), "accepted",
            ("sender_authenticated",), peer=OUTSIDE_PEER),
    Variant("SPF fail for the From domain", lambda: message("d@nypd.org"), "dropped",
            ("sender_auth_failed",), peer=OUTSIDE_PEER, mail_from="d@nypd.org"),
    Variant("no authentication at all", lambda: message(), "held", ("sender_unverified",),
            mail_from=NO_SPF, absent=("sender_authenticated",)),
    Variant("unauthenticated from a trusted peer, SPF of the From domain fails",
            lambda: message(subject="Records request"), "dropped", ("sender_auth_failed",)),
    Variant("no From header", lambda: message(None), "dropped", ("no_from",)),
    Variant("From without a mailbox", lambda: raw_from("fbi.gov"), "dropped",
            ("no_sender_domain",)),
    Variant("address with two @", lambda: raw_from("x@gmail.com@fbi.gov"), "dropped",
            ("no_sender_domain",)),
    Variant("denied (compromised) agency domain",
            lambda: message("x@compromised.gov", extra=ar(
                "le-intake.local; dmarc=pass header.from=compromised.gov")),
            "dropped", ("denied_domain",)),
]  # fmt: skip


@dataclass
class CatalogueListener:
    app: App
    port: int

    def send(self, variant: Variant) -> str:
        raw = variant.raw()
        with smtplib.SMTP(
            "127.0.0.1", self.port, timeout=30, source_address=(variant.peer, 0)
        ) as client:
            client.sendmail(variant.mail_from, [RCPT], raw)
        return hashlib.sha256(raw).hexdigest()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def catalogue_listener(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[CatalogueListener]:
    """One listener and store for the whole catalogue (each variant is told apart by the
    sha256 of what it sent)."""
    settings = make_settings(
        tmp_path_factory.mktemp("catalogue"),
        auth={"static_dns": STATIC_DNS, "trusted_peers": [TRUSTED_PEER], "dns": "static"},
        le_policy={"denied_domains": ["compromised.gov"]},
    )
    app = await build_app(settings)
    server = await start_smtp_server(settings.smtp, app.smtp_handler(), "127.0.0.1", 0)
    try:
        yield CatalogueListener(app, server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
        await app.close()


def test_the_catalogue_is_large_enough() -> None:
    assert len(CATALOGUE) >= 25
    assert len({v.name for v in CATALOGUE}) == len(CATALOGUE)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("variant", CATALOGUE, ids=lambda v: v.name)
async def test_spoof_variant(catalogue_listener: CatalogueListener, variant: Variant) -> None:
    sha = await asyncio.to_thread(catalogue_listener.send, variant)
    assert await catalogue_listener.app.runner.drain() == 1
    async with catalogue_listener.app.store.sessions() as session:
        query = select(MessageRecord).where(MessageRecord.raw_sha256 == sha)
        row = (await session.execute(query)).scalar_one()
    assert row.outcome == variant.outcome, row.reasons
    assert set(variant.reasons) <= set(row.reasons), row.reasons
    assert not set(variant.absent) & set(row.reasons), row.reasons
    if variant.outcome == "dropped":
        assert row.text_body is None
        assert row.case_id is None
