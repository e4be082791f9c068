"""Finding the quoted part of a reply, so extraction knows what the sender wrote now.

Quoted: lines starting with ``>``; everything from an attribution line ("On … wrote:")
or an Outlook ``-----Original Message-----`` / ``From: … Sent: …`` block to the end.
A forwarded message ("---------- Forwarded message ---------") is not quoted: the
sender is passing it on as part of the request.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable

# The start of a forwarded message (matched per line, or searched in a whole text). The
# indent is horizontal space only and the runs are possessive: searched in a whole text,
# "^\s*" would run from every line start through all the blank lines after it (quadratic
# on a body of line breaks), and a match could only start earlier, on blank lines.
FORWARD = re.compile(
    r"^[^\S\n]*+(?:-{3,}+\s*+Forwarded message\s*+-{3,}|Begin forwarded message:)",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_LINE = re.compile(r"^\s*[A-Za-z][A-Za-z-]{0,30}:\s")
_ATTRIBUTION = re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE)
_OUTLOOK_FROM = re.compile(r"^\s*From:\s.+$", re.IGNORECASE)
_OUTLOOK_SENT = re.compile(r"^\s*(Sent|Date):\s.+$", re.IGNORECASE)


def quoted_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    lines = text.splitlines(keepends=True)
    offsets = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line)
    in_forward_headers = False
    for i, line in enumerate(lines):
        stripped = line.rstrip("\n")
        if FORWARD.match(stripped):
            in_forward_headers = True
            continue
        if in_forward_headers:
            # The header block of a forwarded message is part of what is passed on.
            if _HEADER_LINE.match(stripped):
                continue
            in_forward_headers = False
        tail_starts = (
            _ATTRIBUTION.match(stripped)
            or _ORIGINAL.match(stripped)
            or (
                _OUTLOOK_FROM.match(stripped)
                and i + 1 < len(lines)
                and _OUTLOOK_SENT.match(lines[i + 1].rstrip("\n"))
            )
        )
        if tail_starts:
            spans.append((offsets[i], len(text)))
            break
        if stripped.lstrip().startswith(">"):
            spans.append((offsets[i], offsets[i] + len(line)))
    return _merge(spans)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def in_spans(position: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= position < end for start, end in spans)


class SpanIndex:
    """Character spans asked about many times: ``position in index`` and ``overlaps``
    answer as ``in_spans`` and a scan of the spans do, by bisection. A body of thousands
    of quoted lines asked about for each of thousands of identifiers was quadratic."""

    def __init__(self, spans: Iterable[tuple[int, int]]) -> None:
        spans = list(spans)
        merged = _merge([(start, end) for start, end in spans if start < end])
        self.starts = [start for start, _ in merged]
        self.ends = [end for _, end in merged]
        # an empty span holds no position, but a scan counts it as overlapping any range
        # it lies strictly inside
        self.points = sorted(start for start, end in spans if start == end)

    def __contains__(self, position: int) -> bool:
        i = bisect_right(self.starts, position) - 1
        return i >= 0 and position < self.ends[i]

    def overlaps(self, start: int, end: int) -> bool:
        """``any(start < e and s < end for s, e in spans)``, for ``start < end`` and
        spans with ``s <= e``."""
        i = bisect_right(self.ends, start)
        if i < len(self.starts) and self.starts[i] < end:
            return True
        j = bisect_right(self.points, start)
        return j < len(self.points) and self.points[j] < end
