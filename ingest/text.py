"""Turning MIME text parts into clean, readable, extraction-safe text.

Bodies arrive in every charset, sometimes mislabelled, sometimes as HTML only. Staff need
readable text and the extractors need the identifiers intact: profile URLs hidden in
links are kept as ``text (url)``, and zero-width characters that split a handle in two
are removed.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from email.message import Message

import charset_normalizer
import lxml.html
from inscriptis import Inscriptis
from inscriptis.model.config import ParserConfig
from lxml import etree

MAX_TEXT_CHARS = 1_000_000

# Labels seen in the wild that Python does not know, mapped to the codec they mean.
_CHARSET_ALIASES = {
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "x-gbk": "gbk",
    "x-sjis": "shift_jis",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac_roman",
    "windows-874": "cp874",
    "us-ascii": "ascii",
}

# Zero-width and invisible formatting characters: they hide identifiers from matching.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e"),
    None,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _codec_for(label: str | None) -> str | None:
    if not label:
        return None
    name = _CHARSET_ALIASES.get(label.strip().lower(), label.strip().lower())
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):  # ValueError: a NUL in the label
        return None


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """Decode with the declared charset, else detect; returns (text, defect or None)."""
    codec = _codec_for(declared)
    if codec is not None:
        try:
            return data.decode(codec), None
        except (UnicodeDecodeError, LookupError):
            pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return text, (None if declared is None or codec else f"unknown_charset:{declared}")
    best = charset_normalizer.from_bytes(data[:200_000]).best()
    if best is not None:
        try:
            return data.decode(best.encoding, errors="replace"), f"charset_guessed:{best.encoding}"
        except LookupError:
            pass
    return data.decode("cp1252", errors="replace"), "charset_fallback:cp1252"


def part_text(part: Message) -> tuple[str, str | None]:
    """The decoded text of one leaf (transfer encoding and charset both undone)."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        data = payload
    else:
        raw = part.get_payload()
        data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""
    try:
        declared = part.get_content_charset()
    except (LookupError, ValueError):
        declared = None
    return decode_bytes(data, declared)


def normalise(text: str) -> str:
    """NFC, one newline convention, no invisible or control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = _CONTROL.sub("", text)
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
    return text


_TAG = re.compile(r"<[^>]{0,2000}>")


def html_to_text(html: str) -> str:
    """HTML → readable text by inscriptis, links kept as ``text (url)``."""
    if not html.strip():
        return ""
    try:
        tree = lxml.html.fromstring(html)
    except (etree.ParserError, ValueError):
        return _TAG.sub(" ", html)
    for anchor in tree.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith("#"):
            continue
        label = anchor.text_content().strip()
        target = href[len("mailto:") :] if href.lower().startswith("mailto:") else href
        if label and target.rstrip("/") != label.rstrip("/"):
            anchor.tail = f" ({target}){anchor.tail or ''}"
        elif not label:
            anchor.text = target
    return str(Inscriptis(tree, ParserConfig()).get_text())
