"""Facts about a law-enforcement request: which legal process it is, what period and
deadline it sets, who sent it and under which case number.

The desk routes and answers requests by these facts: a 2703(d) order is handled
differently from a subpoena; a 2705(b) order means the user may not be notified; Twilio
preserves records for at most 90 days, so a longer preservation request needs a
different answer; the agent's name, phone and email are where that answer goes. Each
finding is a ``Fact`` with its span in the text and the recognizer and pattern that
found it, so a reviewer can check it against the letter.

spaCy (a blank English pipeline: tokenizer plus Matcher patterns) finds the words that
name legal process and the cue words before deadlines and case numbers, across the line
breaks mail clients insert. Regular expressions read the shapes tokenizers break apart:
dates, statute citations ("2703(d)" is one token, "2703 (d)" three) and case numbers
("26-GJ-3318" is split at its letters). ``phonenumbers`` reads the agent's phone.

Quoted earlier mail is ignored: it says what was asked before, not what is asked now.
Only these facts are extracted. Nothing about the account holder (the offence alleged,
health, politics, religion, ethnicity, sexuality) is recorded, not even as context.
"""

from __future__ import annotations

import bisect
import calendar
import itertools
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

import phonenumbers
from spacy.language import Language
from spacy.tokens import Doc

from classifiers.identifiers import (
    PhoneBudget,
    phone_matches,
    region_for_domain,
    requester_regions,
)
from classifiers.nlp import MAX_EXTRACT_CHARS, GatedMatcher, body_doc, load_ner, shared_nlp
from classifiers.quotes import SpanIndex

FactKind = Literal[
    "legal_process",
    "time_period",
    "deadline",
    "agent_name",
    "agent_title",
    "agency",
    "agent_phone",
    "agent_email",
    "case_number",
    "preservation_days_over_limit",
]

LEGAL_PROCESSES = (
    "subpoena",
    "court_order",
    "2703d_order",
    "search_warrant",
    "preservation_2703f",
    "emergency_2702b8",
    "mlat",
    "letter_rogatory",
    "nondisclosure_2705b",
)

# Twilio keeps preserved records for 90 days (one 90-day extension on request).
PRESERVATION_LIMIT_DAYS = 90
OPEN = ".."

# Numeric dates from these countries are day-first (01/02/2026 is 1 February).
_DAY_FIRST_SUFFIXES = frozenset({"uk", "au", "nz", "ie"})


@dataclass(frozen=True)
class Fact:
    """One fact about the request, with the provenance a reviewer needs.

    ``text[start:end] == raw`` always holds. The one fact not read from the text, the
    sender's address used as the agent's email when the signature gives none, has
    ``raw == ""`` and ``start == end == 0`` (recognizer ``envelope``).
    """

    kind: FactKind
    value: str
    raw: str
    start: int
    end: int
    confidence: float
    recognizer: str
    pattern: str


@dataclass(frozen=True)
class RequestFacts:
    """All facts found in one request, in text order, with the questions asked of them."""

    facts: tuple[Fact, ...] = ()

    def of(self, kind: FactKind) -> tuple[Fact, ...]:
        return tuple(f for f in self.facts if f.kind == kind)

    def _first(self, kind: FactKind) -> str | None:
        found = self.of(kind)
        return found[0].value if found else None

    @property
    def legal_process(self) -> tuple[str, ...]:
        return tuple(f.value for f in self.of("legal_process"))

    @property
    def time_periods(self) -> tuple[str, ...]:
        return tuple(f.value for f in self.of("time_period"))

    @property
    def deadline(self) -> str | None:
        """The earliest deadline set (ISO dates sort as strings)."""
        values = [f.value for f in self.of("deadline")]
        return min(values) if values else None

    @property
    def case_numbers(self) -> tuple[str, ...]:
        return tuple(f.value for f in self.of("case_number"))

    @property
    def agent_name(self) -> str | None:
        return self._first("agent_name")

    @property
    def agent_title(self) -> str | None:
        return self._first("agent_title")

    @property
    def agency(self) -> str | None:
        return self._first("agency")

    @property
    def agent_phone(self) -> str | None:
        return self._first("agent_phone")

    @property
    def agent_email(self) -> str | None:
        return self._first("agent_email")

    @property
    def preservation_days_over_limit(self) -> int | None:
        value = self._first("preservation_days_over_limit")
        return int(value) if value is not None else None

    @property
    def is_preservation(self) -> bool:
        return "preservation_2703f" in self.legal_process

    @property
    def is_emergency(self) -> bool:
        return "emergency_2702b8" in self.legal_process


# -- small text helpers --------------------------------------------------------------------


def _mask(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """Blank the spans, keeping offsets and line breaks, so nothing inside them matches
    and no match runs through them."""
    chars = list(text)
    for start, end in spans:
        for i in range(max(0, start), min(end, len(chars))):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


_TERMINATOR = re.compile(r"[.!?;](?=\s|$)|\n[ \t]*\n")
_WORD_BEFORE = re.compile(r"[\w.]*$")


def _is_abbreviation(text: str, dot: int) -> bool:
    """Whether the period at ``dot`` ends an abbreviation ("U.S.C.", "Cal.", "No.", "E.")
    rather than a sentence."""
    m = _WORD_BEFORE.search(text, max(0, dot - 12), dot)
    word = m.group() if m else ""
    return bool(word) and ("." in word or len(word) == 1 or (len(word) <= 4 and word[0].isupper()))


def _breaks(text: str, lo: int, hi: int) -> Iterator[re.Match[str]]:
    """Sentence ends between ``lo`` and ``hi``."""
    for m in _TERMINATOR.finditer(text, lo, hi):
        if not (m.group() == "." and _is_abbreviation(text, m.start())):
            yield m


def _sentence_before(text: str, pos: int, limit: int = 300) -> str:
    """The sentence up to ``pos`` (at most ``limit`` characters of it)."""
    lo = max(0, pos - limit)
    cut = lo
    for m in _breaks(text, lo, pos):
        cut = m.end()
    return text[cut:pos]


def _sentence_end(text: str, pos: int, limit: int = 300) -> tuple[int, str]:
    """Where the sentence containing ``pos`` ends, and its final mark ("" at a blank line
    or the limit)."""
    hi = min(len(text), pos + limit)
    m = next(_breaks(text, pos, hi), None)
    if m is None:
        return hi, ""
    return m.start(), m.group().strip()


def _sentence_after(text: str, pos: int, limit: int = 120) -> str:
    return text[pos : _sentence_end(text, pos, limit)[0]]


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _add_business_days(day: date, count: int) -> date:
    while count > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            count -= 1
    return day


def _span_back(day: date, count: int, unit: str) -> date:
    """The day ``count`` units before ``day``."""
    unit = unit.lower().rstrip("s")
    if unit == "week":
        return day - timedelta(weeks=count)
    if unit == "month":
        return _add_months(day, -count)
    if unit == "year":
        return _add_months(day, -12 * count)
    return day - timedelta(days=count)


def _span_days(day: date, count: int, unit: str) -> int:
    """How many days ``count`` units last, counted from ``day``."""
    unit = unit.lower().rstrip("s")
    if unit == "month":
        return (_add_months(day, count) - day).days
    if unit == "year":
        return (_add_months(day, 12 * count) - day).days
    if unit == "week":
        return 7 * count
    if unit == "hour":
        return math.ceil(count / 24)
    return count


# -- dates ---------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "january jan",
            "february feb",
            "march mar",
            "april apr",
            "may",
            "june jun",
            "july jul",
            "august aug",
            "september sept sep",
            "october oct",
            "november nov",
            "december dec",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH_NAMES = "|".join(sorted(_MONTHS, key=len, reverse=True))
_MONTH = rf"(?P<month>{_MONTH_NAMES})(?![a-z])\.?"
_WEEKDAY = (
    r"(?:(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"mon|tues|tue|wed|thurs|thur|thu|fri|sat|sun)(?![a-z])\.?,?\s+)?"
)
_DAY = r"(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
_YEAR = r"(?P<year>(?:19|20)\d\d)(?!\d)"

_DATE_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("MDY_TEXT", re.compile(rf"\b{_WEEKDAY}{_MONTH}\s*{_DAY}(?:,\s*|\s+){_YEAR}", re.I)),
    ("DMY_TEXT", re.compile(rf"\b{_WEEKDAY}{_DAY}(?:\s+of)?[\s-]+{_MONTH}[\s,-]+{_YEAR}", re.I)),
    (
        "ISO",
        re.compile(
            r"(?<![\w./-])(?P<year>(?:19|20)\d\d)(?P<sep>[-/.])(?P<month>[01]?\d)(?P=sep)"
            r"(?P<day>[0-3]?\d)(?!\d|[-/.]\d)"
        ),
    ),
    (
        "NUMERIC",
        re.compile(
            r"(?<![\w./-])(?P<a>[0-3]?\d)(?P<sep>[-/.])(?P<b>[0-3]?\d)(?P=sep)"
            r"(?P<year>(?:19|20)?\d\d)(?!\d|[-/.]\d)"
        ),
    ),
    ("MONTH_YEAR", re.compile(rf"\b{_MONTH},?\s+{_YEAR}", re.I)),
)
# A time of day after a date ("March 31, 2026 23:59 UTC", "2026-03-31T23:59:59Z") is
# part of it: a range reads through it.
_TIME = re.compile(
    r"T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|,?\s*(?:at\s+)?\d{1,2}:\d{2}(?::\d{2})?(?:\s*[ap]\.?m\.?)?"
    r"(?:\s*(?:UTC|GMT|Z|[ECMPA][SD]T|BST|CES?T|AES?T|AEDT|NZS?T|NZDT)\b)?",
    re.I,
)
# quotes.py reads an "On … wrote:" attribution on one line; mail clients wrap it onto two.
_WRAPPED_ATTRIBUTION = re.compile(r"^[ \t]*On\b[^\n]{0,300}\n[^\n]{0,300}\bwrote:[ \t]*$", re.M)
# The message's own date lines ("Date: …", "Sent: …") are not periods or deadlines.
_DATE_LINE = re.compile(r"^[ \t]*(?:Date|Dated|Sent)[ \t]*:.*$", re.I | re.M)


@dataclass(frozen=True)
class _Date:
    start: int
    end: int
    first: date
    last: date
    pattern: str
    confidence: float

    @property
    def is_day(self) -> bool:
        return self.first == self.last


def _numeric_date(m: re.Match[str], day_first: bool) -> tuple[date, str, float] | None:
    """A numeric date read the sender's way (day-first for UK, AU, NZ, IE senders), or
    the other way when that is the only valid reading, with less confidence."""
    a, b = int(m.group("a")), int(m.group("b"))
    year = int(m.group("year"))
    if year < 100:
        year += 2000
    readings = [("NUMERIC_DMY", b, a), ("NUMERIC_MDY", a, b)]
    if not day_first:
        readings.reverse()
    for rank, (pattern, month, day) in enumerate(readings):
        try:
            value = date(year, month, day)
        except ValueError:
            continue
        unambiguous = a > 12 or b > 12 or a == b
        confidence = 0.85 if unambiguous else 0.75
        return value, pattern, confidence if rank == 0 else 0.6
    return None


def _parse_date(form: str, m: re.Match[str], day_first: bool) -> _Date | None:
    try:
        if form == "NUMERIC":
            numeric = _numeric_date(m, day_first)
            if numeric is None:
                return None
            value, pattern, confidence = numeric
            return _Date(m.start(), m.end(), value, value, pattern, confidence)
        year = int(m.group("year"))
        month_text = m.group("month").lower()
        month = _MONTHS[month_text] if month_text in _MONTHS else int(month_text)
        if form == "MONTH_YEAR":
            last = calendar.monthrange(year, month)[1]
            return _Date(
                m.start(), m.end(), date(year, month, 1), date(year, month, last), form, 0.8
            )
        value = date(year, month, int(m.group("day")))
    except ValueError:
        return None
    return _Date(m.start(), m.end(), value, value, form, 0.95 if form == "ISO" else 0.9)


def _find_dates(text: str, day_first: bool) -> list[_Date]:
    """Every date in the text, longest reading first where readings overlap ("1 January
    2026" is one date, not also "January 2026")."""
    found: list[_Date] = []
    for form, regex in _DATE_FORMS:
        for m in regex.finditer(text):
            parsed = _parse_date(form, m, day_first)
            if parsed is None:
                continue
            time = _TIME.match(text, parsed.end)
            if time and time.end() > parsed.end:
                parsed = _Date(
                    parsed.start,
                    time.end(),
                    parsed.first,
                    parsed.last,
                    parsed.pattern,
                    parsed.confidence,
                )
            found.append(parsed)
    found.sort(key=lambda d: (d.start, d.start - d.end))
    kept: list[_Date] = []
    for d in found:
        if not kept or d.start >= kept[-1].end:
            kept.append(d)
    return kept


# -- numbers and durations -----------------------------------------------------------------

_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fourteen": 14,
    "fifteen": 15,
    "twenty": 20,
    "twenty-one": 21,
    "thirty": 30,
    "forty-five": 45,
    "sixty": 60,
    "ninety": 90,
    "one hundred eighty": 180,
    "one hundred and eighty": 180,
}
_NUMBER_ALTERNATIVES = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_NUM = (
    rf"(?P<n>\d{{1,4}}|{_NUMBER_ALTERNATIVES})(?!\w)"
    r"(?:\s*\(\s*(?P<paren>\d{1,4})\s*\))?"
)


def _number(m: re.Match[str]) -> int:
    """Reads "ten (10)" as its digits, "ten" and "10" as themselves."""
    if m.group("paren"):
        return int(m.group("paren"))
    n = m.group("n").lower()
    return int(n) if n.isdigit() else _NUMBER_WORDS[_collapse(n)]


# -- time periods --------------------------------------------------------------------------

_CONNECTOR = re.compile(
    r"\s*(?:\([^()\n]{1,30}\)\s*)?"
    r"(?P<word>to|through|thru|until|till|up\s+to|and|[-–—]{1,2})"
    r"(?:\s+and\s+including)?\s*",
    re.I,
)
_BETWEEN = re.compile(r"\bbetween\s+(?:the\s+dates\s+(?:of\s+)?)?$", re.I)
# The leading space is possessive and the second branch has none of its own: as
# "\s*(?:…|\s*…)" the two runs split a long stretch of spaces every way (quadratic).
_OPEN_END = re.compile(
    r"\s*+(?:(?:to|through|thru|until|till|up\s+to|[-–—])\s+(?:and\s+including\s+)?(?:the\s+)?"
    r"(?:date\s+of\s+(?:this|the|our)\s+(?:request|letter|order|subpoena|warrant|notice|e-?mail)"
    r"|present(?:\s+day|\s+date)?|current\s+date|date|today|now)"
    r"|(?:and\s+)?(?:onwards?|forward|thereafter))\b",
    re.I,
)
_SINCE = re.compile(
    r"\b(?:since|on\s+or\s+after|beginning(?:\s+on)?|starting(?:\s+on|\s+from)?|"
    r"commencing(?:\s+on)?)\s+(?:the\s+)?$",
    re.I,
)
_FROM_CREATION = re.compile(
    r"\bfrom\s+(?:the\s+)?(?:account(?:'s|’s)?\s+)?(?:creation|inception|opening|registration)"
    r"(?:\s+of\s+the\s+account)?\s+(?:to|through|thru|until|till)\s+(?:the\s+)?"
    r"(?:(?P<present>present(?:\s+day)?|date|today|now|current\s+date)\b)?",
    re.I,
)
_PARTIAL_START = re.compile(
    rf"(?:\b{_MONTH}\s+(?P<day>[0-3]?\d)(?:st|nd|rd|th)?"
    r"|(?<![\w./-])(?P<dday>[0-3]?\d)(?:st|nd|rd|th)?)"
    r"\s*(?P<word>to|through|thru|until|till|and|[-–—]{1,2})\s*$",
    re.I,
)
_UNIT = r"(?P<unit>days?|weeks?|months?|years?)"
_RELATIVE = re.compile(
    rf"\b(?:past|last|previous|preceding|prior)\s+{_NUM}[\s-]*(?:calendar\s+)?{_UNIT}\b", re.I
)
_RELATIVE_BEFORE = re.compile(
    rf"\b{_NUM}\s+{_UNIT}\s+(?:prior\s+to|before|preceding)\s+"
    r"(?:the\s+date\s+of\s+(?:this|the)\s+(?:request|letter)|today|receipt|this\s+request)",
    re.I,
)
_RELATIVE_ONE = re.compile(r"\b(?:past|previous|preceding)\s+(?P<unit>week|month|year)\b", re.I)


# -- deadlines -----------------------------------------------------------------------------

# Between a deadline cue and its date: "5:00 p.m. EST on", "the close of business on".
_DEADLINE_GAP = re.compile(
    r"[\s:,–—-]*(?:(?:the\s+)?(?:close\s+of\s+business|end\s+of\s+(?:business|day)|cob|eod|"
    r"noon|midnight|\d{1,2}(?::\d{2}(?:\s*[ap]\.?m\.?)?|\s*[ap]\.?m\.?)"
    r"(?:\s*(?:[ECMP][SD]T|UTC|GMT|local\s+time))?)[\s,]*)?(?:(?:on|of)\s+)?",
    re.I,
)
# "\s*(?P<business>…)?\s*" split a long stretch of spaces between its two runs every way;
# here each run is possessive and the second belongs to the optional word.
_DURATION = re.compile(
    rf"[\s:]*(?:the\s+)?{_NUM}\s*+(?:(?P<business>business|working|calendar)\s*+)?"
    r"(?P<unit>days?|hours?|weeks?)\b",
    re.I,
)
# A deadline is about the platform answering: "by <date>" counts in a sentence with one of
# these verbs, "within 10 days" also in one that asks ("Please … within 10 days").
_RESPONSE = re.compile(
    r"\b(?:respond|response|responses|reply|produce|produced|production|provide|provided|"
    r"return|returned|comply|compliance|furnish|disclose|supply|send|confirm|acknowledge|"
    r"answer|deliver)\b",
    re.I,
)
_ASKING = re.compile(
    r"\b(?:please|kindly|we\s+(?:request|ask)|you\s+(?:must|are\s+required))\b", re.I
)


# -- preservation --------------------------------------------------------------------------
_FOR_DURATION = re.compile(
    r"\bfor\s+(?:a\s+(?:period|total)\s+of\s+|an?\s+(?:additional|further|extended)\s+"
    r"(?:period\s+of\s+)?|(?:the\s+)?(?:next|following)\s+|at\s+least\s+)?"
    rf"{_NUM}[\s-]*{_UNIT}\b",
    re.I,
)
_PRESERVE_WORDS = re.compile(r"\b(?:preserv\w*|retain\w*|retention|extension|extend\w*)\b", re.I)


# -- legal process -------------------------------------------------------------------------

_STATUTE = re.compile(
    r"(?<![\d.])(?P<section>270[235])\s*(?:\(\s*(?P<sub>[a-h])\s*\)|\s(?P<bare>[a-h])(?![\w(]))"
    r"(?:\s*\(\s*(?P<para>\d{1,2})\s*\))?",
    re.I,
)
_STATUTE_C_AND_D = re.compile(
    r"(?<![\d.])2703\s*\(\s*c\s*\)(?:\s*\(\s*\d\s*\))?\s*(?:&|and|,)\s*\(\s*d\s*\)", re.I
)
_D_ORDER = re.compile(r"\b[dD][- ]?[Oo]rders?\b")
_NEGATED = re.compile(
    r"(?:\bnot\s+(?:an?\s+|the\s+)?|\bnon[-\s]?|\bno\s+|\bwithout\s+(?:an?\s+|the\s+)?|"
    r"\bin\s+lieu\s+of\s+(?:an?\s+)?)$",
    re.I,
)
# Process the sender only means to get ("a subpoena will follow", "pending a court
# order") is not the process the request brings.
_PROSPECTIVE_BEFORE = re.compile(
    r"\b(?:will(?!\s+(?:find|see|note))|pending|until|anticipat\w*|intend\w*|seek(?:s|ing)?|"
    r"obtain(?:s|ing)?|pursu(?:e|es|ing)|await(?:s|ing)?|(?:plan|plans|planning|expect|expects)"
    r"\s+to|prepar(?:e|es|ing)|apply(?:ing)?\s+for|in\s+the\s+process\s+of)\b[^.;:,]{0,50}$",
    re.I,
)
_PROSPECTIVE_AFTER = re.compile(
    r"^[\s,]*(?:[\w()]+\s+){0,2}?(?:(?:will|may|might|would|to)\s+(?:be\s+(?:sought|prepared|"
    r"obtained|served|sent|submitted|issued|required|needed|necessary|pursued|forthcoming)|"
    r"follow)|(?:is|are)\s+(?:forthcoming|being\s+(?:sought|prepared|obtained|drafted)))\b",
    re.I,
)
# A bare "the warrant" may be an arrest warrant: when its sentence is about an arrest,
# or the message names an arrest warrant anywhere, only "search warrant" counts.
_ARREST = re.compile(r"\b(?:arrest|fugitive|bench)\b", re.I)
_ARREST_WARRANT = re.compile(
    r"\b(?:arrest|bench|fugitive)\s+warrants?\b|\bwarrants?\s+(?:for\s+(?:\w+\s+){0,2}|of\s+)arrest\b",
    re.I,
)
_NOT_SEARCH_WARRANT_AFTER = re.compile(
    r"\s+(?:for\s+(?:\w+\s+){0,2}arrest|of\s+arrest|summary|check|squad|unit|division)\b", re.I
)
# A generic "court order" near a specific one names the same document.
_SPECIFIC_ORDERS = frozenset({"2703d_order", "nondisclosure_2705b"})


# -- case numbers --------------------------------------------------------------------------

_CASE_MARKER = re.compile(r"[ \t]*(?:(?:numbers?|nos?|nr|num)\b\.?)?[ \t]*[.:#]{0,2}[ \t]*", re.I)
_CASE_VALUE = re.compile(
    r"(?:[A-Z]{2,6}[ ](?=[A-Za-z0-9/-]*\d))?"  # an agency prefix: "CRM 2026/118442"
    r"[A-Za-z0-9](?:[A-Za-z0-9]|[-/._](?=[A-Za-z0-9])|:(?=\d))*"
)
# "Looks like a host name": a run of letters, a dot, letters. The run is read from its
# start and possessively ("[A-Za-z]{2,}\." tried at every letter of a long run without a
# dot was quadratic); only whether there is a match is asked.
_HOSTNAME = re.compile(r"(?<![A-Za-z])[A-Za-z]{2,}+\.[A-Za-z]{2}|^www", re.I)
_STATUTE_AFTER = re.compile(r"\s*(?:U\.?\s?S\.?\s?C|C\.?\s?F\.?\s?R|Stat\b|§|CFR)", re.I)


# -- signature blocks ----------------------------------------------------------------------

# Rank and title words that may open a name line ("Special Agent", "Det. Sgt.", "DC").
_RANK_WORDS = _words(
    "special supervisory senior federal agent officer detective det sergeant sgt corporal "
    "cpl lieutenant lt captain capt constable cst inspector insp investigator inv trooper "
    "tpr deputy dep ofc tfo sa ssa dc ds di dci dsu pc ps marshal commander cmdr major "
    "maj chief gendarme adjudant brigadier task force analyst ausa attorney prosecutor "
    "diversion cap caporal sergent"
)
_TITLE_WORDS = _words(
    "agent officer detective det investigator analyst sergeant sgt constable cst "
    "inspector insp attorney counsel prosecutor director chief supervisor manager "
    "specialist coordinator liaison lieutenant lt captain capt commander deputy trooper "
    "corporal cpl examiner paralegal marshal superintendent commissioner ssa tfo ausa "
    "attache attaché enquêteur enquêteuse caporal sergent"
)
_AGENCY_STRONG = _words(
    "police bureau sheriff sheriff's sheriff’s constabulary gendarmerie agency service "
    "services department dept administration marshals patrol garda polizei policía "
    "policia carabinieri"
)
_AGENCY_WEAK = _words(
    "office division unit force command section squad directorate commission "
    "investigations crimes operations headquarters"
)
# Agency initials, counted only when written in capitals.
_AGENCY_ACRONYMS = _words(
    "FBI DEA ATF HSI USSS USMS NCIS RCMP AFP NCA NYPD LAPD CBP DPS CID OSI DHS DOJ PSNI "
    "OPP GMP MPS BKA"
)
_NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_LABEL_LINE = re.compile(r"^[\w .'’/()&+-]{1,30}:\s")
_ADDRESS_LINE = re.compile(
    r"^\d|\b\d{5}(?:-\d{4})?\b|\b(?:street|st|avenue|ave|road|rd|plaza|boulevard|blvd|suite|"
    r"ste|floor|drive|dr|lane|way|p\.?\s?o\.?\s+box)\b\.?(?:,|\s|$)",
    re.I,
)
_PART_SPLIT = re.compile(r"\s*(?:,|\||;|\s[-–—]\s)\s*")
_STOP_LINE = re.compile(
    r"^\s*(?:confidential|notice|warning|disclaimer|this\s+(?:e-?mail|message|communication)|"
    r"-{3,}|_{3,}|sent\s+from\s+my|(?:law\s+enforcement\s+)?sensitive)",
    re.I,
)
_EMAIL = re.compile(
    r"(?<![\w.+'-])[A-Za-z0-9][A-Za-z0-9._%+'-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}"
    r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b"
)
_FAX = re.compile(r"\bfax\b|\bfacsimile\b", re.I)
# How much of a signature block its phone (and the statistical NER's names) are looked
# for in, and how much of the phone's line before it is read for "fax".
_SIGNATURE_CHARS = 2_000


@dataclass(frozen=True)
class _Line:
    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _lines(text: str, start: int, end: int) -> Iterator[_Line]:
    """Non-empty lines of ``text[start:end]``, trimmed, with absolute offsets."""
    pos = start
    for line in text[start:end].splitlines(keepends=True):
        body = line.rstrip("\r\n")
        stripped = body.strip()
        if stripped:
            yield _Line(pos + body.index(stripped), stripped)
        pos += len(line)


def _word(word: str) -> str:
    return word.strip(".,;:()[]").lower()


def _is_name_word(word: str) -> bool:
    if len(word) == 2 and word[0].isupper() and word[1] == ".":
        return True  # an initial
    core = word.replace("'", "").replace("’", "").replace("-", "")
    return word[0].isupper() and core.isalpha()


def _is_title(part: str) -> bool:
    words = [_word(w) for w in part.split()]
    return any(w in _TITLE_WORDS for w in words) and _agency_score(part) < 2


def _agency_score(part: str) -> int:
    score = 0
    for raw in part.split():
        word = _word(raw)
        if word in _AGENCY_STRONG or raw.strip(".,;:()") in _AGENCY_ACRONYMS:
            score = max(score, 2)
        elif word in _AGENCY_WEAK:
            score = max(score, 1)
    return score


def _is_contact_line(line: str) -> bool:
    return bool(
        "@" in line
        or "://" in line
        or _LABEL_LINE.match(line)
        or _ADDRESS_LINE.search(line)
        or sum(c.isdigit() for c in line) >= 4
    )


@dataclass(frozen=True)
class _Name:
    start: int
    end: int
    rank: tuple[int, int] | None
    rest: tuple[int, int] | None  # ", Special Agent" after the name


def _parse_name(line: _Line) -> _Name | None:
    """A name line: optional rank ("Special Agent", "Det. Sgt.", "DC 4471"), then two to
    four capitalised words or initials, optionally a suffix; a title may follow a comma."""
    if "@" in line.text or ":" in line.text or len(line.text) > 70:
        return None
    head, _, tail = line.text.partition(",")
    words = [(m.start(), m.group()) for m in re.finditer(r"\S+", head)]
    rank_end = 0
    for i, (_, w) in enumerate(words):
        if _word(w) in _RANK_WORDS:
            rank_end = i + 1
    if rank_end and not all(w[0].isupper() for _, w in words[:rank_end]):
        return None
    index = rank_end
    if index < len(words) and re.fullmatch(r"#?\d{1,7}", words[index][1]):
        index += 1  # a badge or collar number: "DC 4471 Hannah Okonjo"
    name = words[index:]
    while name and (
        _word(name[-1][1]) in _NAME_SUFFIXES or re.fullmatch(r"#?\d{1,7}", name[-1][1])
    ):
        name = name[:-1]
    if not 2 <= len(name) <= 4 or not all(_is_name_word(w) for _, w in name):
        return None
    if any(_word(w) in _TITLE_WORDS or _word(w) in _RANK_WORDS for _, w in name):
        return None
    if _agency_score(" ".join(w for _, w in name)) or not any(
        any(c.islower() for c in w) for _, w in name
    ):
        return None
    if not any(len(w.rstrip(".")) > 1 for _, w in name):
        return None
    start = line.start + name[0][0]
    end = line.start + name[-1][0] + len(name[-1][1].rstrip(","))
    rank = None
    if rank_end:
        last = words[rank_end - 1]
        rank = (line.start + words[0][0], line.start + last[0] + len(last[1]))
    rest = None
    if tail.strip():
        offset = len(head) + 1 + (len(tail) - len(tail.lstrip()))
        rest = (line.start + offset, line.end)
    return _Name(start, end, rank, rest)


def _parts(line: _Line) -> Iterator[tuple[int, int]]:
    """The comma/bar-separated parts of a line, as absolute spans."""
    pos = 0
    for m in _PART_SPLIT.finditer(line.text):
        if m.start() > pos:
            yield line.start + pos, line.start + m.start()
        pos = m.end()
    if pos < len(line.text):
        yield line.start + pos, line.end


# -- the extractor -------------------------------------------------------------------------

_Pattern = list[dict[str, Any]]
_GAP: dict[str, Any] = {"IS_SPACE": True, "OP": "*"}


def _seq(*parts: str | dict[str, Any]) -> _Pattern:
    """Token pattern for words in order, allowing the line breaks mail wraps insert."""
    pattern: _Pattern = []
    for part in parts:
        if pattern:
            pattern.append(_GAP)
        pattern.append({"LOWER": part} if isinstance(part, str) else part)
    return pattern


def _any(*words: str) -> dict[str, Any]:
    return {"LOWER": {"IN": list(words)}}


_WARRANT = _any("warrant", "warrants")
_ORDER = _any("order", "orders")
_DETERMINERS = _any(
    *sorted(
        _words(
            "a an the this that attached enclosed signed said our federal state sealed issued "
            "executed accompanying sca"
        )
    )
)

# label: (legal process, confidence, token patterns)
_PROCESS_PATTERNS: dict[str, tuple[str, float, list[_Pattern]]] = {
    "SUBPOENA": (
        "subpoena",
        0.9,
        [[_any("subpoena", "subpoenas", "subpœna", "subpœnas")]],
    ),
    "COURT_ORDER": (
        "court_order",
        0.85,
        [
            _seq("court", _ORDER),
            _seq("order", "of", _any("the", "this"), "court"),
            _seq(_any("production", "judicial"), _ORDER),
            _seq("ordonnance", "de", "communication"),
            _seq("it", "is", "hereby", "ordered"),
        ],
    ),
    "PEN_REGISTER_ORDER": ("court_order", 0.7, [_seq("pen", "register")]),
    "SEARCH_WARRANT": (
        "search_warrant",
        0.95,
        [
            _seq("search", _WARRANT),
            _seq("search", "and", "seizure", _WARRANT),
            _seq("stored", "communications", "act", _WARRANT),
        ],
    ),
    "DETERMINED_WARRANT": ("search_warrant", 0.7, [_seq(_DETERMINERS, _WARRANT)]),
    "PRESERVATION_REQUEST": (
        "preservation_2703f",
        0.9,
        [
            _seq("preservation", _any("request", "requests", "letter", "notice", "demand")),
            _seq("preservation", _any("extension", "renewal")),
            _seq(_any("request", "notice", "letter", "demand", "requirement"), "to", "preserve"),
            _seq(_any("extend", "extending", "renew", "renewing"), "the", "preservation"),
        ],
    ),
    "PRESERVE_IMPERATIVE": (
        "preservation_2703f",
        0.75,
        [
            _seq("please", "preserve"),
            _seq("you", "preserve"),
            _seq("you", "to", "preserve"),
            _seq("you", "immediately", "preserve"),
        ],
    ),
    "EMERGENCY_DISCLOSURE": (
        "emergency_2702b8",
        0.9,
        [
            _seq("emergency", "disclosure"),
            _seq("emergency", _any("data", "information"), "request"),
            _seq("emergency", "request"),
        ],
    ),
    "EXIGENT": ("emergency_2702b8", 0.7, [_seq("exigent", _any("circumstances", "request"))]),
    "MLAT": (
        "mlat",
        0.9,
        [
            [_any("mlat", "mlats")],
            _seq("mla", _any("request", "requests")),
            _seq("mutual", "legal", "assistance"),
        ],
    ),
    "LETTER_ROGATORY": (
        "letter_rogatory",
        0.9,
        [
            _seq(_any("letter", "letters"), "rogatory"),
            _seq("rogatory", _any("letter", "letters")),
            _seq("commission", "rogatoire"),
        ],
    ),
    "LETTER_OF_REQUEST": (
        "letter_rogatory",
        0.7,
        [_seq(_any("letter", "letters"), "of", "request")],
    ),
    "NONDISCLOSURE_ORDER": (
        "nondisclosure_2705b",
        0.9,
        [
            _seq("non", {"ORTH": {"IN": ["-", "‐", "–"]}, "OP": "?"}, "disclosure", _ORDER),
            _seq("nondisclosure", _ORDER),
            _seq(_ORDER, "of", "non", {"ORTH": "-", "OP": "?"}, "disclosure"),
            _seq("preclusion", "of", "notice"),
            _seq("gag", _ORDER),
        ],
    ),
}

# label: (confidence, token patterns). What follows each cue is read by regex.
_CUE_PATTERNS: dict[str, tuple[float, list[_Pattern]]] = {
    "RESPOND_BY": (
        0.9,
        [
            _seq(
                _any("respond", "response", "responses", "reply", "production", "return", "due"),
                "by",
            ),
            _seq("returnable", _any("on", "by")),
        ],
    ),
    "NO_LATER_THAN": (0.85, [_seq(_any("no", "not"), "later", "than"), [{"LOWER": "nlt"}]]),
    "ON_OR_BEFORE": (0.85, [_seq("on", "or", "before")]),
    "RETURN_DATE": (0.9, [_seq("return", "date"), _seq("due", _any("date", "on"))]),
    "DEADLINE": (0.85, [[{"LOWER": "deadline"}]]),
    "BY": (0.7, [[{"LOWER": "by"}]]),
    "WITHIN": (0.8, [[{"LOWER": "within"}]]),
    # The number may follow these directly: "FBI Case 26-1187", "Complaint 26-09871".
    "CASE_CUE": (
        0.9,
        [[_any("case", "cause", "docket", "complaint", "incident", "occurrence", "crn")]],
    ),
    "REFERENCE_CUE": (0.85, [[_any("reference", "ref", "ref.")]]),
    # These need "No.", "#", "Number" or ":" first: "Subpoena No. 26-GJ-3318".
    "NUMBERED_CUE": (
        0.85,
        [
            [
                _any(
                    *sorted(
                        _words(
                            "subpoena warrant order file matter investigation event report "
                            "request misc mag magistrate application control tracking"
                        )
                    )
                )
            ]
        ],
    ),
}
_DEADLINE_CUES = ("RESPOND_BY", "NO_LATER_THAN", "ON_OR_BEFORE", "RETURN_DATE", "DEADLINE", "BY")
_CASE_CUES = ("CASE_CUE", "REFERENCE_CUE", "NUMBERED_CUE")


def _build_nlp() -> tuple[Language, GatedMatcher, GatedMatcher]:
    nlp = shared_nlp()
    process = GatedMatcher(nlp.vocab)
    for label, (_, _, patterns) in _PROCESS_PATTERNS.items():
        process.add(label, patterns, greedy="LONGEST")
    cues = GatedMatcher(nlp.vocab)
    for label, (_, patterns) in _CUE_PATTERNS.items():
        cues.add(label, patterns, greedy="LONGEST")
    return nlp, process, cues


@dataclass(frozen=True)
class _Hit:
    """A Matcher match as a character span."""

    label: str
    start: int
    end: int


@dataclass
class FactExtractor:
    """Built once (the spaCy pipeline and its matchers); ``extract`` is called per message."""

    default_region: str = "US"
    # Optional statistical NER (classifiers.nlp.load_ner): a fallback for agent and agency.
    ner_model: str | None = None
    nlp: Language = field(init=False)
    process_matcher: GatedMatcher = field(init=False)
    cue_matcher: GatedMatcher = field(init=False)
    ner: Language | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.nlp, self.process_matcher, self.cue_matcher = _build_nlp()
        if self.ner_model:
            self.ner = load_ner(self.ner_model)

    def extract(
        self,
        text: str,
        quoted: list[tuple[int, int]],
        sender_address: str,
        now: date | None = None,
        doc: Doc | None = None,
    ) -> RequestFacts:
        """Facts in what the sender wrote now (quoted spans are ignored). ``now`` anchors
        relative periods and deadlines ("the past 90 days", "within 10 days"); ``doc`` is
        the body's shared Doc (``classifiers.nlp.message_doc``), if any."""
        today = now or date.today()
        text = text[:MAX_EXTRACT_CHARS]
        domain = sender_address.rpartition("@")[2].lower().rstrip(".")
        suffix = domain.rsplit(".", 1)[-1]
        day_first = suffix in _DAY_FIRST_SUFFIXES
        region = region_for_domain(domain, self.default_region)

        attribution = _WRAPPED_ATTRIBUTION.search(text)
        if attribution:
            quoted = [*quoted, (attribution.start(), len(text))]
        live = _mask(text, quoted)
        regions = requester_regions(text, quoted)
        letterhead = [r for r in regions if r[0] == 0]
        date_lines = [(m.start(), m.end()) for m in _DATE_LINE.finditer(live)]
        # Periods and deadlines are not read from the letterhead or date lines: their
        # dates are when the letter was written.
        undated = _mask(live, letterhead + date_lines)

        with body_doc(text, doc) as tokens:
            # the whole body is tokenised once; what matched in quoted text is dropped
            process_hits = self._hits(self.process_matcher, tokens, quoted)
            cue_hits = self._hits(self.cue_matcher, tokens, quoted)

        facts: list[Fact] = []
        facts.extend(self._legal_process(text, live, process_hits))
        dates = _find_dates(undated, day_first)
        periods = list(self._periods(text, undated, dates, today))
        facts.extend(periods)
        facts.extend(
            self._deadlines(text, undated, dates, cue_hits, letterhead + date_lines, today)
        )
        facts.extend(self._case_numbers(text, live, cue_hits))
        facts.extend(self._agent(text, live, quoted, regions, sender_address, region))
        if any(f.value == "preservation_2703f" for f in facts if f.kind == "legal_process"):
            facts.extend(self._preservation_over_limit(text, live, periods, today))
        facts.sort(key=lambda f: (f.start, f.kind))
        return RequestFacts(tuple(facts))

    def _hits(self, matcher: GatedMatcher, doc: Doc, quoted: list[tuple[int, int]]) -> list[_Hit]:
        hits = []
        quotes = SpanIndex(quoted)
        for match_id, start, end in matcher(doc):
            span = doc[start:end]
            if not quotes.overlaps(span.start_char, span.end_char):
                label = self.nlp.vocab.strings[match_id]
                hits.append(_Hit(label, span.start_char, span.end_char))
        return sorted(hits, key=lambda h: h.start)

    # -- legal process ---------------------------------------------------------------------

    def _legal_process(self, text: str, live: str, hits: list[_Hit]) -> list[Fact]:
        """One fact per kind of process: the most confident mention, then the first."""
        mentions: list[Fact] = []
        arrest_warrant = bool(_ARREST_WARRANT.search(live))
        for hit in hits:
            value, confidence, _ = _PROCESS_PATTERNS[hit.label]
            if hit.label == "DETERMINED_WARRANT" and (
                arrest_warrant
                or _ARREST.search(_sentence_before(live, hit.end))
                or _ARREST.search(_sentence_after(live, hit.end))
                or _NOT_SEARCH_WARRANT_AFTER.match(live, hit.end)
            ):
                continue
            mentions.append(
                Fact(
                    "legal_process",
                    value,
                    text[hit.start : hit.end],
                    hit.start,
                    hit.end,
                    confidence,
                    "spacy_matcher",
                    hit.label,
                )
            )
        mentions.extend(self._statutes(text, live))
        mentions = self._current(live, mentions)
        specific = sorted(m.start for m in mentions if m.value in _SPECIFIC_ORDERS)

        def near_specific(start: int) -> bool:
            i = bisect.bisect_right(specific, start - 120)
            return i < len(specific) and specific[i] < start + 120

        mentions = [m for m in mentions if m.value != "court_order" or not near_specific(m.start)]
        return _best_per_value(mentions)

    @staticmethod
    def _statutes(text: str, live: str) -> Iterator[Fact]:
        """Citations: 2703(d), 2703(f), 2705(b), 2702(b)(8) and (c)(4), "D-Order"."""
        for m in _STATUTE.finditer(live):
            section = m.group("section")
            sub = (m.group("sub") or m.group("bare") or "").lower()
            para = m.group("para") or ""
            value = {
                ("2703", "d"): "2703d_order",
                ("2703", "f"): "preservation_2703f",
                ("2705", "b"): "nondisclosure_2705b",
            }.get((section, sub))
            if section == "2702" and (sub, para) in (("b", "8"), ("c", "4")):
                value = "emergency_2702b8"
            if value is None:
                continue
            pattern = f"{section}({sub})" + (f"({para})" if para else "")
            yield Fact(
                "legal_process",
                value,
                text[m.start() : m.end()],
                m.start(),
                m.end(),
                0.95,
                "regex",
                f"STATUTE:{pattern}",
            )
        for regex, pattern, confidence in (
            (_STATUTE_C_AND_D, "STATUTE:2703(c)&(d)", 0.9),
            (_D_ORDER, "D_ORDER", 0.85),
        ):
            for m in regex.finditer(live):
                yield Fact(
                    "legal_process",
                    "2703d_order",
                    text[m.start() : m.end()],
                    m.start(),
                    m.end(),
                    confidence,
                    "regex",
                    pattern,
                )

    def _current(self, live: str, mentions: list[Fact]) -> list[Fact]:
        """The mentions that name process the request brings, not process it only
        anticipates ("a court order will follow", "pending a formal MLAT request"). A
        later mention in the same sentence as an anticipated one is anticipated too ("A
        formal MLAT request will follow under the U.S.-Japan MLAT")."""
        kept = []
        # per process, where its anticipated mentions end (sorted): only the closest one
        # before a mention need be asked about, as any sentence break between a farther
        # one and the mention lies between the closest one and it too (each mention
        # scanned all anticipated ones before: quadratic in a body of them)
        anticipated: dict[str, list[int]] = {}
        for m in sorted(mentions, key=lambda m: m.start):
            ends = anticipated.get(m.value, [])
            i = bisect.bisect_right(ends, m.start)
            closest = ends[i - 1] if i else None
            sibling = (
                closest is not None
                and m.start - closest < 300
                and not any(_breaks(live, closest, m.start))
            )
            if sibling or _is_prospective(live, m.start, m.end):
                bisect.insort(anticipated.setdefault(m.value, []), m.end)
            elif self._is_current(live, m.start, m.end):
                kept.append(m)
        return kept

    @staticmethod
    def _is_current(live: str, start: int, end: int) -> bool:
        """Not negated ("non-emergency", "without a warrant") and not asked about ("Do you
        accept search warrants by email?")."""
        if _NEGATED.search(live[max(0, start - 30) : start]):
            return False
        return _sentence_end(live, end)[1] != "?"

    # -- time periods ----------------------------------------------------------------------

    def _periods(self, text: str, live: str, dates: list[_Date], now: date) -> Iterator[Fact]:
        """Ranges ("from X through Y", "between X and Y", "X – Y"), open ranges ("from X
        to present", "since X"), year-less starts ("January 1 to March 31, 2026") and
        relative ones ("the past 90 days"). One fact per distinct interval."""
        seen: set[str] = set()
        used: set[int] = set()

        def fact(start: int, end: int, first: str, last: str, conf: float, pattern: str) -> Fact:
            return Fact(
                "time_period",
                f"{first}/{last}",
                text[start:end],
                start,
                end,
                round(conf, 2),
                "regex",
                pattern,
            )

        found: list[Fact] = []
        for i, (a, b) in enumerate(itertools.pairwise(dates)):
            if i in used:
                continue  # already the end of a range
            m = _CONNECTOR.fullmatch(live, a.end, b.start)
            if not m or a.first > b.last:
                continue
            word = m.group("word").lower()
            if word == "and" and not _BETWEEN.search(live, max(0, a.start - 30), a.start):
                continue
            if word[0] in "-–—" and "\n" in m.group():
                continue
            used.update((i, i + 1))
            found.append(
                fact(
                    a.start,
                    b.end,
                    a.first.isoformat(),
                    b.last.isoformat(),
                    min(a.confidence, b.confidence),
                    "RANGE",
                )
            )
        taken = SpanIndex((d.start, d.end) for d in dates)
        for i, d in enumerate(dates):
            if i in used:
                continue
            partial = self._partial_start(live, d, taken)
            if partial is not None:
                start, first = partial
                found.append(
                    fact(start, d.end, first.isoformat(), d.last.isoformat(), 0.8, "RANGE_NO_YEAR")
                )
                continue
            m = _OPEN_END.match(live, d.end)
            if m:
                found.append(
                    fact(d.start, m.end(), d.first.isoformat(), OPEN, 0.85 * d.confidence, "OPEN")
                )
            elif _SINCE.search(live, max(0, d.start - 30), d.start):
                found.append(fact(d.start, d.end, d.first.isoformat(), OPEN, 0.7, "SINCE"))
        found.extend(self._from_creation(text, live, dates))
        found.extend(self._relative(text, live, now))
        for f in sorted(found, key=lambda f: f.start):
            if f.value not in seen:
                seen.add(f.value)
                yield f

    @staticmethod
    def _partial_start(live: str, end: _Date, taken: SpanIndex) -> tuple[int, date] | None:
        """A year-less range start before ``end``: "January 1 through March 31, 2026",
        "1–31 March 2026". The year is the end's, or the year before if that is later."""
        if not end.is_day:
            return None
        m = _PARTIAL_START.search(live, max(0, end.start - 30), end.start)
        between = _BETWEEN.search(live, max(0, m.start() - 30), m.start()) if m else None
        if not m or (m.group("word").lower() == "and" and not between):
            return None
        if taken.overlaps(m.start(), m.end()):
            return None
        if m.group("month"):
            month = _MONTHS[m.group("month").lower()]
            day = int(m.group("day"))
        elif end.pattern == "DMY_TEXT":
            month, day = end.first.month, int(m.group("dday"))
        else:
            return None
        try:
            first = date(end.first.year, month, day)
            if first > end.first:
                first = date(end.first.year - 1, month, day)
        except ValueError:
            return None
        return m.start(), first

    @staticmethod
    def _from_creation(text: str, live: str, dates: list[_Date]) -> Iterator[Fact]:
        """An interval from the account's creation: open at both ends when it runs "to
        present", open at its start when it runs to a date."""
        by_start = {d.start: d for d in dates}
        for m in _FROM_CREATION.finditer(live):
            if m.group("present"):
                end, last = m.end(), OPEN
            elif m.end() in by_start:
                d = by_start[m.end()]
                end, last = d.end, d.last.isoformat()
            else:
                continue
            start = m.start()
            yield Fact(
                "time_period",
                f"{OPEN}/{last}",
                text[start:end],
                start,
                end,
                0.75,
                "regex",
                "FROM_CREATION",
            )

    @staticmethod
    def _relative(text: str, live: str, now: date) -> Iterator[Fact]:
        for regex, pattern in (
            (_RELATIVE, "RELATIVE_PAST"),
            (_RELATIVE_BEFORE, "RELATIVE_BEFORE"),
            (_RELATIVE_ONE, "RELATIVE_PAST_ONE"),
        ):
            for m in regex.finditer(live):
                count = _number(m) if "n" in m.groupdict() else 1
                if count <= 0:
                    continue
                first = _span_back(now, count, m.group("unit"))
                yield Fact(
                    "time_period",
                    f"{first.isoformat()}/{now.isoformat()}",
                    text[m.start() : m.end()],
                    m.start(),
                    m.end(),
                    0.85,
                    "regex",
                    pattern,
                )

    # -- deadlines -------------------------------------------------------------------------

    def _deadlines(
        self,
        text: str,
        live: str,
        dates: list[_Date],
        hits: list[_Hit],
        masked: list[tuple[int, int]],
        now: date,
    ) -> list[Fact]:
        """A date right after a deadline cue ("Return date: November 23, 2026", "no later
        than 5:00 p.m. on December 1, 2026"), or a duration after "within" / "no later
        than" in a sentence about responding ("produce records within ten (10) days")."""
        by_start = {d.start: d for d in dates if d.is_day}
        found: list[Fact] = []
        excluded = SpanIndex(masked)
        for hit in hits:
            if hit.label not in (*_DEADLINE_CUES, "WITHIN") or excluded.overlaps(
                hit.start, hit.end
            ):
                continue
            confidence = _CUE_PATTERNS[hit.label][0]
            sentence = _sentence_before(live, hit.start)
            responding = bool(_RESPONSE.search(sentence))
            if hit.label != "WITHIN":
                gap = _DEADLINE_GAP.match(live, hit.end)
                d = by_start.get(gap.end()) if gap else None
                if d is not None and (hit.label != "BY" or responding):
                    found.append(
                        Fact(
                            "deadline",
                            d.first.isoformat(),
                            text[hit.start : d.end],
                            hit.start,
                            d.end,
                            round(min(confidence, d.confidence), 2),
                            "spacy_matcher",
                            hit.label,
                        )
                    )
                    continue
            if hit.label in ("WITHIN", "NO_LATER_THAN") and (
                responding or _ASKING.search(sentence)
            ):
                relative = self._relative_deadline(text, live, hit, now)
                if relative is not None:
                    found.append(relative)
        return _best_per_value(found)

    @staticmethod
    def _relative_deadline(text: str, live: str, hit: _Hit, now: date) -> Fact | None:
        m = _DURATION.match(live, hit.end)
        if not m:
            return None
        count = _number(m)
        unit = m.group("unit").lower()
        if (m.group("business") or "").lower() in ("business", "working") and unit.startswith(
            "day"
        ):
            due = _add_business_days(now, count)
        else:
            due = now + timedelta(days=_span_days(now, count, unit))
        return Fact(
            "deadline",
            due.isoformat(),
            text[hit.start : m.end()],
            hit.start,
            m.end(),
            0.75,
            "spacy_matcher",
            f"{hit.label}_RELATIVE",
        )

    # -- case numbers ----------------------------------------------------------------------

    def _case_numbers(self, text: str, live: str, hits: list[_Hit]) -> list[Fact]:
        """The reference after a cue, on the same line: "Case No. 2026-CR-00412", "FBI
        Case 26-1187", "Our ref: MPS/CCU/2026/08815", "Subpoena No. 26-GJ-3318"."""
        found: list[Fact] = []
        for hit in hits:
            if hit.label not in _CASE_CUES:
                continue
            before = live[max(0, hit.start - 6) : hit.start].lower()
            if hit.label == "REFERENCE_CUE" and re.search(r"\byour\s+$", before):
                continue  # "Your ref": the platform's reference, not the agency's
            marker = _CASE_MARKER.match(live, hit.end)
            if marker is None:
                continue
            has_marker = bool(marker.group().strip())
            if hit.label == "NUMBERED_CUE" and not has_marker:
                continue
            m = _CASE_VALUE.match(live, marker.end())
            if m is None or not self._is_case_value(live, m, has_marker):
                continue
            found.append(
                Fact(
                    "case_number",
                    _collapse(m.group()).upper(),
                    text[m.start() : m.end()],
                    m.start(),
                    m.end(),
                    _CUE_PATTERNS[hit.label][0],
                    "spacy_matcher",
                    f"{hit.label}:{live[hit.start : hit.end].lower()}",
                )
            )
        return _best_per_value(found)

    @staticmethod
    def _is_case_value(live: str, m: re.Match[str], has_marker: bool) -> bool:
        """A reference has a digit, is not a URL, host, statute or date, and a bare
        number after an unmarked cue ("case 2026") is too likely a year or a count."""
        value = m.group()
        if not any(c.isdigit() for c in value) or len(value) < 2:
            return False
        if not has_marker and re.fullmatch(r"\d{1,4}", value):
            return False
        if _HOSTNAME.search(value) or live.startswith("://", m.end()):
            return False
        if _STATUTE_AFTER.match(live, m.end()):
            return False
        return not any(d.start == 0 and d.end == len(value) for d in _find_dates(value, False))

    # -- the agent -------------------------------------------------------------------------

    def _agent(
        self,
        text: str,
        live: str,
        quoted: list[tuple[int, int]],
        regions: list[tuple[int, int]],
        sender_address: str,
        region: str,
    ) -> list[Fact]:
        """Name, title, agency, phone and email from the signature block: the lines after
        the closing ("Sincerely,") or "--". Without one, the last paragraph, with less
        confidence. The agency falls back to the letterhead; the email to the sender."""
        block, confidence, pattern = self._signature_block(live, quoted, regions)
        facts: list[Fact] = []
        if block is not None:
            facts.extend(self._signature_lines(text, live, block, confidence, pattern))
        if not any(f.kind == "agency" for f in facts):
            facts.extend(self._letterhead_agency(text, live, regions))
        if block is not None:
            facts.extend(self._signature_phone(text, live, block, region))
        facts.extend(self._agent_email(text, live, block, confidence, pattern, sender_address))
        if self.ner is not None and block is not None:
            facts.extend(self._ner_agent(text, block, {f.kind for f in facts}))
        return facts

    def _ner_agent(self, text: str, block: tuple[int, int], found: set[str]) -> Iterator[Fact]:
        """The first PERSON (two to four words) and ORG in the signature block, for what
        the rules did not find. Only names of the sender's side are read: the block is
        the signature, never the body about the account holder."""
        assert self.ner is not None
        start, end = block
        end = min(end, start + _SIGNATURE_CHARS)  # a signature's names are at its start
        wanted: dict[str, FactKind] = {"PERSON": "agent_name", "ORG": "agency"}
        with self.ner.memory_zone():
            doc = self.ner(text[start:end])
            for ent in doc.ents:
                kind = wanted.get(ent.label_)
                if kind is None or kind in found:
                    continue
                if kind == "agent_name" and not 2 <= len(ent.text.split()) <= 4:
                    continue
                found.add(kind)
                s, e = start + ent.start_char, start + ent.end_char
                value = " ".join(ent.text.split())
                yield Fact(kind, value, text[s:e], s, e, 0.6, "spacy_ner", ent.label_)

    @staticmethod
    def _signature_block(
        live: str, quoted: list[tuple[int, int]], regions: list[tuple[int, int]]
    ) -> tuple[tuple[int, int] | None, float, str]:
        """The first signature block ``requester_regions`` found (the letterhead starts at
        0), else a short last paragraph before any quote, else none; with a confidence
        scale and the pattern name for provenance."""
        signatures = [r for r in regions if r[0] > 0]
        if signatures:
            return signatures[0], 1.0, "SIGNATURE"
        end = min([s for s, _ in quoted if s > 0], default=len(live))
        body = live[:end].rstrip()
        breaks = list(re.finditer(r"\n[ \t]*\n", body))
        start = breaks[-1].end() if breaks else 0
        if start == 0 or body.count("\n", start) > 8:
            return None, 0.0, ""
        return (start, len(body)), 0.8, "LAST_PARAGRAPH"

    @staticmethod
    def _signature_lines(
        text: str, live: str, block: tuple[int, int], scale: float, pattern: str
    ) -> Iterator[Fact]:
        """The first name line; the first title (its own line, after the name's comma, or
        the rank before the name); the strongest agency line, the later on a tie ("Cyber
        Crime Unit / Metropolitan Police Service" is the MPS). Contact lines are skipped."""
        name: _Name | None = None
        title: tuple[int, int] | None = None
        agency: tuple[int, int, int] | None = None  # (score, start, end)
        for index, line in enumerate(_lines(live, *block)):
            if index > 15 or _STOP_LINE.match(line.text) or len(line.text) > 100:
                break
            if name is None:
                name = _parse_name(line)
                if name is not None:
                    if name.rest and _is_title(live[name.rest[0] : name.rest[1]]):
                        title = name.rest
                    continue
            if _is_contact_line(line.text):
                continue
            agency_start: int | None = None
            for start, end in _parts(line):
                part = live[start:end]
                if title is None and _is_title(part):
                    title = (start, end)
                elif agency_start is None and not _is_title(part):
                    agency_start = start
            if agency_start is not None:
                score = _agency_score(live[agency_start : line.end])
                if score and (agency is None or score >= agency[0]):
                    agency = (score, agency_start, line.end)

        def fact(kind: FactKind, start: int, end: int, conf: float, pat: str) -> Fact:
            raw = text[start:end]
            return Fact(
                kind, _collapse(raw), raw, start, end, round(conf * scale, 2), "signature", pat
            )

        if name is not None:
            yield fact("agent_name", name.start, name.end, 0.85, f"{pattern}:NAME_LINE")
        if title is not None:
            yield fact("agent_title", title[0], title[1], 0.8, f"{pattern}:TITLE_LINE")
        elif name is not None and name.rank is not None:
            yield fact("agent_title", *name.rank, 0.75, f"{pattern}:RANK")
        if agency is not None:
            strength = "STRONG" if agency[0] == 2 else "WEAK"
            yield fact(
                "agency",
                agency[1],
                agency[2],
                0.85 if agency[0] == 2 else 0.65,
                f"{pattern}:AGENCY_LINE:{strength}",
            )

    @staticmethod
    def _letterhead_agency(text: str, live: str, regions: list[tuple[int, int]]) -> Iterator[Fact]:
        """The most specific agency line of the letterhead (the last of the strongest:
        "U.S. Department of Justice / Federal Bureau of Investigation" is the FBI)."""
        head = next((r for r in regions if r[0] == 0), None)
        if head is None:
            first_break = re.search(r"\n[ \t]*\n", live)
            head = (0, first_break.start() if first_break else 0)
        best: tuple[int, _Line] | None = None
        for index, line in enumerate(_lines(live, *head)):
            if index > 8 or len(line.text) > 80 or _is_contact_line(line.text):
                continue
            score = _agency_score(line.text)
            if score and (best is None or score >= best[0]):
                best = (score, line)
        if best is not None:
            line = best[1]
            yield Fact(
                "agency",
                _collapse(line.text),
                text[line.start : line.end],
                line.start,
                line.end,
                0.6,
                "letterhead",
                "LETTERHEAD:AGENCY_LINE",
            )

    @staticmethod
    def _signature_phone(
        text: str, live: str, block: tuple[int, int], region: str
    ) -> Iterator[Fact]:
        """The first phone in the signature that is not a fax: valid numbers, or
        possible ten-digit ones (fictional 555 ranges are still where to call). It is
        looked for in the block's first ``_SIGNATURE_CHARS`` characters, with
        phonenumbers' budget (``classifiers.identifiers.phone_matches``): a signature
        does not run on for pages."""
        start, end = block
        end = min(end, start + _SIGNATURE_CHARS)
        budget = PhoneBudget.for_text(end - start)
        for match in phone_matches(live, region, budget, start, end):
            a, b = match.start, match.end
            low = max(0, a - _SIGNATURE_CHARS)
            line_start = live.rfind("\n", low, a) + 1 or low
            if _FAX.search(live[line_start:a]):
                continue
            valid = phonenumbers.is_valid_number(match.number)
            if not valid and sum(c.isdigit() for c in match.raw_string) < 10:
                continue
            yield Fact(
                "agent_phone",
                phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164),
                text[a:b],
                a,
                b,
                0.9 if valid else 0.7,
                "phonenumbers",
                f"PhoneNumberMatcher:{region}" + ("" if valid else ":possible"),
            )
            return

    @staticmethod
    def _agent_email(
        text: str,
        live: str,
        block: tuple[int, int] | None,
        scale: float,
        pattern: str,
        sender_address: str,
    ) -> Iterator[Fact]:
        """The signature's address (the sender's own if it is there), else the sender's
        address where the text gives it, else the envelope sender itself."""
        sender = sender_address.strip().lower()
        candidates = []
        if block is not None:
            candidates = list(_EMAIL.finditer(live, *block))
        if candidates:
            chosen = next((m for m in candidates if m.group().lower() == sender), candidates[0])
            yield Fact(
                "agent_email",
                chosen.group().lower(),
                text[chosen.start() : chosen.end()],
                chosen.start(),
                chosen.end(),
                round(0.95 * scale, 2),
                "regex",
                f"{pattern}:EMAIL",
            )
            return
        if not sender:
            return
        at = live.lower().find(sender)
        if at >= 0:
            end = at + len(sender)
            yield Fact("agent_email", sender, text[at:end], at, end, 0.8, "regex", "SENDER_IN_TEXT")
            return
        yield Fact("agent_email", sender, "", 0, 0, 0.7, "envelope", "SENDER_ADDRESS")

    # -- preservation ----------------------------------------------------------------------

    @staticmethod
    def _preservation_over_limit(
        text: str, live: str, periods: list[Fact], now: date
    ) -> Iterator[Fact]:
        """How far a preservation request goes past the 90 days records are kept: an
        explicit duration ("preserve for 180 days"), else the length of the period the
        request covers, when either exceeds the limit."""
        for m in _FOR_DURATION.finditer(live):
            sentence = _sentence_before(live, m.start()) + _sentence_after(live, m.start())
            if not _PRESERVE_WORDS.search(sentence):
                continue
            days = _span_days(now, _number(m), m.group("unit"))
            if days > PRESERVATION_LIMIT_DAYS:
                yield Fact(
                    "preservation_days_over_limit",
                    str(days),
                    text[m.start() : m.end()],
                    m.start(),
                    m.end(),
                    0.9,
                    "regex",
                    "FOR_DURATION",
                )
                return
        longest: tuple[int, Fact] | None = None
        for period in periods:
            first, last = period.value.split("/")
            if first == OPEN:
                continue
            end = now if last == OPEN else date.fromisoformat(last)
            # "The past 120 days" lasts 120 days; "January 1 through June 30" 181.
            inclusive = 0 if period.pattern.startswith("RELATIVE") else 1
            days = (end - date.fromisoformat(first)).days + inclusive
            if days > PRESERVATION_LIMIT_DAYS and (longest is None or days > longest[0]):
                longest = (days, period)
        if longest is not None:
            days, period = longest
            yield Fact(
                "preservation_days_over_limit",
                str(days),
                period.raw,
                period.start,
                period.end,
                0.6,
                "regex",
                f"PERIOD_SPAN:{period.pattern}",
            )


def _is_prospective(live: str, start: int, end: int) -> bool:
    if _PROSPECTIVE_BEFORE.search(_sentence_before(live, start, 100)):
        return True
    return bool(_PROSPECTIVE_AFTER.match(_sentence_after(live, end, 80)))


def _best_per_value(facts: list[Fact]) -> list[Fact]:
    """One fact per (kind, value): the most confident, then the earliest."""
    best: dict[tuple[str, str], Fact] = {}
    for f in sorted(facts, key=lambda f: (-f.confidence, f.start)):
        best.setdefault((f.kind, f.value), f)
    return sorted(best.values(), key=lambda f: f.start)
