"""The gate's cost per message: domain policy, lookalikes, registry, sender authentication.

Times the gate stage alone (after parsing) on three kinds of message: an LE request with a
trusted Authentication-Results header, an LE request that le-intake verifies itself (a real
DKIM signature checked against a static DNS table), and a lookalike that is dropped.

    python -m bench.gate [--n 2000]
"""

from __future__ import annotations

import argparse
import base64
import time
from datetime import UTC, datetime

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from classifiers.gate import GateStage
from config.settings import Settings, load_settings, merge
from core.context import MessageContext
from core.envelope import Envelope
from ingest.parse import ParseStage


def _message(sender: str, extra: str = "") -> bytes:
    return (
        f"{extra}From: Agent <{sender}>\r\nTo: lawenforcement@example-platform.com\r\n"
        "Subject: Subpoena\r\nMessage-ID: <bench@fbi.gov>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000"
        "\r\n\r\nPlease produce subscriber records for @target_account.\r\n"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    settings = Settings.model_validate(
        merge(
            load_settings().model_dump(),
            {
                "auth": {
                    "dns": "static",
                    "static_dns": {"sel._domainkey.fbi.gov": {"TXT": [f"v=DKIM1; p={public}"]}},
                }
            },
        )
    )
    gate = GateStage.from_settings(settings)
    parse = ParseStage()
    ar = (
        "Authentication-Results: le-intake.local; dkim=pass header.d=fbi.gov; "
        "dmarc=pass header.from=fbi.gov\r\n"
    )
    plain = _message("agent@fbi.gov")
    signed = (
        bytes(
            dkim.sign(plain, b"sel", b"fbi.gov", pem, include_headers=[b"from", b"to", b"subject"])
        )
        + plain
    )
    cases = {
        "trusted Authentication-Results": (_message("agent@fbi.gov", ar), "replay"),
        "own DKIM verification (RSA-2048)": (signed, "192.0.2.1:25"),
        "lookalike fbi-gov.com (dropped)": (_message("x@fbi-gov.com"), "192.0.2.1:25"),
    }
    for label, (raw, peer) in cases.items():
        envelope = Envelope(
            "bounce@relay.example",
            ("lawenforcement@example-platform.com",),
            datetime.now(UTC),
            peer=peer,
        )
        contexts = []
        for _ in range(n):
            ctx = MessageContext(raw=raw, envelope=envelope)
            parse(ctx)
            contexts.append(ctx)
        start = time.perf_counter()
        for ctx in contexts:
            verdicts = gate(ctx)
        elapsed = time.perf_counter() - start
        codes = ",".join(v.code for v in verdicts)
        print(f"{label:36} {elapsed / n * 1e6:8.0f} µs/message  ({codes})")


if __name__ == "__main__":
    main()
