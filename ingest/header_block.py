"""Is the header block readable one way only?

Python's parser ends a line at CR, LF or CRLF; dkimpy (and most MTAs) end it at CRLF or
LF. A bare CR inside a header therefore lets one reader see a ``From:`` or a blank line
that another reader folds into the previous header: the DKIM verifier checks one From,
the gate decides on another. The same split opens with a line that is neither a field nor
a continuation (the stdlib starts the body there, others read on), and with a line
before the blank one that is folded onto nothing.

A header block with any of these is never authenticated: the SMTP listener refuses it at
the end of DATA (``strict``: any bare CR or LF, as Postfix's ``smtpd_forbid_bare_newline``),
and analysis, which also reads files written with one platform's line endings, holds it
(uniform LF is unambiguous there; mixing terminators or a bare CR is not).
"""

from __future__ import annotations

import re

# A blank line under the most liberal reading (a lone CR ends a line too): where the
# first reader to finish the header block finishes it.
_BLANK = re.compile(rb"(?>\r\n|\r|\n)(?>\r\n|\r|\n)")  # CRLF is never split
_BARE_CR = re.compile(rb"\r(?!\n)")
_BARE_LF = re.compile(rb"(?<!\r)\n")
# A line that is neither an RFC 5322 field (name: printable US-ASCII except ":", so
# "Subject : x", which the stdlib does not read as a field, counts) nor a continuation.
_NOT_A_FIELD = re.compile(rb"(?m)^(?![\x21-\x39\x3b-\x7e]+:|[ \t])")
# Refuse to scan past this many bytes of headers: the listener's size cap bounds the
# message, this bounds the work (a header block this long is malformed anyway).
MAX_HEADER_BYTES = 256 * 1024


def header_block_problem(raw: bytes, strict: bool = True) -> str | None:
    """A short reason when ``raw``'s header block can be read two ways, else None.

    ``strict`` refuses every bare CR or LF in the header block (SMTP, where lines end in
    CRLF); otherwise a block whose lines all end in LF passes (a file on disk). Every
    check is one regular-expression scan, linear in the header block.
    """
    blank = _BLANK.search(raw, 0, MAX_HEADER_BYTES + 4)
    if blank is None and len(raw) > MAX_HEADER_BYTES:
        return "the header block is too long"
    # the header lines with their terminators, up to (not including) the blank line
    block = raw[: blank.start() + len(_terminator(raw, blank.start()))] if blank else raw
    if blank is not None and raw[blank.start() : blank.end()] in (b"\r\r", b"\n\r"):
        return "bare CR in the header block"
    if _BARE_CR.search(block):
        return "bare CR in the header block"
    if block[:1] in (b" ", b"\t"):
        return "the header block starts with a continuation line"
    lines = block[:-1] if block.endswith(b"\n") else block  # no empty "line" after the last
    if lines and _NOT_A_FIELD.search(lines):
        return "a line in the header block is not a header field"
    if _BARE_LF.search(block) and (strict or b"\r\n" in block):
        return "bare LF in the header block"
    return None


def _terminator(raw: bytes, at: int) -> bytes:
    return b"\r\n" if raw[at : at + 2] == b"\r\n" else raw[at : at + 1]
