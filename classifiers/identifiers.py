"""Account identifiers in the request body, each with its role and provenance.

spaCy (a blank English pipeline: tokenizer plus Matcher patterns) finds handles, URLs,
emails, SIDs and the cue phrases that name IDs ("User ID: …", "Tweet ID …", "screen
name …"); ``phonenumbers`` finds phone numbers; ``ipaddress`` validates IPs. Every
finding has one shape (``core.findings.Identifier``) that says which recognizer and
pattern found it and where, so a reviewer can check it.

Roles: ``subject`` (the accounts the request is about), ``requester`` (the sender's own
contact details: signature, letterhead, "contact me at …", addresses in a law-enforcement
domain) and ``other`` (quoted earlier mail, URLs of laws cited). Only identifiers and
nothing about the people behind them are extracted.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import phonenumbers
from spacy.language import Language
from spacy.tokens import Doc, Token

from classifiers.domains import DomainPolicy
from classifiers.nlp import MAX_EXTRACT_CHARS, GatedMatcher, body_doc, message_doc, shared_nlp
from classifiers.quotes import FORWARD, SpanIndex
from config.settings import Settings
from core.addresses import within
from core.context import MessageContext
from core.findings import Identifier
from core.verdicts import Decision, Verdict

HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
PLATFORM_HOSTS = frozenset(
    {"twitter.com", "www.twitter.com", "mobile.twitter.com", "x.com", "www.x.com", "mobile.x.com"}
)
# Paths on the platform that are not accounts.
RESERVED_PATHS = frozenset(
    {
        "home",
        "search",
        "i",
        "intent",
        "explore",
        "settings",
        "notifications",
        "messages",
        "login",
        "logout",
        "signup",
        "tos",
        "privacy",
        "hashtag",
        "share",
        "compose",
        "about",
        "help",
        "account",
        "jobs",
        "download",
        "who_to_follow",
        "lists",
        "topics",
        "rules",
    }
)
SID = re.compile(
    r"^(?i:AC|PN|SM|MM|CA|RE|SK|MG|CF|QU|FN|US|KS|IS|CR|AP|AL|AD|CH|IM|MB|RM|WS|WT|WK|WW|TR|"
    r"PK|SC|CL|DE|CJ|HT|SD|BU|VA|VE|ZS|ZB|CO|EX|FL|FF)[0-9a-fA-F]{32}$"
)

# What a bare "name.ext" ends with when it is a file, not a host (none is a top-level domain
# a request would name).
FILE_EXTENSIONS = frozenset(
    [
        "pdf",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "csv",
        "txt",
        "rtf",
        "odt",
        "jpg",
        "jpeg",
        "png",
        "gif",
        "tif",
        "tiff",
        "heic",
        "mp4",
        "mov",
        "avi",
        "wav",
        "mp3",
        "zip",
        "rar",
        "7z",
        "eml",
        "msg",
        "json",
        "xml",
        "html",
        "htm",
        "log",
    ]
)
# Hosts where the platform serves an account's content: a URL there identifies the account.
PLATFORM_CONTENT_HOSTS = ("twil.io", "t.co")

# A closing line is made of closing words only ("Thank you for your assistance,"), so
# "Thank you for preserving @target." is body text, not the start of a signature.
_CLOSING_WORDS = (
    r"sincerely|regards|best|kind|warm|warmest|respectfully|very|thank|thanks|you|many|with|"
    r"v/r|r|yours|truly|faithfully|cordially|cheers|merci|cordialement|salutations|for|your|"
    r"in|advance|assistance|help|cooperation|time|attention|prompt|consideration|much|all|"
    r"the|again|so|and|submitted|appreciation|stay|safe|nga|mihi|kindest|bien|à|vous|"
    r"thanking|mahalo|mit|freundlichen|grüßen|grüssen|saludos|cordiales|atentamente|"
    r"hochachtungsvoll|met|vriendelijke|groet|groeten|distinti|saluti|cumprimentos|aloha"
)
# Runs of separators are possessive (a closing word never starts with a space or a
# comma): "\s*[,.!]?\s*$" split a long stretch of spaces between its two runs every way.
_CLOSING = re.compile(
    rf"^\s*+(?:{_CLOSING_WORDS})(?:[\s,]++(?:{_CLOSING_WORDS}))*\s*+[,.!]?\s*$", re.IGNORECASE
)
_SIG_DASHES = re.compile(r"^--\s*$")
_SALUTATION = re.compile(r"^\s*(dear\b|to whom it may concern|custodian of records)", re.IGNORECASE)
_SELF_CONTACT = re.compile(
    r"(contact me|reach me|reach us|reached at|\bI(?:'m| am) (?:on|at)\b|\bI can be reached\b|"
    r"my (?:direct |cell |mobile |office |desk |"
    r"alternate |personal )?(?:line|phone|number|email|e-mail|address|cell|mobile)|call me|"
    r"email me|e-mail me|questions,? (?:please )?(?:contact|call)|please (?:call|contact)|"
    r"duty (?:office|desk|line|agent)|contact (?:is|number|details)|point of contact|"
    r"(?:you|staff) (?:can|may) (?:reach|call|contact))",
    re.IGNORECASE,
)
# A form row's field for the requester's own contact: "Officer Phone: …", and in a row of
# fields "Officer: SA Liu | Phone: …" (the phone field follows the officer field).
_REQUESTER_FIELD = re.compile(
    r"\b(?:officer|agent|investigator|detective|requester|requestor|requesting party|"
    r"affiant|submitted by|contact person)(?:'s)?(?:\s*:[^\n|]{0,60}[|;]\s*|\s+)"
    r"(?:phone|tel|telephone|cell|mobile|direct|e-?mail|number)\s*(?:no\.?|number)?\s*:\s*$",
    re.IGNORECASE,
)
# A form row of the requester: "Requester: Tpr. Medeiros | … | 508-…", "Supervisor: Sgt. …".
_REQUESTER_ROW = re.compile(
    r"^[ \t]*(?:requester|requestor|requesting (?:officer|agent|investigator|party)|officer|"
    r"agent|supervisor|investigator|affiant|submitted by|prepared by|contact|point of contact|"
    r"poc|case agent|lead investigator)\s*:",
    re.IGNORECASE,
)
# A contact label just before a number ("T: 778-…", "| C: 604-…", "Tel (602) …", "cell 646-…")
# on a line that names no subject: the label, then the whitespace before the number. It
# is matched where that whitespace starts (``_label_before``); written as
# "(?:^|\|)[^|]*?(?:^|\s)label[:.]?\s+$" and searched over the line, it ran a lazy scan
# from every bar, per number. The label and the character before it take at most
# _LABEL_CHARS characters.
_CONTACT_LABEL_END = re.compile(
    r"(?:^|\s)(?:t|c|f|o|tel|fax|direct|desk|office|switchboard)[:.]?$", re.IGNORECASE
)
_LABEL_CHARS = 16
_SUBJECT_WORDS = re.compile(r"\b(?:target|suspect|subscriber|account|user|victim|subject)", re.I)
# A header line of a forwarded or quoted message ("From: "Det. Park" <k.park@…>"): the
# addresses on it are who wrote or received that mail, not accounts asked about.
_HEADER_LINE = re.compile(r"^[ \t>]*(?:from|to|cc|bcc|sent|reply-to|sender)\s*:", re.IGNORECASE)
# Said of an identifier in its own sentence: it is there for context, or withdrawn.
_CONTEXT_ONLY = re.compile(
    r"\bfor (?:context|reference|information|background)(?: purposes)? only\b|"
    r"\b(?:listed|mentioned|included|named|cited|noted|provided)\s+(?:here\s+)?"
    r"(?:only|solely|just)\s+(?:for|because|as|so)\b|"
    r"\bplease (?:ignore|disregard) (?:it|this|that|them|these|those)\b|"
    r"\b(?:is|are) not (?:a |the |our )?(?:suspects?|targets?|subjects?)\b|"
    r"\bnot (?:a|the) (?:suspect|target|subject)\b|\bcontext only\b|"
    r"\bbelongs? to (?:a |an |the )?(?:legitimate|genuine|real|innocent|unrelated)\b|"
    r"\bgenuine (?:helpline|hotline|number|line)\b",
    re.IGNORECASE,
)
# Before an identifier in its own clause: a request withdrawn or corrected.
_WITHDRAWN_BEFORE = re.compile(
    r"\b(?:disregard|ignore|withdraw|cancel|exclude|leave out)\b[^;:.!?]*+$|"
    r"\b(?:don't|do not|no need to) include\b[^;:.!?]*+$|\bnot\s+(?:the\s+)?(?:account\s+)?$|"
    r"\b(?:instead of|rather than|in place of)\s+(?:the\s+)?(?:account\s+)?$",
    re.IGNORECASE,
)
# Whose account it is, just before it: "our victim, who uses the account @…".
_VICTIMS_BEFORE = re.compile(
    r"\b(?:victim|complainant|reporting party)(?:'s|’s)?\b[^.;!?]{0,40}"
    r"\b(?:uses|used|owns|owned|whose|operates|runs)\b[^.;!?]{0,30}$|"
    r"\b(?:victim|complainant|reporting party)(?:'s|’s) (?:account|handle|profile|phone|"
    r"number|mobile|cell|e-?mail)\b[^.;!?]{0,20}$|"
    r"\b(?:victim|complainant|reporting party)\b[^.;!?()]{0,40}\((?:x |twitter )?"
    r"(?:handle|account|username)?\s*$",
    re.IGNORECASE,
)
# What ends a clause: an identifier's withdrawal is searched after the last of these.
_CLAUSE_BREAKS = ";:.!?"
# How far back on its line a field or contact label is looked for before a number: the
# label and its separators are under 130 characters.
_LABEL_REACH = 200
# Whose it is, just before it: "the commissioner's own account (@…)", "our own VPN (…)".
_OWNED_BEFORE = re.compile(
    r"(?:\b(?!suspect|target|offender|subject)\w+(?:'s|’s)|\b(?:her|his|their|our|my)) own "
    r"(?:account|number|phone|mobile|cell|handle|e-?mail|profile|vpn|ip|network|address)"
    r"[^.;!?\n@]{0,15}$",
    re.IGNORECASE,
)
# Whose it is, just after it: "@…, belongs to the complainant".
_OWNED_AFTER = re.compile(
    r"[\s),\]]{0,3}(?:which |who |that )?(?:belongs?|belonged) to (?:the |a |an |our )?"
    r"(?:victim|complainant|reporting party|witness|legitimate|genuine|real|innocent)\b",
    re.IGNORECASE,
)
# An account on another service, named just before: "Instagram (@name)", "Telegram: @name".
_OTHER_SERVICE_BEFORE = re.compile(
    r"\b(?:instagram|insta|ig|telegram|tiktok|facebook|snapchat|snap|mastodon|threads|"
    r"discord|signal|whatsapp|youtube|reddit|twitch|bluesky|venmo|cash ?app|kik)\b"
    r"[^.;!?\n]{0,12}$",
    re.IGNORECASE,
)
# Words every match of a role pattern contains (a match holds one of them, compared as
# the pattern compares: case-insensitively). With many identifiers in a body, where these
# words stand is found once (``_Keywords``) and a pattern is only tried on a stretch of
# text that holds one. Keep them in step with the patterns above (a test compares roles
# found with and without them on the labelled sets).
_ROLE_KEYWORDS: dict[str, tuple[str, ...]] = {
    "field": (
        "officer",
        "agent",
        "investigator",
        "detective",
        "requester",
        "requestor",
        "requesting",
        "affiant",
        "submitted",
        "contact",
    ),
    "context": ("only", "solely", "just", "please", "not", "belong", "genuine"),
    "withdrawn": (
        "disregard",
        "ignore",
        "withdraw",
        "cancel",
        "exclude",
        "leave",
        "include",
        "not",
        "instead",
        "rather",
        "place",
    ),
    "victims": ("victim", "complainant", "reporting"),
    "owned": ("own",),
    "service": (
        "insta",
        "ig",
        "telegram",
        "tiktok",
        "facebook",
        "snap",
        "mastodon",
        "threads",
        "discord",
        "signal",
        "whatsapp",
        "youtube",
        "reddit",
        "twitch",
        "bluesky",
        "venmo",
        "cash",
        "kik",
    ),
}
# Above this many identifiers in a body, the keyword positions are worth finding first.
_KEYWORD_INDEX_FROM = 64
# Case folding as re.IGNORECASE compares with ASCII letters, one character for one (so
# offsets stay): A-Z, and the four others it equates with them (İ ı ſ and the Kelvin sign).
_FOLD = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)} | {
    0x130: ord("i"),
    0x131: ord("i"),
    0x17F: ord("s"),
    0x212A: ord("k"),
}
_KEYWORD_SCANS = {
    name: re.compile("(?=" + "|".join(re.escape(w) for w in words) + ")")
    for name, words in _ROLE_KEYWORDS.items()
}


class _Keywords:
    """Where the role patterns' keywords stand in one body (every occurrence, overlapping
    ones too), to tell in a bisection whether a stretch of text could match a pattern."""

    def __init__(self, text: str) -> None:
        folded = text.translate(_FOLD)
        self.starts = {
            name: [m.start() for m in scan.finditer(folded)]
            for name, scan in _KEYWORD_SCANS.items()
        }

    def within(self, name: str, start: int, end: int) -> bool:
        starts = self.starts[name]
        i = bisect_left(starts, start)
        return i < len(starts) and starts[i] < end


# The other providers' and the platform's own domains: their addresses are mailboxes.
PROVIDER_DOMAINS = ("twilio.com", "twitter.com", "x.com")
# Reference numbering that phone parsing would take for a number: "GO 2026-204417".
_YEAR_REFERENCE = re.compile(r"^\(?(?:19|20)\d{2}\)?[-./ ]\d{5,7}$")
# "-TFO Ramirez 619-…", "— Bo-ra Yoon, FBI LA, 310-…": a one-line sign-off
_SIGN_OFF = re.compile(r"^\s*(?:-{1,2}|—|–)\s*[A-Z][^\n]{2,120}$")
_REFERENCE_BEFORE = re.compile(
    r"(?:\bref(?:erence)?|\bincident|\bcase|\bdocket|\bfile|\breport|\bcomplaint|\baz\.?|"
    r"\bticket|\bcrime|\boccurrence)\b[^\n]{0,24}$",
    re.IGNORECASE,
)
# An @handle (not an email's @) or a platform link: text that names an account.
_NAMES_ACCOUNT = re.compile(r"(?<![\w.])@\w|(?:twitter|x)\.com/\w|\b(?:AC|PN)[0-9a-f]{32}\b", re.I)
# A phone number or an address. An address starts where its run of address characters
# starts (the leftmost match does anyway): tried at every character of a run with no "@",
# "[\w.+-]+@" rescanned the run each time.
_CONTACT_DETAIL = re.compile(r"\d[\d ().-]{6,}\d|(?<![\w.+-])[\w.+-]++@[\w-]++\.[\w.]")
# What a subject listing says; a block saying it is not a signature.
_SUBJECT_CUE = re.compile(
    r"(account|subscriber|target|user ?name|handle|profile|user id|screen name|associated)",
    re.IGNORECASE,
)
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![0-9A-Fa-f:])")
_TRAILING = ".,;:!?)]}>'\""
_EMAIL = re.compile(
    r"(?<![\w.+'@:-])[A-Za-z0-9][A-Za-z0-9._%+'-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}"
    r"[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b"
)
_SCHEME_URL = re.compile(r"\bhttps?://[^\s<>\"'()\[\]{}]+", re.IGNORECASE)
_URL_PATTERNS = ("PROFILE_URL", "STATUS_URL", "URL")
_HANDLE_AT = re.compile(r"@[A-Za-z0-9_]{1,15}(?![A-Za-z0-9_@.]\w)(?![A-Za-z0-9_])")
_URL_TAIL = re.compile(r"[^\s<>\"'()\[\]{}]+")
_PHONE_CUE = re.compile(
    r"(phone|tel\b|telephone|mobile|cell|number|call|sms|text|whatsapp|signal|contact|line)",
    re.IGNORECASE,
)

_REGION_BY_SUFFIX = {
    "uk": "GB",
    "ca": "CA",
    "au": "AU",
    "nz": "NZ",
    "ie": "IE",
    "in": "IN",
    "fr": "FR",
    "de": "DE",
    "mx": "MX",
    "es": "ES",
    "it": "IT",
    "nl": "NL",
    "be": "BE",
    "br": "BR",
    "jp": "JP",
    "sg": "SG",
    "za": "ZA",
    "ch": "CH",
    "at": "AT",
    "se": "SE",
    "pl": "PL",
}

ROLE_RANK = {"requester": 3, "subject": 2, "other": 1}

# phonenumbers' matcher parses every digit group it meets, again inside a long candidate
# (up to a hundred groups), at ~0.1 ms a parse: "12 12 12 …" cost 30 µs a character, and
# for a candidate that looks like a time it copies the whole rest of the text. So it reads
# one line at a time (a phone number never spans a line break), a long line in windows,
# and each window may fail WINDOW_TRIES_BASE + a try per PHONE_CHARS_PER_TRY of its
# characters (phonenumbers' max_tries): a dense window gives up on itself, not on the
# lines after it. The whole text may fail PHONE_TRIES_BASE + one per TEXT_CHARS_PER_TRY.
PHONE_TRIES_BASE = 500
TEXT_CHARS_PER_TRY = 10
WINDOW_TRIES_BASE = 30
PHONE_CHARS_PER_TRY = 20
_PHONE_WINDOW = 4096
# A window shares this much with the next: a number starting in the shared part is the
# next window's (no written phone number is this long).
_PHONE_OVERLAP = 64
_DIGIT = re.compile(r"\d")


@dataclass
class PhoneBudget:
    """Failed parses phonenumbers may still make for one text. ``truncated`` once a
    window (or the text) ran out with text left unread; ``exhausted`` once the text's
    budget is spent and nothing more is read."""

    tries: int
    exhausted: bool = False
    truncated: bool = False

    @classmethod
    def for_text(cls, chars: int) -> PhoneBudget:
        return cls(PHONE_TRIES_BASE + chars // TEXT_CHARS_PER_TRY)


def phone_matches(
    text: str, region: str, budget: PhoneBudget, start: int = 0, end: int | None = None
) -> Iterator[phonenumbers.PhoneNumberMatch]:
    """phonenumbers' matches (leniency POSSIBLE) in ``text[start:end]``, with offsets in
    ``text``: line by line, long lines in overlapping windows, within ``budget``."""
    end = len(text) if end is None else end
    pos = start
    while pos < end and not budget.exhausted:
        line_end = text.find("\n", pos, end)
        line_end = end if line_end < 0 else line_end
        if _DIGIT.search(text, pos, line_end):
            low = pos
            while low < line_end and not budget.exhausted:
                high = min(line_end, low + _PHONE_WINDOW)
                own = line_end if high == line_end else high - _PHONE_OVERLAP
                for match in _window_phones(text, low, high, region, budget):
                    if match.start < own:
                        yield match
                low = own
        pos = line_end + 1


def _window_phones(
    text: str, low: int, high: int, region: str, budget: PhoneBudget
) -> list[phonenumbers.PhoneNumberMatch]:
    if budget.tries <= 0:
        budget.exhausted = budget.truncated = True
        return []
    allowed = min(budget.tries, WINDOW_TRIES_BASE + (high - low) // PHONE_CHARS_PER_TRY)
    try:
        matcher = phonenumbers.PhoneNumberMatcher(
            text[low:high], region, phonenumbers.Leniency.POSSIBLE, max_tries=allowed
        )
        found = list(matcher)
    except Exception:  # phonenumbers raises on odd input; nothing is found there
        return []
    left = int(getattr(matcher, "_max_tries", allowed))
    budget.tries -= allowed - left
    if left <= 0:
        budget.truncated = True  # this window gave up part way
    if budget.tries <= 0:
        budget.exhausted = True
    return [phonenumbers.PhoneNumberMatch(low + m.start, m.raw_string, m.number) for m in found]


def region_for_domain(domain: str, default: str) -> str:
    """How national phone numbers are read for a sender at ``domain`` (.uk → GB, …)."""
    return _REGION_BY_SUFFIX.get(domain.lower().rstrip(".").rsplit(".", 1)[-1], default)


def _cue(*words: str) -> list[dict[str, object]]:
    return [{"LOWER": w} for w in words]


def _build_nlp() -> tuple[Language, GatedMatcher]:
    nlp = shared_nlp()
    matcher = GatedMatcher(nlp.vocab)
    matcher.add("HANDLE", [[{"TEXT": {"REGEX": r"^@[A-Za-z0-9_]+$"}}]])
    matcher.add("URL", [[{"LIKE_URL": True}]])
    matcher.add("EMAIL", [[{"LIKE_EMAIL": True}]])
    matcher.add("SID", [[{"TEXT": {"REGEX": SID.pattern}}]])
    id_words = {"IN": ["id", "ids", "identifier", "identifiers", "#"]}
    matcher.add(
        "USER_ID_CUE",
        [
            [
                {"LOWER": {"IN": ["user", "account", "twitter", "numeric", "x"]}},
                {"LOWER": id_words},
            ],
            [{"LOWER": {"IN": ["userid", "userids", "uid"]}}],
            # "@handle (ID: 1388…)", "@handle (id 987…)"
            [{"TEXT": "("}, {"LOWER": {"IN": ["id", "ids"]}}],
        ],
    )
    # "The tweet 1849…": a bare noun before a long number (an ID-length number only)
    matcher.add("STATUS_BARE_CUE", [[{"LOWER": {"IN": ["tweet", "tweets", "post", "posts"]}}]])
    matcher.add(
        "STATUS_ID_CUE",
        [[{"LOWER": {"IN": ["tweet", "status", "post"]}}, {"LOWER": id_words}]],
    )
    matcher.add(
        "USERNAME_CUE",
        [
            [{"LOWER": {"IN": ["username", "usernames", "handle", "handles"]}}],
            _cue("user", "name"),
            _cue("screen", "name"),
            _cue("screen", "names"),
            _cue("the", "account"),
            _cue("the", "accounts"),
        ],
    )
    return nlp, matcher


@dataclass
class _Found:
    kind: str
    value: str
    raw: str
    start: int
    end: int
    recognizer: str
    pattern: str
    confidence: float


def _strip_trailing(text: str) -> str:
    # one pass: a slice per character was quadratic on a link ending in 200 000 dots
    return text.rstrip(_TRAILING)


_NOT_HANDLES = frozenset({"sid", "id", "ids", "username", "handle", "name", "holder", "owner"})
# Placeholders in guidance and questions ("x.com/username", "@handle"): never an account.
PLACEHOLDER_HANDLES = frozenset(
    {"username", "handle", "yourhandle", "yourname", "screenname", "user", "example", "name"}
)
_SAFELINK = re.compile(r"safelinks\.protection\.outlook\.com/.*?[?&]url=([^&\s]+)", re.I)
_URLDEFENSE = re.compile(r"urldefense\.(?:com|proofpoint\.com)/v3/__(.+?)__;", re.I)
_USER_ID_IN_URL = re.compile(r"(?:[?&]user_id=|/i/user/)(\d{1,20})\b")


def unwrap(url: str) -> str:
    """The link behind Microsoft Safe Links and Proofpoint URL Defense rewrites."""
    for pattern in (_SAFELINK, _URLDEFENSE):
        match = pattern.search(url)
        if match:
            return unquote(match.group(1))
    return url


def url_host(url: str) -> str:
    """The lower-case host of a URL written with or without a scheme; "" if it has none or
    cannot be parsed."""
    try:
        return (urlsplit(url if "://" in url else "https://" + url).hostname or "").lower()
    except ValueError:
        return ""


def _host_in(host: str, domains: Iterable[str]) -> bool:
    return any(within(host, d) for d in domains)


def platform_user_id(url: str) -> str | None:
    """The numeric account id of ``x.com/intent/user?user_id=…`` and ``/i/user/…`` links."""
    match = _USER_ID_IN_URL.search(url)
    return match.group(1) if url_host(url) in PLATFORM_HOSTS and match else None


def platform_url(url: str) -> tuple[str | None, str | None]:
    """(handle, status id) named by an X/Twitter URL, or (None, None)."""
    candidate = url if "://" in url else "https://" + url
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None, None
    if (parts.hostname or "").lower() not in PLATFORM_HOSTS:
        return None, None
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        return None, None
    if len(segments) >= 3 and segments[0] == "i" and segments[-2] in ("status", "statuses"):
        # /i/web/status/<id> and /i/status/<id>: a post without its author's handle
        return None, segments[-1] if segments[-1].isdigit() else None
    first = segments[0].lstrip("@")
    handle = None if first.lower() in RESERVED_PATHS or not HANDLE.match(first) else first
    status = None
    if len(segments) >= 3 and segments[1] in ("status", "statuses") and segments[2].isdigit():
        status = segments[2]
    return (handle.lower() if handle else None), status


@dataclass
class IdentifierExtractor:
    policy: DomainPolicy
    default_region: str = "US"
    # The platform's own domains: its guideline URLs and request addresses are not
    # accounts anyone is asking about.
    own_domains: frozenset[str] = frozenset()
    nlp: Language = field(init=False)
    matcher: GatedMatcher = field(init=False)

    def __post_init__(self) -> None:
        self.nlp, self.matcher = _build_nlp()

    # -- finding -------------------------------------------------------------------
    def find(
        self,
        text: str,
        region: str,
        doc: Doc | None = None,
        budget: PhoneBudget | None = None,
    ) -> list[_Found]:
        """Every finding, roles not yet given. ``budget``: phonenumbers' (made for the
        text when absent; ``exhausted`` after, if it ran out)."""
        budget = budget if budget is not None else PhoneBudget.for_text(len(text))
        # Emails and scheme URLs by regex first: the tokenizer splits them at capitalised
        # infixes ("M.Okafor@Example.NET"), which token patterns then miss.
        found: list[_Found] = list(self._regex_emails_urls(text))
        taken = SpanIndex((f.start, f.end) for f in found)
        with body_doc(text, doc) as tokens:
            for match_id, start, end in self.matcher(tokens):
                label = self.nlp.vocab.strings[match_id]
                for hit in self._from_match(tokens, text, label, start, end):
                    if not (hit.kind in ("email", "url") or hit.pattern in _URL_PATTERNS) or not (
                        taken.overlaps(hit.start, hit.end)
                    ):
                        found.append(hit)
        taken = SpanIndex((f.start, f.end) for f in found)
        found.extend(self._phones(text, region, taken, budget))
        found.extend(self._ips(text, SpanIndex((f.start, f.end) for f in found)))
        return found

    def _from_match(
        self, doc: Doc, text: str, label: str, start: int, end: int
    ) -> Iterator[_Found]:
        # ``text`` is ``doc.text``, which spaCy rebuilds from every token on each access
        span = doc[start:end]
        token = doc[start]
        if label == "HANDLE":
            m = _HANDLE_AT.match(text, token.idx)
            if m and (token.idx == 0 or not text[token.idx - 1].isalnum()):
                raw = m.group()
                yield _Found(
                    "username",
                    raw[1:].lower(),
                    raw,
                    token.idx,
                    token.idx + len(raw),
                    "spacy_matcher",
                    "HANDLE",
                    0.9,
                )
        elif label == "EMAIL" and _EMAIL.fullmatch(_strip_trailing(token.text)):
            raw = _strip_trailing(token.text)
            yield _Found(
                "email",
                raw.lower(),
                raw,
                token.idx,
                token.idx + len(raw),
                "spacy_matcher",
                "EMAIL",
                0.95,
            )
        elif label == "SID":
            raw = token.text
            yield _Found(
                "sid",
                raw[:2].upper() + raw[2:].lower(),
                raw,
                token.idx,
                token.idx + len(raw),
                "spacy_matcher",
                "SID",
                0.98,
            )
        elif label == "URL":
            m = _URL_TAIL.match(text, token.idx)
            yield from self._url(m.group() if m else token.text, token.idx)
        elif label in ("USER_ID_CUE", "STATUS_ID_CUE"):
            kind = "user_id" if label == "USER_ID_CUE" else "status_id"
            yield from self._numbers_after(doc, text, end, kind, label, span.text)
        elif label == "STATUS_BARE_CUE":
            following = [t for t in doc[end : end + 3] if not t.is_space]
            if following and following[0].text.isdigit() and 15 <= len(following[0].text) <= 20:
                yield from self._numbers_after(doc, text, end, "status_id", label, span.text)
        elif label == "USERNAME_CUE":
            yield from self._handle_after(doc, end, span.text)

    def _regex_emails_urls(self, text: str) -> Iterator[_Found]:
        emails = []
        for m in _EMAIL.finditer(text):
            raw = _strip_trailing(m.group())
            emails.append((m.start(), m.start() + len(raw)))
            yield _Found(
                "email", raw.lower(), raw, m.start(), m.start() + len(raw), "regex", "EMAIL", 0.95
            )
        taken = SpanIndex(emails)
        for m in _SCHEME_URL.finditer(text):
            if not taken.overlaps(m.start(), m.end()):
                yield from self._url(m.group(), m.start())

    def _url(self, text: str, offset: int) -> Iterator[_Found]:
        raw = _strip_trailing(text)
        if "@" in raw and "/" not in raw:
            return
        if "/" not in raw and raw.rpartition(".")[2].lower() in FILE_EXTENSIONS:
            return  # "report.pdf": a file name, not a host
        # the span stays the text as written; the value comes from the link behind a
        # Safe Links / URL Defense rewrite
        target = unwrap(raw)
        host_part, colon, port = target.rpartition(":")
        ip_text = host_part if colon and port.isdigit() and "/" not in target else target
        try:
            address = ipaddress.ip_address(ip_text.strip("[]"))
        except ValueError:
            pass
        else:
            yield _Found(
                "ip",
                str(address),
                raw,
                offset,
                offset + len(raw),
                "ipaddress",
                f"IPV{address.version}",
                0.8,
            )
            return
        user_id = platform_user_id(target)
        if user_id:
            yield _Found(
                "user_id",
                user_id,
                raw,
                offset,
                offset + len(raw),
                "platform_url",
                "USER_ID_URL",
                0.95,
            )
            return
        handle, status = platform_url(target)
        if handle:
            yield _Found(
                "username",
                handle,
                raw,
                offset,
                offset + len(raw),
                "platform_url",
                "PROFILE_URL",
                0.95,
            )
        if status:
            yield _Found(
                "status_id",
                status,
                raw,
                offset,
                offset + len(raw),
                "platform_url",
                "STATUS_URL",
                0.98,
            )
        if handle is None and status is None:
            host = url_host(target)
            if host in PLATFORM_HOSTS or not host:
                return
            yield _Found("url", target, raw, offset, offset + len(raw), "spacy_matcher", "URL", 0.6)

    def _numbers_after(
        self, doc: Doc, text: str, index: int, kind: str, pattern: str, cue: str
    ) -> Iterator[_Found]:
        """Digits following an ID cue, through punctuation, "is", "number", and lists.
        The Doc is of the unwrapped body, so line breaks are read from ``text``."""
        seen_number = False
        position = doc[index - 1].idx + len(doc[index - 1].text) if index else 0
        tokens = [t for t in doc[index : index + 40] if not t.is_space]
        for n, token in enumerate(tokens):
            gap, position = text[position : token.idx], token.idx + len(token.text)
            listed = seen_number and _next_line_is_list_item(gap, tokens[n:])
            if gap.strip(" ") and not listed and not _gap_continues_id_list(gap, seen_number):
                break
            digits = token.text.lstrip("#")
            if digits.isdigit() and 1 <= len(digits) <= 20:
                yield _Found(
                    kind,
                    digits.lstrip("0") or "0",
                    token.text,
                    token.idx,
                    token.idx + len(token.text),
                    "spacy_matcher",
                    pattern,
                    0.85,
                )
                seen_number = True
            elif not _continues_id_list(token, seen_number):
                break

    def _handle_after(self, doc: Doc, index: int, cue: str) -> Iterator[_Found]:
        colon = False
        for token in doc[index : index + 20]:
            if token.text in (":", "-", "—", '"', "'", "“", "”", "(s)", "s"):
                colon = colon or token.text == ":"
                continue
            if token.is_space:
                continue
            text = token.text.lstrip("@")
            if token.text.startswith("@"):
                # a real @handle is found by the HANDLE pattern already
                return
            if not HANDLE.match(text) or text.isdigit():
                return
            plain_word = text.isalpha() and (text.islower() or text.isupper())
            if token.is_stop or (not colon and plain_word) or text.lower() in _NOT_HANDLES:
                return
            yield _Found(
                "username",
                text.lower(),
                token.text,
                token.idx,
                token.idx + len(token.text),
                "spacy_matcher",
                "USERNAME_CUE",
                0.75,
            )
            return

    def _phones(
        self, text: str, region: str, taken: SpanIndex, budget: PhoneBudget
    ) -> Iterator[_Found]:
        for match in phone_matches(text, region, budget):
            if taken.overlaps(match.start, match.end):
                continue
            if _REFERENCE_BEFORE.search(text[max(0, match.start - 40) : match.start]):
                continue  # "Your ref LE-2026-118842", "incident number 2403318870"
            if _YEAR_REFERENCE.match(match.raw_string):
                continue  # "VPD GO 2026-204417": a year and a sequence number
            pattern = f"PhoneNumberMatcher:{region}"
            if not phonenumbers.is_valid_number(match.number):
                # Possible but not valid (unassigned or fictional ranges): only where the
                # text around it talks about phones, and only well-formed.
                before = text[max(0, match.start - 120) : match.start]
                digits = sum(c.isdigit() for c in match.raw_string)
                if digits < 10 or not _PHONE_CUE.search(before):
                    continue
                pattern += ":possible"
            value = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            yield _Found(
                "phone",
                value,
                match.raw_string,
                match.start,
                match.end,
                "phonenumbers",
                pattern,
                0.9 if pattern.endswith(region) else 0.6,
            )

    def _ips(self, text: str, taken: SpanIndex) -> Iterator[_Found]:
        for regex in (_IPV4, _IPV6):
            for m in regex.finditer(text):
                if taken.overlaps(m.start(), m.end()):
                    continue
                try:
                    address = ipaddress.ip_address(m.group())
                except ValueError:
                    continue
                yield _Found(
                    "ip",
                    str(address),
                    m.group(),
                    m.start(),
                    m.end(),
                    "ipaddress",
                    "IPV4" if address.version == 4 else "IPV6",
                    0.8,
                )

    # -- roles ---------------------------------------------------------------------
    def extract(
        self,
        text: str,
        quoted: list[tuple[int, int]],
        sender_address: str,
        sender_domain: str,
        doc: Doc | None = None,
    ) -> list[Identifier]:
        """``doc``: the body's shared Doc (``classifiers.nlp.message_doc``), if any."""
        return self.extract_reporting(text, quoted, sender_address, sender_domain, doc)[0]

    def extract_reporting(
        self,
        text: str,
        quoted: list[tuple[int, int]],
        sender_address: str,
        sender_domain: str,
        doc: Doc | None = None,
    ) -> tuple[list[Identifier], bool]:
        """``extract``, and whether the phone search stopped at its budget (a body of
        digit groups): phone numbers after that point were not looked for."""
        text = text[:MAX_EXTRACT_CHARS]
        region = self.region_for(sender_domain)
        budget = PhoneBudget.for_text(len(text))
        found = sorted(self.find(text, region, doc, budget), key=lambda f: f.start)
        keywords = _Keywords(text) if len(found) > _KEYWORD_INDEX_FROM else None
        lines = _Lines(
            text, SpanIndex(quoted), SpanIndex(requester_regions(text, quoted)), keywords
        )
        best: dict[tuple[str, str], Identifier] = {}
        for f in found:
            seen = best.get((f.kind, f.value))
            if seen is not None and seen.role == "requester":
                continue  # the highest role: a later mention cannot change it
            role = self._role(f, lines, sender_address)
            ident = Identifier(
                f.kind, f.value, f.raw, f.start, f.end, role, f.confidence, f.recognizer, f.pattern
            )
            key = (f.kind, f.value)
            if key not in best or ROLE_RANK[role] > ROLE_RANK[best[key].role]:
                best[key] = ident
        return sorted(best.values(), key=lambda i: i.start), budget.truncated

    def _is_own(self, f: _Found) -> bool:
        host = f.value.rpartition("@")[2] if f.kind == "email" else url_host(f.value)
        return bool(host) and _host_in(host, self.own_domains)

    def region_for(self, domain: str) -> str:
        return region_for_domain(domain, self.default_region)

    def _role(self, f: _Found, lines: _Lines, sender_address: str) -> str:
        """Whose the identifier is, from where it stands: quoted mail, a signature or
        letterhead, its line (a header, a form row, a contact label), its sentence (said
        to be context, withdrawn, a victim's or someone's own) and the wrapped line
        before it ("please contact me at"). Everything is read within bounded reach of
        the identifier or once per line (``_Lines``), so the checks for thousands of
        identifiers on one long line do not rescan it."""
        text = lines.text
        if f.start in lines.quoted:
            return "other"
        if f.kind == "username" and f.value in PLACEHOLDER_HANDLES:
            return "other"
        if f.kind in ("email", "url") and self._is_own(f):
            return "other"
        if f.kind == "email":
            host = f.value.rpartition("@")[2]
            if _host_in(host, PROVIDER_DOMAINS):
                return "other"
            sender_host = sender_address.rpartition("@")[2].lower()
            registrable = self.policy.registrable
            if sender_host and registrable(host) == registrable(sender_host):
                return "requester"  # the agency's own mailbox
            if f.value == sender_address or self.policy.decide(host).allowed:
                return "requester"
        # A site off the platform is not an account staff can look up: a phishing page, a
        # news story, a law (the account that posted it is the subject). Only content the
        # platform hosts for an account (a Twilio Functions or Assets domain, a t.co link)
        # can be looked up.
        if f.kind == "url" and not _host_in(url_host(f.value), PLATFORM_CONTENT_HOSTS):
            return "other"
        if f.start in lines.requester:
            return "requester"
        line_start = lines.start(f.start)
        line_end = lines.end(f.end)
        if f.kind in ("email", "phone") and lines.whole(_HEADER_LINE.match, line_start, line_end):
            return "other"
        may = lines.may_hold
        label_start = max(line_start, f.start - _LABEL_REACH)
        if f.kind in ("phone", "email") and (
            (
                may("field", label_start, f.start)
                and _search_before(_REQUESTER_FIELD, text, line_start, f.start, _LABEL_REACH)
            )
            or lines.whole(_REQUESTER_ROW.match, line_start, line_end)
        ):
            return "requester"
        if (
            f.kind == "phone"
            and _label_before(text, line_start, f.start)
            and not lines.whole(_SUBJECT_WORDS.search, line_start, line_end)
        ):
            return "requester"
        sentence_start, sentence_end = _sentence_bounds(text, f.start, f.end, lines.unit_ends)
        before = text[sentence_start : f.start]
        if may("context", sentence_start, sentence_end) and _CONTEXT_ONLY.search(
            text[sentence_start:sentence_end]
        ):
            return "other"
        clause = max(before.rfind(c) for c in _CLAUSE_BREAKS) + 1
        if (
            may("withdrawn", sentence_start + clause, f.start)
            and _WITHDRAWN_BEFORE.search(before, clause)
        ) or (may("victims", sentence_start, f.start) and _VICTIMS_BEFORE.search(before)):
            return "other"
        if (
            may("owned", sentence_start, f.start) and _OWNED_BEFORE.search(before)
        ) or _OWNED_AFTER.match(text, f.end):
            return "other"
        if (
            f.kind == "username"
            and may("service", sentence_start, f.start)
            and _OTHER_SERVICE_BEFORE.search(before)
        ):
            return "other"
        if f.kind in ("phone", "email") and lines.self_contact(line_start, line_end, f.start):
            return "requester"
        return "subject"


def _search_before(
    pattern: re.Pattern[str], text: str, line_start: int, end: int, reach: int
) -> re.Match[str] | None:
    """``pattern.search(text[line_start:end])``, for matches starting in the last
    ``reach`` characters: a label just before an identifier, not one a long line back.
    Cut inside the line, the text keeps the character before the cut, so "^" does not
    match there and look-behinds and word boundaries see what they saw."""
    low = max(line_start, end - reach)
    if low == line_start:
        return pattern.search(text[line_start:end])
    return pattern.search(text[low - 1 : end], 1)


def _label_before(text: str, line_start: int, end: int) -> bool:
    """Whether a contact label stands just before ``end`` on its line (then whitespace):
    the label ends where that whitespace starts, so only the few characters before it
    are read."""
    low = max(line_start, end - _LABEL_REACH)
    stop = end
    while stop > low and text[stop - 1].isspace():  # str.isspace is re's \s
        stop -= 1
    if stop == end:
        return False
    return bool(_search_before(_CONTACT_LABEL_END, text, line_start, stop, _LABEL_CHARS))


_NEWLINE = re.compile("\n")


class _Lines:
    """The lines of one body, for the role of every identifier in it: where a line
    starts and ends (by bisection over the line breaks, not a scan back per
    identifier), what is asked of a whole line (a header, a form row, subject words, a
    self-contact phrase), asked once per line, and which line breaks end a sentence."""

    def __init__(
        self, text: str, quoted: SpanIndex, requester: SpanIndex, keywords: _Keywords | None
    ) -> None:
        self.text = text
        self.quoted = quoted
        self.requester = requester
        self.keywords = keywords
        self.breaks = [m.start() for m in _NEWLINE.finditer(text)]
        self.unit_ends: dict[int, bool] = {}
        self._answers: dict[tuple[object, int, int], bool] = {}
        self._contact: dict[tuple[int, int], tuple[int | None, int]] = {}

    def may_hold(self, name: str, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` may match the role pattern ``name``: False only
        when none of its keywords stands there (``_Keywords``, when there is one)."""
        return self.keywords is None or self.keywords.within(name, start, end)

    def start(self, position: int) -> int:
        """``text.rfind("\n", 0, position) + 1``"""
        i = bisect_left(self.breaks, position)
        return self.breaks[i - 1] + 1 if i else 0

    def end(self, position: int) -> int:
        """``text.find("\n", position)``, or the end of the text."""
        i = bisect_left(self.breaks, position)
        return self.breaks[i] if i < len(self.breaks) else len(self.text)

    def whole(self, ask: Callable[[str], object], start: int, end: int) -> bool:
        """``ask(text[start:end])`` as a truth value, once per line."""
        key = (ask, start, end)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = bool(ask(self.text[start:end]))
        return answer

    def self_contact(self, line_start: int, line_end: int, position: int) -> bool:
        """Whether the line says the number or address before ``position`` is the
        sender's own ("contact me at", "my cell"): anywhere on the line, or, when the
        line before it ends without a stop (a wrapped sentence), in that line and this
        one up to ``position``."""
        key = (line_start, line_end)
        cached = self._contact.get(key)
        if cached is None:
            text = self.text
            previous_start = self.start(line_start - 1) if line_start else 0
            previous = text[previous_start:line_start].rstrip()
            if previous and previous[-1] not in ".!?:;":
                # a sentence wrapped onto the phone's line ("please contact Special\nAgent
                # X at"): the first phrase in both lines, and where it ends
                m = _SELF_CONTACT.search(previous + " " + text[line_start:line_end])
                cached = (m.end() if m else None, len(previous) + 1)
            else:
                m = _SELF_CONTACT.search(text[line_start:line_end])
                cached = (0 if m else None, -1)
            self._contact[key] = cached
        first_end, offset = cached
        if first_end is None:
            return False
        return offset < 0 or first_end <= offset + position - line_start


_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n[ \t]*\n|\n")
# A line this short, or a next line starting like a list item or table row, is not prose
# wrapped onto the next line: its line break ends the unit.
_SHORT_LINE = 60
_ITEM_START = re.compile(r"[ \t]*(?:[-*•|>#]|\d{1,3}[.)|:]?\s|[A-Z][\w /#-]{0,30}:)")


def _ends_unit(text: str, m: re.Match[str], known: dict[int, bool] | None = None) -> bool:
    """Whether a line break ends the unit: its line is short or the next line starts
    an item. ``known`` keeps the answer per line break (many identifiers share one)."""
    if m.group() != "\n":
        return True
    if known is not None and m.start() in known:
        return known[m.start()]
    # the line is short if a line break lies within _SHORT_LINE before this one (or the
    # text starts there): no scan back over a long line
    short = m.start() < _SHORT_LINE or text.rfind("\n", m.start() - _SHORT_LINE, m.start()) >= 0
    answer = short or bool(_ITEM_START.match(text, m.end()))
    if known is not None:
        known[m.start()] = answer
    return answer


def _sentence_bounds(
    text: str, start: int, end: int, known: dict[int, bool] | None = None
) -> tuple[int, int]:
    """The sentence around ``text[start:end]``: from the last full stop, question or
    exclamation mark, blank line, or line break of a list, table or short line before it,
    to the next one after it, within 300 characters either side. A dot inside an address
    or a URL is not followed by a space; a hard-wrapped line of prose does not end it."""
    window_start, window_end = max(0, start - 300), min(len(text), end + 300)
    ends = [
        m.end()
        for m in _SENTENCE_END.finditer(text, window_start, start)
        if _ends_unit(text, m, known)
    ]
    after = next(
        (
            m.start()
            for m in _SENTENCE_END.finditer(text, end, window_end)
            if _ends_unit(text, m, known)
        ),
        window_end,
    )
    return (ends[-1] if ends else window_start), after


_ID_FILLERS = frozenset({"is", "number", "no", "#", "and", "&", "of"})


def _next_line_is_list_item(gap: str, following: Sequence[Token]) -> bool:
    """A single line break followed by an optional bullet and a number."""
    if gap.count("\n") != 1:
        return False
    for token in following[:3]:
        if token.text in ("-", "*", "•", "–"):
            continue
        # an ID, not a numbered paragraph ("3. the account …")
        return token.text.lstrip("#").isdigit() and len(token.text.lstrip("#")) >= 5
    return False


def _gap_continues_id_list(gap: str, seen_number: bool) -> bool:
    """Line breaks go on only before the first number (a list ends at its line), and
    never through a blank line."""
    return "\n\n" not in gap and not (seen_number and "\n" in gap)


def _continues_id_list(token: Token, seen_number: bool) -> bool:
    """Between an ID cue and its numbers, or between listed numbers: punctuation and
    filler words."""
    if token.is_punct or token.lower_ in _ID_FILLERS:
        return True
    return not seen_number and token.lower_ in ("s", "ids")


def requester_regions(text: str, quoted: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Signature blocks (from a closing or ``--`` to the next forward/quote or the end)
    and a letterhead (lines before an early salutation)."""
    regions: list[tuple[int, int]] = []
    lines = text.splitlines(keepends=True)
    pos = 0
    sig_start: int | None = None
    quotes = SpanIndex(quoted)
    for number, line in enumerate(lines):
        stripped = line.rstrip("\n")
        if number < 15 and _SALUTATION.match(stripped) and pos > 0 and not regions:
            regions.append((0, pos))
        if FORWARD.match(stripped) or pos in quotes:
            if sig_start is not None:
                regions.append((sig_start, pos))
                sig_start = None
        elif sig_start is None and (_CLOSING.match(stripped) or _SIG_DASHES.match(stripped)):
            sig_start = pos
        pos += len(line)
    if sig_start is not None:
        regions.append((sig_start, len(text)))
    regions.extend(_trailing_block(text, quoted, regions))
    regions.extend(_inline_sign_off(text, quoted))
    return regions


# A dash before a capitalised name; a digit (the number) must follow later on the line.
# The digit is checked apart, against the line's last digit: as a look-ahead "[^\n]*\d" it
# rescanned the rest of the line at every dash.
_INLINE_SIGN_OFF = re.compile(r"(?:^|\s)(?:--|—|–|-)\s?(?=[A-Z][a-z]|[A-Z]{2,}\s)")
_LAST_DIGIT = re.compile(r"\d\D*$")


def _inline_sign_off(text: str, quoted: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """ "… Thank you. -- Diana Wu, SA, FBI, (415) 555-0143": a signature on the last line."""
    end = min((start for start, _ in quoted), default=len(text))
    body = text[:end].rstrip()
    last = body.rfind("\n") + 1
    digit = _LAST_DIGIT.search(body, last)
    # the name after the dash has no digit in it, so "a digit after the name" is "a
    # digit after the dash": only the dashes before the last digit count
    matches = list(_INLINE_SIGN_OFF.finditer(body, last, digit.start())) if digit else []
    match = matches[-1] if matches else None
    if match is None or _NAMES_ACCOUNT.search(body[match.start() :]):
        return []
    return [(match.start(), end)]


def _trailing_block(
    text: str, quoted: list[tuple[int, int]], found: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """A signature without a closing line: the last short paragraph of what the sender
    wrote (before any quote), made of short lines, naming no account."""
    end = min((start for start, _ in quoted), default=len(text))
    forward = FORWARD.search(text, 0, end)
    if forward is not None:
        end = forward.start()
    body = text[:end].rstrip()
    if not body:
        return []
    start = body.rfind("\n\n") + 2 if "\n\n" in body else 0
    block = body[start:]
    lines = block.splitlines()
    if any(s <= start < e for s, e in found):
        return []
    if lines and _SIGN_OFF.match(lines[-1]) and not _NAMES_ACCOUNT.search(lines[-1]):
        last = body.rfind("\n") + 1
        return [(last, end)]
    # the block's patterns only run on a short block (at most 8 lines of 90 characters):
    # a long last paragraph is not a signature, whatever it holds
    short = len(lines) <= 8 and all(len(line) <= 90 for line in lines)
    if (
        short
        and start > 0
        and _CONTACT_DETAIL.search(block)
        and not (_SUBJECT_CUE.search(block) or _NAMES_ACCOUNT.search(block))
    ):
        return [(start, end)]
    return []


@dataclass
class IdentifierStage:
    """Owns ``ctx.identifiers``."""

    extractor: IdentifierExtractor
    name: str = "identifiers"
    runs_after_drop: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentifierStage:
        policy = DomainPolicy(settings.le_policy)
        own = {a.rpartition("@")[2] for a in settings.smtp.request_addresses}
        return cls(IdentifierExtractor(policy, settings.extraction.default_region, frozenset(own)))

    def __call__(self, ctx: MessageContext) -> Sequence[Verdict]:
        address = ctx.sender.address if ctx.sender else ""
        domain = ctx.sender.domain if ctx.sender else ""
        ctx.identifiers, truncated = self.extractor.extract_reporting(
            ctx.body_text, ctx.quoted_spans, address, domain, message_doc(ctx)
        )
        notes = []
        if truncated:
            notes.append(
                Verdict(
                    self.name,
                    Decision.NOTE,
                    "phone_search_truncated",
                    "The body holds runs of digit groups so dense that the phone-number "
                    "search gave up on part of them; phone numbers there may be missing.",
                )
            )
        subjects = [i for i in ctx.identifiers if i.role == "subject"]
        if subjects:
            return [
                *notes,
                Verdict(
                    self.name,
                    Decision.PASS,
                    "identifiers_found",
                    f"{len(subjects)} account identifier(s) named.",
                ),
            ]
        ctx.deficiencies.append(
            "the account identifiers the request is about (usernames, profile or post URLs, "
            "user IDs, phone numbers, email addresses or account SIDs)"
        )
        return [
            *notes,
            Verdict(
                self.name,
                Decision.NOTE,
                "no_identifiers",
                "The request names no account identifier.",
            ),
        ]
