"""Emergency requests in the body, and what an emergency request still has to tell us.

Not every emergency says "Emergency Disclosure Request" in its subject (that rule is
``classifiers.emergency.is_emergency_subject``). ``EmergencyChecker.body_emergency_signal``
looks in the body instead: an invocation of 18 U.S.C. § 2702(b)(8) or § 2702(c)(4), the two
provisions that allow disclosure in an emergency (strength ``statute``), or a claim of
imminent danger of death or serious physical injury (strength ``danger_claim``).

``EmergencyChecker.check_emergency_completeness`` then lists, item by item, what the
published emergency guidelines ask a request to contain (Twitter's: the nature of the
emergency, who is in danger, the accounts, the information wanted, why it is needed;
Twilio's adds how it averts the harm, why normal legal process is too slow, the agent's
name and contact, the time period), so a reviewer sees what is missing and the missing
labels can go straight into the auto-response asking the sender for them.

Every finding says where it is (a character span of the body) and which pattern found it,
as ``core.findings`` does for identifiers. Quoted mail (earlier messages in a reply) and
the sender's signature block are not read: they are not what the sender is saying now,
and signatures name units ("Crisis and Hostage Negotiation Unit") and emergency lines.
A phrase under a negation or a condition in its clause ("there is no imminent danger",
"if there is a threat to life") is not a claim, and "this is not an emergency" withdraws
every danger claim in the message.

Phrases are spaCy ``Matcher``/``PhraseMatcher`` patterns on lower-cased tokens of a blank
English pipeline; statute citations and date ranges are regular expressions, because the
tokenizer cuts "§2702(b)(8)" and "11/01/2024" in places token patterns cannot follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc

from classifiers.identifiers import requester_regions
from classifiers.nlp import MAX_EXTRACT_CHARS, GatedMatcher, body_doc, shared_nlp
from classifiers.quotes import SpanIndex

Strength = Literal["statute", "danger_claim"]
Span = tuple[int, int]
Pattern = list[dict[str, object]]

# -- result shapes --------------------------------------------------------------------


@dataclass(frozen=True)
class SignalMatch:
    """One phrase that makes the body an emergency: what kind, which pattern, where."""

    kind: Strength
    pattern: str
    raw: str
    start: int
    end: int

    @property
    def span(self) -> Span:
        return (self.start, self.end)


@dataclass(frozen=True)
class EmergencySignal:
    """A body-level emergency. ``strength`` is ``statute`` when any match cites the
    emergency provisions (a formal invocation outranks a description of danger)."""

    strength: Strength
    matches: tuple[SignalMatch, ...]

    @property
    def spans(self) -> list[Span]:
        return [m.span for m in self.matches]

    @property
    def patterns(self) -> list[str]:
        return [m.pattern for m in self.matches]


@dataclass(frozen=True)
class CompletenessItem:
    """One thing an emergency request must say, and the text (or fact) that said it.

    Items satisfied by the caller's facts or identifiers have no span; their ``pattern``
    names the source ("identifiers_present", "facts:agent_name+agent_phone").
    """

    id: str
    label: str
    found: bool
    span: Span | None = None
    raw: str | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Completeness:
    items: tuple[CompletenessItem, ...]

    @property
    def missing(self) -> list[str]:
        """Labels of the missing items, in guideline order, ready for an auto-response."""
        return [i.label for i in self.items if not i.found]

    @property
    def missing_ids(self) -> list[str]:
        return [i.id for i in self.items if not i.found]

    @property
    def found_ids(self) -> list[str]:
        return [i.id for i in self.items if i.found]

    @property
    def complete(self) -> bool:
        return all(i.found for i in self.items)

    def item(self, item_id: str) -> CompletenessItem:
        for i in self.items:
            if i.id == item_id:
                return i
        raise KeyError(item_id)


# The items in the order the auto-response lists them. Labels complete the sentence
# "Please tell us …".
ITEMS: tuple[tuple[str, str], ...] = (
    ("nature_of_emergency", "the nature of the emergency"),
    ("person_in_danger", "who is in danger"),
    ("accounts_concerned", "the accounts concerned (usernames, profile URLs or phone numbers)"),
    ("information_requested", "the specific information requested"),
    ("why_necessary", "why that information is necessary to prevent the harm"),
    ("how_information_averts_harm", "how the information would help avert the harm"),
    ("why_normal_process_too_slow", "why the normal legal process would be too slow"),
    ("agent_name_and_contact", "the requesting agent's name and a phone number or email address"),
    ("time_period", "the time period the information should cover"),
)

# Which pattern categories satisfy which text item. ``event`` phrases (kidnapping,
# hostage, suicide threat) are both a danger claim and the nature of the emergency;
# generic ``danger`` phrases ("imminent threat to life") are a claim but do not say what
# is happening, so they do not satisfy ``nature_of_emergency``.
_ITEM_CATEGORIES: dict[str, tuple[str, ...]] = {
    "nature_of_emergency": ("event", "nature"),
    "person_in_danger": ("person",),
    "information_requested": ("info",),
    "why_necessary": ("why",),
    "how_information_averts_harm": ("averts",),
    "why_normal_process_too_slow": ("slow",),
    "time_period": ("time",),
}
_SIGNAL_CATEGORIES = frozenset({"statute", "danger", "event"})
# Categories whose phrases are assertions a negation or a condition can withdraw.
_NEGATABLE = frozenset({"statute", "danger", "event", "nature"})

# -- token patterns -------------------------------------------------------------------


def _any(words: str, op: str | None = None) -> dict[str, object]:
    """A token whose lower-cased form is one of the space-separated ``words``."""
    alternatives = words.split()
    token: dict[str, object] = (
        {"LOWER": alternatives[0]} if len(alternatives) == 1 else {"LOWER": {"IN": alternatives}}
    )
    if op:
        token["OP"] = op
    return token


def _seq(*words: str) -> Pattern:
    return [_any(w) for w in words]


_HYPHEN: dict[str, object] = {"ORTH": {"IN": ["-", "‐", "‑"]}, "OP": "?"}
_GAP: dict[str, object] = {"OP": "?"}
_WORD: dict[str, object] = {"IS_ALPHA": True, "OP": "?"}
_SEVERE = "imminent immediate credible serious grave ongoing real direct"
_DETERMINER = _any("the a an his her their our my its this", op="?")
_REFLEXIVE = "himself herself themselves themself myself yourself"
_THREATEN = "threatened threatening threatens threaten threat threats"
_DANGER_NOUN = "danger risk threat threats fear peril"
_INJURY: Pattern = [
    _any("serious grave great"),
    _any("physical bodily", op="?"),
    _any("injury injuries harm"),
]
_PROCESS_TAIL: Pattern = [
    _any("a an the", op="?"),
    _any("court search legal formal normal standard usual", op="?"),
    _any("order orders warrant warrants subpoena subpoenas process"),
]
_PERSON_NOUNS = (
    "victim victims complainant complainants caller child children minor minors juvenile "
    "juveniles teen teens teenager teenagers infant baby toddler girl girls boy boys daughter "
    "son kids student students hostages family wife husband girlfriend boyfriend mother "
    "father parents roommate neighbor neighbors classmates teachers employees coworkers "
    "congregation patients school schools"
)
_AGE_NOUNS = (
    "girl boy child male female man woman juvenile minor student daughter son victim teen "
    "teenager infant"
)

# "category:NAME" -> patterns. NAME is the provenance a reviewer sees.
_TOKEN_PATTERNS: dict[str, list[Pattern]] = {
    # -- generic claims of danger: a signal, but they do not say what is happening
    "danger:THREAT_TO_LIFE": [
        [
            _any(_SEVERE, op="?"),
            _any("threat threats danger risk risks"),
            _any("to"),
            *[_GAP] * 3,
            _any("life lives"),
        ]
    ],
    "danger:IMMINENT_DANGER": [
        [_any("imminent immediate"), _any("danger threat threats peril harm risk")]
    ],
    "danger:IN_DANGER": [
        [
            _any("in"),
            _any("immediate imminent grave serious mortal great real"),
            _any("danger peril jeopardy"),
        ]
    ],
    "danger:LIFE_IN_DANGER": [
        [
            _any("life lives"),
            _any("is are may might could remains remain", op="?"),
            _any("be", op="?"),
            _any("in at"),
            _any(_SEVERE, op="?"),
            _any("danger risk jeopardy peril"),
        ]
    ],
    "danger:LIFE_THREATENING": [[_any("life"), _HYPHEN, _any("threatening")]],
    "danger:DEATH_OR_INJURY": [
        [_any(_DANGER_NOUN), _any("of"), _any("imminent immediate", op="?"), _any("death")],
        [
            _any(_DANGER_NOUN),
            _any("of"),
            _any("imminent immediate", op="?"),
            _any("death"),
            _any("or and and/or"),
            *_INJURY,
        ],
        [_any(_DANGER_NOUN), _any("of"), _any("imminent immediate", op="?"), *_INJURY],
        [_any("death"), _any("or and and/or"), *_INJURY],
    ],
    # -- events: a danger claim that also says what is happening
    "event:KIDNAPPING": [
        [_any("kidnapped kidnapping kidnap abducted abduction abducting abductor")]
    ],
    "event:HOSTAGE": [[_any("held taken holding taking being", op="?"), _any("hostage hostages")]],
    "event:ACTIVE_SHOOTER": [[_any("active"), _any("shooter shooters shooting killer")]],
    "event:MASS_SHOOTING": [
        [_any("mass school"), _any("shooting shootings shooter")],
        _seq("shoot", "up"),
    ],
    "event:SUICIDE_THREAT": [
        [
            _any(f"{_THREATEN} attempting attempted attempt planning plans intends"),
            _any("to", op="?"),
            _any("commit", op="?"),
            _any("suicide"),
        ],
        [_any(_THREATEN), _any("to"), _any("kill harm hurt"), _any(_REFLEXIVE)],
        [_any("suicide"), _any("threat threats attempt attempts note plan risk")],
        [_any("suicidal")],
        [_any("kill harm hurt"), _any(_REFLEXIVE)],
        [_any("end"), _any("his her their my"), _any("own", op="?"), _any("life")],
        [_any("self"), _HYPHEN, _any("harm")],
    ],
    "event:THREAT_TO_KILL": [
        [
            _any(f"{_THREATEN} vowed plans planning intends going"),
            _any("to"),
            _any("kill shoot stab murder bomb attack harm hurt blow"),
        ]
    ],
    "event:BOMB_THREAT": [
        [_any("bomb bombing"), _any("threat threats")],
        _seq("pipe", "bomb"),
        [_any("explosive explosives"), _any("device devices")],
    ],
    "event:MISSING_ENDANGERED": [
        [_any("missing"), _any("and", op="?"), _any("endangered")],
        _seq("endangered", "missing"),
    ],
    # -- what is happening, without being a claim of imminent danger by itself
    "nature:SUICIDE": [[_any("suicide")]],
    "nature:MISSING_PERSON": [
        [
            _any("missing"),
            _any("child children juvenile minor person persons teen teenager girl boy woman man"),
        ]
    ],
    "nature:EXPLOITATION": [
        [_any("sextortion trafficking trafficked")],
        [_any("sexual"), _any("exploitation abuse assault")],
    ],
    "nature:VIOLENCE": [
        [_any("death"), _any("threat threats")],
        [_any(_THREATEN), _any("of"), _any("violence harm")],
        [_any("domestic"), _any("violence abuse")],
        [_any("shooting stabbing overdose overdosing swatting carjacking")],
    ],
    # -- who is at risk
    "person:PERSON_AT_RISK": [[_DETERMINER, _any("ex", op="?"), _HYPHEN, _any(_PERSON_NOUNS)]],
    "person:AGED_PERSON": [
        [
            _DETERMINER,
            {"LIKE_NUM": True},
            _HYPHEN,
            _any("year years yr"),
            _HYPHEN,
            _any("old"),
            _any(_AGE_NOUNS, op="?"),
        ]
    ],
    "person:THE_PUBLIC": [_seq("the", "public")],
    # -- why the information is needed
    "why:IN_ORDER_TO": [[*_seq("in", "order", "to"), _WORD]],
    "why:TO_PURPOSE": [
        [
            _any("to"),
            _any(
                "locate identify find rescue prevent protect determine pinpoint track trace "
                "apprehend stop ensure save avert"
            ),
        ]
    ],
    "why:SO_THAT": [[*_seq("so", "that"), _any("we officers investigators police law", op="?")]],
    "why:NEEDED_FOR": [
        [_any("necessary needed essential critical vital crucial"), _any("to for in"), _WORD]
    ],
    "why:HELPS_TO": [
        [
            _any("allow enable help assist aid permit"),
            _any("us officers investigators police detectives law", op="?"),
            _any("enforcement", op="?"),
            _any("to in", op="?"),
            _any(
                "locate locating identify identifying find finding rescue rescuing prevent "
                "preventing"
            ),
        ]
    ],
    # -- how disclosure averts the harm
    "averts:AVERT_ACTION": [
        [_any("to"), _any("locate rescue prevent avert protect intervene stop save find")],
        [
            _any("prevent preventing avert averting"),
            _any("further any the", op="?"),
            _any("harm death injury attack violence suicide loss"),
        ],
    ],
    "averts:WELFARE_CHECK": [
        [_any("welfare wellness wellbeing"), _any("check checks")],
        [_any("ensure"), _DETERMINER, _GAP, _any("safety")],
        [_any("render provide get"), _any("aid help assistance")],
    ],
    # -- why ordinary process is too slow
    "slow:CANNOT_WAIT": [
        [_any("can ca could"), _any("not n't"), _any("wait")],
        [_any("can ca could"), _any("not n't"), _any("wait"), _any("for"), *_PROCESS_TAIL],
    ],
    "slow:NO_TIME": [
        [_any("no not insufficient"), _any("enough", op="?"), _any("time")],
        [
            _any("no not insufficient"),
            _any("enough", op="?"),
            _any("time"),
            _any("to"),
            _any("obtain get secure seek wait apply serve"),
            _any("for", op="?"),
            *_PROCESS_TAIL,
        ],
    ],
    "slow:IS_IMMINENT": [
        [
            _any("the", op="?"),
            _any("threat danger harm risk emergency"),
            _any("is are remains remain"),
            _any("imminent ongoing immediate happening"),
        ]
    ],
    "slow:TOO_SLOW": [
        [_any("take takes taking"), _any("too"), _any("long much")],
        [_any("too"), _any("slow late")],
    ],
    "slow:DELAY": [
        [_any("any"), _any("delay delays")],
        [
            _any("delay delays"),
            _any("could would may might will"),
            _any("result cost lead endanger jeopardize be"),
        ],
    ],
    "slow:TIME_CRITICAL": [
        _seq("time", "is", "of", "the", "essence"),
        [_any("every"), _any("minute hour second"), _any("counts matters")],
        [_any("exigent"), _any("circumstances circumstance")],
    ],
    # -- "this is not an emergency" withdraws the danger claims of the message
    "disclaimer:NOT_AN_EMERGENCY": [
        [_any("is 's s was"), _any("not n't"), _any("a an", op="?"), _any("emergency")],
        [_any("non"), _HYPHEN, _any("emergency")],
        [_any("nonemergency")],
        [_any("is exists"), _any("no"), _any("emergency")],
        [_any("no"), _any("emergency"), _any("exists exist")],
    ],
    # -- names of units, hotlines and trainings: not claims
    "exclude:UNIT_OR_TRAINING": [
        [_any("hostage crisis"), _any("negotiation negotiations negotiator negotiators rescue")],
        [_any("active"), _any("shooter"), _any("training drill drills exercise exercises")],
        [_any("kidnapping abduction"), _any("unit task squad team division response")],
        [_any("suicide"), _any("prevention hotline lifeline")],
    ],
}

# Fixed phrases for the information asked for ("info:NAME" -> phrases), matched on LOWER.
_INFO_PHRASES: dict[str, tuple[str, ...]] = {
    "info:SUBSCRIBER_INFO": (
        "subscriber information",
        "subscriber info",
        "subscriber records",
        "subscriber details",
        "account information",
        "registration information",
        "account records",
        "billing information",
    ),
    "info:IP_LOGS": (
        "ip logs",
        "ip log",
        "ip address",
        "ip addresses",
        "ip history",
        "login ip",
        "login ips",
        "session logs",
        "access logs",
    ),
    "info:LOGIN_HISTORY": ("login history", "log-in history", "login records", "login activity"),
    "info:LOCATION": (
        "location",
        "location data",
        "location information",
        "geolocation",
        "gps coordinates",
        "cell site",
    ),
    "info:LINKED_CONTACT": tuple(
        f"{thing} {link}"
        for thing in (
            "phone number",
            "phone numbers",
            "telephone number",
            "email address",
            "email addresses",
            "e-mail address",
        )
        for link in ("associated", "linked", "registered", "tied", "connected")
    ),
    "info:CONTENT": ("direct messages", "contents of", "message content", "call logs"),
}

# -- regular expressions --------------------------------------------------------------

_SUB = r"\(\s*+[bc]\s*+\)\s*+\(\s*+\d{1,2}\s*+\)"
_SUB_PARTS = re.compile(r"\(\s*([bc])\s*\)\s*\(\s*(\d{1,2})\s*\)", re.IGNORECASE)
# 18 U.S.C. § 2702(b)(8), §2702 (c)(4), section 2702(c)(4), §§ 2702(b)(8) and (c)(4) …
# Every run of spaces is possessive: each is followed by something that is not a space,
# and "C\.?\s*(?:A\.?)?\s*(?:§…)?" let three runs share one stretch of spaces every way
# ("18 U.S.C." and 4 000 spaces took 0.8 s, growing with the square).
_STATUTE = re.compile(
    r"(?<![\w.])"
    r"(?:(?:18\s*+U\.?\s*+S\.?\s*+C\.?\s*+(?:A\.?)?"
    r"|title\s++18,?(?:\s*+united\s++states\s++code,?)?)\s*+)?"
    r"(?:(?:§{1,2}|sections?|secs?\.?)\s*+)?"
    rf"2702\s*+{_SUB}(?:\s*+(?:,|and|&|or|/)\s*+(?:§{{1,2}}\s*+)?(?:2702\s*+)?{_SUB})*",
    re.IGNORECASE,
)
_EMERGENCY_PROVISIONS = {("b", "8"): "B8", ("c", "4"): "C4"}

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    rf"(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|{_MONTH}\s+\d{{4}}|"
    rf"\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?|\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?|\d{{4}}-\d{{2}}-\d{{2}})"
)
_NUMBER = (
    r"(?:\d{1,4}|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fourteen|"
    r"fifteen|twenty|thirty|forty-eight|seventy-two|ninety|several|few)"
)
_TIME_PATTERNS: dict[str, re.Pattern[str]] = {
    "LAST_N_UNITS": re.compile(
        r"\b(?:last|past|previous|preceding|prior)\s+(?:" + _NUMBER + r"(?:\s*-\s*|\s+))?"
        r"(?:hours?|days?|weeks?|months?|years?)\b",
        re.IGNORECASE,
    ),
    "DATE_RANGE": re.compile(
        rf"\b(?:from|between)\s+{_DATE}\s*(?:to|through|thru|until|till|and|-|–)\s*"
        rf"(?:{_DATE}|(?:the\s+)?present|now|today)\b",
        re.IGNORECASE,
    ),
    "SINCE_DATE": re.compile(
        rf"\b(?:since|beginning|starting|after)\s+(?:on\s+)?{_DATE}(?!\d)", re.IGNORECASE
    ),
    "DATE_TO_PRESENT": re.compile(
        rf"(?<![\w/]){_DATE}\s*(?:-|–|to|through)\s*(?:the\s+)?(?:present|now|today)\b",
        re.IGNORECASE,
    ),
}

# -- negation -------------------------------------------------------------------------


def _word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_NEGATORS = _word_set("no not n't never without nor neither none nothing non nobody")
# A claim inside a condition is not a claim: "if there is an imminent threat to life …".
_CONDITIONS = _word_set("if whether unless")
# "no doubt", "not only", "without delay", "cannot rule out": here the negator is about the
# next word, not the claim.
_NOT_NEGATING_NEXT = _word_set("only doubt doubts question delay later rule")
# A negation does not reach across these.
_CLAUSE_BREAKS = _word_set(
    ". ; : ! ? , ( ) but however although though yet whereas while because and due given so "
    "therefore which who where"
)
# How many words back a negation reaches. Citations get a short reach: "without a court
# order, under 18 U.S.C. 2702(b)(8)" invokes the statute, "not under 2702(b)(8)" does not.
_PRE_WINDOW = 8
_PRE_WINDOW_STATUTE = 3
_COPULAS = _word_set("is are was were does do did has have remains")
# "the threat to life is not credible": after a copula and "not", these deny the claim;
# "the hostage is not safe" does not.
_DENYING_PREDICATES = _word_set(
    "imminent immediate present credible believed considered likely real ongoing current exist "
    "apparent suspected indicated"
)


def _next_word(doc: Doc, index: int) -> str:
    for token in doc[index + 1 : index + 4]:
        if not token.is_space:
            return token.lower_
    return ""


def _negates(doc: Doc, index: int) -> bool:
    """A negator or condition at ``index`` that is not part of "no doubt", "Case No. 7"…"""
    low = doc[index].lower_
    if low not in _NEGATORS and low not in _CONDITIONS:
        return False
    following = _next_word(doc, index)
    return following not in _NOT_NEGATING_NEXT and not (
        following[:1].isdigit() or following in {".", "#"}
    )


def _is_negated(doc: Doc, start: int, end: int, window: int = _PRE_WINDOW) -> bool:
    """Whether the tokens ``start:end`` sit under a negation or condition in their clause:
    up to ``window`` words back to the clause's start, or a denial right after
    ("… is not credible")."""
    seen = 0
    i = start - 1
    while i >= 0 and seen < window:
        token = doc[i]
        if token.is_space:
            if "\n\n" in token.text:  # a paragraph ends the clause
                break
        elif token.lower_ in _CLAUSE_BREAKS:
            break
        elif _negates(doc, i):
            return True
        else:
            seen += 1
        i -= 1
    after = [t.lower_ for t in doc[end : end + 8] if not t.is_space][:4]
    for k in range(len(after) - 2):
        if (
            after[k] in _COPULAS
            and after[k + 1] in ("not", "n't")
            and after[k + 2] in _DENYING_PREDICATES
        ):
            return True
    return False


# -- the checker ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    category: str
    pattern: str
    start: int
    end: int


def _longest_first(hits: Iterable[_Hit]) -> list[_Hit]:
    """Overlapping hits reduced to the longest (then earliest) one, ordered by position,
    so "danger of death or serious physical injury" is one hit, not three."""
    ordered = sorted(hits, key=lambda h: (h.start - h.end, h.start))
    taken = bytearray(max((h.end for h in ordered), default=0))
    kept: list[_Hit] = []
    for hit in ordered:
        if not any(taken[hit.start : hit.end]):
            taken[hit.start : hit.end] = b"\x01" * (hit.end - hit.start)
            kept.append(hit)
    return sorted(kept, key=lambda h: h.start)


def _build_nlp() -> tuple[Language, GatedMatcher, PhraseMatcher]:
    nlp = shared_nlp()
    matcher = GatedMatcher(nlp.vocab)
    for label, patterns in _TOKEN_PATTERNS.items():
        matcher.add(label, patterns)
    phrases = PhraseMatcher(nlp.vocab, attr="LOWER")
    for label, texts in _INFO_PHRASES.items():
        phrases.add(label, [nlp.make_doc(t) for t in texts])
    return nlp, matcher, phrases


@dataclass
class EmergencyChecker:
    """Builds the spaCy pipeline and matchers once; both checks reuse them."""

    nlp: Language = field(init=False)
    matcher: GatedMatcher = field(init=False)
    phrases: PhraseMatcher = field(init=False)

    def __post_init__(self) -> None:
        self.nlp, self.matcher, self.phrases = _build_nlp()

    # -- public checks ------------------------------------------------------------
    def body_emergency_signal(
        self, text: str, quoted: list[Span], doc: Doc | None = None
    ) -> EmergencySignal | None:
        """The statute citations and danger claims the sender makes now, or None.
        ``doc`` is the body's shared Doc (``classifiers.nlp.message_doc``), if any."""
        # No pre-check on the text: a regex of every danger stem cost 2.5 ms on a 4 KB
        # body, more than the anchored matchers that only look near those words anyway.
        text = text[:MAX_EXTRACT_CHARS]
        hits, disclaimed = self._hits(text, quoted, doc)
        signal = [
            h
            for h in hits
            if h.category == "statute" or (h.category in _SIGNAL_CATEGORIES and not disclaimed)
        ]
        matches = tuple(
            SignalMatch(
                "statute" if h.category == "statute" else "danger_claim",
                h.pattern,
                text[h.start : h.end],
                h.start,
                h.end,
            )
            for h in _longest_first(signal)
        )
        if not matches:
            return None
        strength: Strength = (
            "statute" if any(m.kind == "statute" for m in matches) else "danger_claim"
        )
        return EmergencySignal(strength, matches)

    def check_emergency_completeness(
        self,
        text: str,
        quoted: list[Span],
        identifiers_present: bool,
        facts_present: AbstractSet[str],
        doc: Doc | None = None,
    ) -> Completeness:
        """Each guideline item found or missing, with the span or fact that satisfied it.

        ``identifiers_present`` says the identifier stage found a subject account;
        ``facts_present`` names facts other extractors found (``agent_name``,
        ``agent_phone``, ``agent_email``, ``time_period``).
        """
        text = text[:MAX_EXTRACT_CHARS]
        hits, _ = self._hits(text, quoted, doc)
        items = []
        for item_id, label in ITEMS:
            if item_id == "accounts_concerned":
                source = "identifiers_present" if identifiers_present else None
                items.append(CompletenessItem(item_id, label, bool(source), pattern=source))
            elif item_id == "agent_name_and_contact":
                items.append(_agent_item(item_id, label, facts_present))
            elif item_id == "time_period" and "time_period" in facts_present:
                items.append(CompletenessItem(item_id, label, True, pattern="facts:time_period"))
            else:
                items.append(_text_item(item_id, label, text, hits))
        return Completeness(tuple(items))

    # -- finding ------------------------------------------------------------------
    def _hits(self, text: str, quoted: list[Span], shared: Doc | None) -> tuple[list[_Hit], bool]:
        """Every pattern hit the sender makes now (not quoted, not in the signature, not
        in a unit name, not negated), and whether the message disclaims an emergency."""
        ignored = SpanIndex([*quoted, *_signature_regions(text, quoted)])
        with body_doc(text, shared) as doc:
            candidates = list(self._token_hits(doc)) + list(_regex_hits(text))
            excluded = SpanIndex((h.start, h.end) for h in candidates if h.category == "exclude")
            kept: list[_Hit] = []
            disclaimed = False
            for hit in candidates:
                if hit.category == "exclude" or ignored.overlaps(hit.start, hit.end):
                    continue
                if hit.category in _NEGATABLE and (
                    excluded.overlaps(hit.start, hit.end) or self._negated(doc, hit)
                ):
                    continue
                if hit.category == "disclaimer":
                    disclaimed = True
                    continue
                kept.append(hit)
        return kept, disclaimed

    def _token_hits(self, doc: Doc) -> Iterator[_Hit]:
        for span in [*self.matcher.spans(doc), *self.phrases(doc, as_spans=True)]:
            category, _, pattern = span.label_.partition(":")
            yield _Hit(category, pattern, span.start_char, span.end_char)

    @staticmethod
    def _negated(doc: Doc, hit: _Hit) -> bool:
        span = doc.char_span(hit.start, hit.end, alignment_mode="expand")
        window = _PRE_WINDOW_STATUTE if hit.category == "statute" else _PRE_WINDOW
        return span is not None and _is_negated(doc, span.start, span.end, window)


def _regex_hits(text: str) -> Iterator[_Hit]:
    for m in _STATUTE.finditer(text):
        provisions = [
            _EMERGENCY_PROVISIONS[key]
            for key in ((b.lower(), n) for b, n in _SUB_PARTS.findall(m.group()))
            if key in _EMERGENCY_PROVISIONS
        ]
        if provisions:
            name = "STATUTE_2702_" + "_".join(dict.fromkeys(provisions))
            yield _Hit("statute", name, m.start(), m.end())
    for name, regex in _TIME_PATTERNS.items():
        for m in regex.finditer(text):
            yield _Hit("time", name, m.start(), m.end())


def _signature_regions(text: str, quoted: list[Span]) -> list[Span]:
    """The sender's signature blocks. ``requester_regions`` also returns a letterhead
    (always starting at 0), which is left in: a first line like "URGENT: threat to life"
    before "Dear …" is the request, not letterhead."""
    return [(s, e) for s, e in requester_regions(text, quoted) if s > 0]


def _text_item(item_id: str, label: str, text: str, hits: list[_Hit]) -> CompletenessItem:
    categories = _ITEM_CATEGORIES[item_id]
    candidates = _longest_first(h for h in hits if h.category in categories)
    if not candidates:
        return CompletenessItem(item_id, label, False)
    first = candidates[0]
    return CompletenessItem(
        item_id,
        label,
        True,
        (first.start, first.end),
        text[first.start : first.end],
        first.pattern,
    )


def _agent_item(item_id: str, label: str, facts: AbstractSet[str]) -> CompletenessItem:
    contacts = sorted(facts & {"agent_phone", "agent_email"})
    if "agent_name" not in facts or not contacts:
        return CompletenessItem(item_id, label, False)
    pattern = "facts:" + "+".join(["agent_name", *contacts])
    return CompletenessItem(item_id, label, True, pattern=pattern)


@cache
def default_checker() -> EmergencyChecker:
    """One checker per process: building the matchers costs more than a check."""
    return EmergencyChecker()


def body_emergency_signal(text: str, quoted: list[Span]) -> EmergencySignal | None:
    return default_checker().body_emergency_signal(text, quoted)


def check_emergency_completeness(
    text: str, quoted: list[Span], identifiers_present: bool, facts_present: AbstractSet[str]
) -> Completeness:
    return default_checker().check_emergency_completeness(
        text, quoted, identifiers_present, facts_present
    )
