"""Reading headers defensively: decoded, single-line, bounded, never raising.

Header values are attacker-controlled. Everything read here is stripped of CR/LF and
control characters and cut to a sane length before anything stores, logs or reflects it.
"""

from __future__ import annotations

import contextlib
import re
from email.errors import MessageError
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses

MAX_HEADER_CHARS = 998
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
_MSGID = re.compile(r"<[^<>\s]{1,500}>")


def clean(value: str, limit: int = MAX_HEADER_CHARS) -> str:
    """One line, no control characters, at most ``limit`` characters; raw 8-bit header
    bytes (surrogate-escaped by the parser) are read as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return _UNSAFE.sub(" ", value).strip()[:limit]


def decoded(value: object, limit: int = MAX_HEADER_CHARS) -> str:
    """RFC 2047 decoding that falls back to the raw text on any malformation."""
    text = str(value) if value is not None else ""
    # MessageError covers HeaderParseError and CharsetError: a broken encoded-word
    # (=?utf-8?b?A?=, a non-ASCII charset name) stays as written
    with contextlib.suppress(
        ValueError, LookupError, UnicodeError, TypeError, AssertionError, MessageError
    ):
        text = str(make_header(decode_header(text)))
    return clean(text, limit)


def header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):
        return None
    return None if value is None else decoded(value)


def all_headers(message: Message, name: str) -> list[str]:
    try:
        values = message.get_all(name) or []
    except (ValueError, IndexError, TypeError):
        return []
    return [clean(str(v)) for v in values]


def message_ids(value: str | None) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value or ""))[:100]


_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([^\s.@\[\]()<>,;:\\\"]{1,63}\.)+[^\s.@\[\]()<>,;:\\\"]{1,63}$"
)


def first_address(value: str) -> tuple[str, str]:
    """(display name, address) of the first mailbox in a raw address header.

    The address must be ``local@domain`` with exactly one ``@`` and a dotted domain;
    anything else yields an empty address, so a header like ``From: fbi.gov`` or
    ``x@gmail.com@fbi.gov`` can never pass for a mailbox.
    """
    try:
        pairs = getaddresses([value])
    except (ValueError, IndexError, TypeError):
        return "", ""
    for name, address in pairs:
        if not address:
            continue
        address = clean(address).lower().rstrip(".")
        local, at, domain = address.partition("@")
        if not (at and local and "@" not in domain and _DOMAIN.match(domain)):
            return decoded(name), ""
        if any(c.isascii() and not (c.isalnum() or c in "-.") for c in domain):
            # evil.example%fbi.gov: a relay-path trick, no host name
            return decoded(name), ""
        return decoded(name), address
    return "", ""


def address_count(value: str) -> int:
    try:
        return sum(1 for _, address in getaddresses([value]) if address)
    except (ValueError, IndexError, TypeError):
        return 0
