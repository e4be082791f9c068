"""Turning MIME text parts into clean, readable, extraction-safe text.

Bodies arrive in every charset, sometimes mislabelled, sometimes as HTML only. Staff need
readable text and the extractors need the identifiers intact: profile URLs hidden in
links are kept as ``text (url)``, and zero-width characters that split a handle in two
are removed.
"""

from __future__ import annotations

import codecs
import html as _html
import itertools
import re
import sys
import unicodedata
from email.message import Message
from functools import cache

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


# Unicode's stream-safe limit (UAX #15): no more combining marks in a row than this.
MAX_COMBINING_RUN = 30
# Combining grapheme joiner: a starter that marks cannot be reordered across.
_CGJ = "\u034f"
# Room left past the cap for what normalisation removes (CR of CRLF, invisibles, controls).
_CAP_MARGIN = 4096


@cache
def long_mark_run() -> re.Pattern[str]:
    """More than MAX_COMBINING_RUN characters with a non-zero combining class in a row
    (built on first need: the table of such characters takes a tenth of a second)."""
    marks = [c for c in range(sys.maxunicode + 1) if unicodedata.combining(chr(c))]
    ranges: list[list[int]] = []
    for c in marks:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    members = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )
    return re.compile(f"[{members}]{{{MAX_COMBINING_RUN + 1},}}")


def _stream_safe(text: str) -> str:
    """Text whose runs of combining marks are at most MAX_COMBINING_RUN long, a CGJ put
    after every MAX_COMBINING_RUN of a longer run (UAX #15's stream-safe format). NFC
    sorts a run of marks by combining class with an insertion sort: 200 000 marks in
    reverse class order took 80 s; runs this short cost nothing, and no text has longer
    ones but an attack (or "zalgo" text)."""

    def split(m: re.Match[str]) -> str:
        run = m.group()
        step = MAX_COMBINING_RUN
        return _CGJ.join(run[i : i + step] for i in range(0, len(run), step))

    return long_mark_run().sub(split, text)


def normalise(text: str) -> str:
    """NFC, one newline convention, no invisible or control characters; at most
    MAX_TEXT_CHARS characters (cut before the work, so a 25 MB part costs what 1 MB does)."""
    if len(text) > MAX_TEXT_CHARS + _CAP_MARGIN:
        text = text[: MAX_TEXT_CHARS + _CAP_MARGIN]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", _stream_safe(text))
    text = text.translate(_INVISIBLE)
    text = _CONTROL.sub("", text)
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
    return text


# A tag, for the plain fallback: "<" to the next ">" with no "<" between (a "<" starts the
# next attempt, so no character is scanned twice; "[^>]{0,2000}" rescanned 2000 per "<").
_TAG = re.compile(r"<[^<>]{0,2000}>")
_TAG_NAME = re.compile(r"</?\s*([A-Za-z][A-Za-z0-9]*)")
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)
# Tags that end a line of text in the plain fallback (others are a space).
# Line breaks with only spaces between: one blank line in the plain fallback.
_BLANK_RUN = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_BLOCK_TAGS = frozenset(
    (
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    )
)
# libxml2 stops building the tree this deep (without XML_PARSE_HUGE) and drops the rest of
# the document without an exception: text after 255 nested elements was lost.
_PARSER_DEPTH = 255
# inscriptis lays out ~50 000 elements a second: a document with more is converted by the
# plain pass (a 25 MB part of "<p>x" would have taken two minutes).
MAX_HTML_ELEMENTS = 50_000
# HTML read at all: past this, markup cannot add to a body capped at MAX_TEXT_CHARS that
# anyone reads (the parser then sees a document cut short, which it recovers from).
MAX_HTML_CHARS = 4 * MAX_TEXT_CHARS
# An image inlined as a data: URI is not text: its payload is dropped before the cap, so
# the text after a large inline image is still read.
_DATA_URI = re.compile(r"(data:[\w/+.-]{0,100};base64,)[A-Za-z0-9+/=\s]{256,}+", re.IGNORECASE)


def _tree_depth(tree: lxml.html.HtmlElement) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        element, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in element)
    return deepest


def _truncated(parser: lxml.html.HTMLParser, tree: lxml.html.HtmlElement) -> bool:
    """Whether libxml2 gave up part way (its depth limit), so the tree lacks the rest."""
    if any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log):
        return True
    return _tree_depth(tree) >= _PARSER_DEPTH


def plain_html_to_text(html: str) -> str:
    """HTML → text without a tree, in one pass over the tags: for HTML the parser cannot
    build whole (nested past its depth limit). Every piece of text is kept; block tags
    end a line, links are kept as ``(url)`` where the tag stands."""
    pieces: list[str] = []
    pos = 0
    for m in _TAG.finditer(html):
        pieces.append(html[pos : m.start()])
        pos = m.end()
        tag = m.group()
        name = _TAG_NAME.match(tag)
        lowered = name.group(1).lower() if name else ""
        if lowered == "a" and not tag.startswith("</"):
            href = _HREF.search(tag)
            target = next((g for g in href.groups() if g), "") if href else ""
            target = target[len("mailto:") :] if target.lower().startswith("mailto:") else target
            pieces.append(f" ({_html.unescape(target)}) " if target else " ")
        else:
            pieces.append("\n" if lowered in _BLOCK_TAGS else " ")
    pieces.append(html[pos:])
    return _BLANK_RUN.sub("\n\n", _html.unescape("".join(pieces)))


def html_to_text(html: str) -> str:
    """HTML → readable text by inscriptis, links kept as ``text (url)``; HTML the parser
    cannot build whole (nested too deep) or too big to lay out (more than
    MAX_HTML_ELEMENTS elements) by ``plain_html_to_text``, so no text is lost and the
    time stays linear."""
    if len(html) > MAX_HTML_CHARS:
        html = _DATA_URI.sub(r"\1", html)[:MAX_HTML_CHARS]
    if not html.strip():
        return ""
    parser = lxml.html.HTMLParser()
    try:
        tree = lxml.html.fromstring(html, parser=parser)
    except (etree.ParserError, ValueError):
        return _TAG.sub(" ", html)
    many = next(itertools.islice(tree.iter(), MAX_HTML_ELEMENTS, None), None) is not None
    if many or _truncated(parser, tree):
        return plain_html_to_text(html)
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
