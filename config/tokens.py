"""Checks on the staff bearer-token hashes of ``[alerts.ack_tokens]``.

Only a token's sha256 is configured, so a weak token cannot be seen in the file — but its
hash can be recognised: the hashes of the empty string, of "test", "password" and the like
are published everywhere (the demo's own example once was sha256("test")). Such a hash
lets anyone acknowledge pages and record call-backs in a staff member's name, so it is
refused at start with the staff member named, as is anything that is not a sha256 hex
digest (a placeholder left in place) and one hash shared by two people (the audit log
could not tell who acted).
"""

from __future__ import annotations

import hashlib
import re

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

# Tokens people type when trying things out, or copy from examples. Each is refused as
# written, capitalised and upper-cased, and with the newline `echo TOKEN | sha256sum`
# adds (the usual way of hashing it by mistake).
WELL_KNOWN_TOKENS: tuple[str, ...] = (
    "",
    "test",
    "testing",
    "test123",
    "password",
    "password1",
    "passw0rd",
    "changeme",
    "change-me",
    "changeit",
    "secret",
    "s3cret",
    "admin",
    "administrator",
    "root",
    "toor",
    "guest",
    "demo",
    "example",
    "default",
    "token",
    "bearer",
    "apikey",
    "api-key",
    "letmein",
    "welcome",
    "qwerty",
    "abc123",
    "1234",
    "12345",
    "123456",
    "1234567",
    "12345678",
    "123456789",
    "1234567890",
    "0000",
    "000000",
    "foo",
    "bar",
    "foobar",
    "hunter2",
    "oncall",
    "on-call",
    "dana",
    "le-intake",
    "TOKEN",
    "$TOKEN",
    "...",
)


def _variants(token: str) -> set[str]:
    forms = {token, token.capitalize(), token.upper()}
    return forms | {f"{form}\n" for form in forms}


WELL_KNOWN_HASHES: frozenset[str] = frozenset(
    hashlib.sha256(form.encode("utf-8")).hexdigest()
    for token in WELL_KNOWN_TOKENS
    for form in _variants(token)
)


def check_ack_tokens(tokens: dict[str, str]) -> dict[str, str]:
    """The hashes, lower-cased; ``ValueError`` naming the staff member for a value that
    is not a sha256 hex digest, a well-known token's hash, or another member's hash."""
    checked: dict[str, str] = {}
    owners: dict[str, str] = {}
    for name, value in tokens.items():
        digest = value.strip().lower()
        if not _HEX64.match(digest):
            raise ValueError(
                f"ack token of {name!r} is not a sha256 hex digest (64 hex characters); "
                "configure the sha256 of a random token, e.g. "
                "TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))'); "
                'printf %s "$TOKEN" | sha256sum'
            )
        if digest in WELL_KNOWN_HASHES:
            raise ValueError(
                f"ack token of {name!r} is the sha256 of a well-known or empty token: "
                "anyone could acknowledge pages as them; issue a random token instead"
            )
        if digest in owners:
            raise ValueError(
                f"ack tokens of {owners[digest]!r} and {name!r} are the same: the audit log "
                "could not tell who acted; give each staff member their own token"
            )
        owners[digest] = name
        checked[name] = digest
    return checked
