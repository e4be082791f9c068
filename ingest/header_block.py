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

# RFC 5322 field-name: printable US-ASCII except ":" (no space, so "Subject : x", which
# the stdlib does not read as a field, is ambiguous too).
_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")
_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|$)")
# Refuse to scan past this many bytes of headers: the listener's size cap bounds the
# message, this bounds the work (a header block this long is malformed anyway).
MAX_HEADER_BYTES = 1024 * 1024


def header_block_problem(raw: bytes, strict: bool = True) -> str | None:
    """A short reason when ``raw``'s header block can be read two ways, else None.

    ``strict`` refuses every bare CR or LF in the header block (SMTP, where lines end in
    CRLF); otherwise a block whose lines all end in LF passes (a file on disk).
    """
    terminators: set[bytes] = set()
    position = 0
    first = True
    end = min(len(raw), MAX_HEADER_BYTES)
    while position < end:
        match = _LINE.match(raw, position)
        assert match is not None  # the pattern matches the empty string
        line, terminator = match.group(1), match.group(2)
        position = match.end()
        if terminator == b"\r":
            return "bare CR in the header block"
        if terminator:
            terminators.add(terminator)
        if not line:
            break  # the blank line that ends the header block
        if line[:1] in (b" ", b"\t"):
            if first:
                return "the header block starts with a continuation line"
        elif not _FIELD.match(line):
            return "a line in the header block is not a header field"
        first = False
        if not terminator:
            break  # headers only, no body: readable one way
    else:
        if position >= MAX_HEADER_BYTES:
            return "the header block is too long"
    if b"\n" in terminators and (strict or b"\r\n" in terminators):
        return "bare LF in the header block"
    return None
