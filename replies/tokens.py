"""Confirmation tokens: random, unguessable, stored only as a hash.

A token is 130 random bits written in lower-case base32 (26 characters), so it survives
mail systems that fold the case of local parts and can ride in a sub-address.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

TOKEN = re.compile(r"(?<![a-z2-7])[a-z2-7]{26}(?![a-z2-7])")


def new_token() -> str:
    return base64.b32encode(secrets.token_bytes(17)).decode("ascii").lower()[:26]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().lower().encode("ascii", "replace")).hexdigest()


def candidates(rcpt_tos: tuple[str, ...], body: str, limit: int = 8) -> list[str]:
    """Token-shaped strings from recipient sub-addresses first, then from the body."""
    found: list[str] = []
    for rcpt in rcpt_tos:
        local = rcpt.lower().rpartition("@")[0]
        _, plus, tag = local.partition("+")
        if plus and TOKEN.fullmatch(tag):
            found.append(tag)
    for match in TOKEN.finditer(body.lower()):
        if match.group() not in found:
            found.append(match.group())
        if len(found) >= limit:
            break
    return found[:limit]
