"""The one spaCy pipeline every recognizer shares, with a tokenizer that remembers words.

Identifiers, facts and the emergency checks each tokenise the body. With a pipeline each,
a 4 KB request paid for three tokenisations of about 5 ms, and spaCy's own cache did not
help: it stores nothing inside ``memory_zone()`` (which every message is tokenised in, see
``classifiers.vocabulary``), and nothing in a document after the first special case
("U.S.", "Inc.", "a.m."), spaCy #1250. So almost every word of every message went through
the prefix, suffix and infix expressions again.

``CachingTokenizer`` asks spaCy's tokenizer once per whitespace-delimited chunk and keeps
the answer (token texts only, not lexemes) in a bounded dictionary of its own; the Doc is
then built from those words, inside the caller's memory zone as before. The tokens are
exactly spaCy's: tokenisation never crosses whitespace, and a chunk's special cases are
applied when the chunk is first tokenised (``tests/test_nlp.py`` compares the two on the
MIME corpus). Chunks with digits or an ``@`` are not kept: they are the phone numbers,
IDs and handles, rarely seen twice and not worth holding in memory.

spaCy's tokenizer is quadratic on a chunk made of many prefixes or suffixes ("_____…",
">>>>>…", "a)))))…": 10 000 underscores took 18 s). Each round of its affix loop strips
one prefix and one suffix and searches the rest again with expressions anchored by ``^``
and ``$``, which Python's ``re`` tries at every position; its URL expression backtracks
on strings of colons. ``LinearAffixes`` gives it the same expressions in a form that does
not scan (a prefix matched at the start, a suffix searched in a short window at the end,
most one-character suffixes answered from a table, the URL expression's user-info group
written without its nested quantifier): the tokens stay spaCy's, each round costs a
constant. The loop itself still copies and hashes the rest of the chunk per round, so a
chunk longer than ``MAX_CHUNK_CHARS`` (no word, address or link is that long) is cut
into pieces of that length first.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import spacy
from spacy import attrs
from spacy.attrs import ORTH
from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab

from classifiers.vocabulary import warm
from core.context import MessageContext

# Recognizers read at most this much of a body: a request is a few pages, and a pathological
# body must not hold a worker for minutes.
MAX_EXTRACT_CHARS = 200_000
# A line break alone (not a paragraph break): mail is hard-wrapped.
_WRAP = re.compile(r"(?<!\n)\n(?!\n)")
# Splitting at runs of whitespace, keeping them.
_SPLIT = re.compile(r"(\s+)")
# The expression parser of ``re``, for the width of an affix piece (untyped, private).
sre_parse: Any = importlib.import_module("re._parser")
# Chunks the cache does not keep: numbers, handles and addresses are one-offs.
_NOT_KEPT = re.compile(r"[0-9@]")
MAX_CACHED_CHUNKS = 100_000
# A chunk (text between whitespace) longer than this that starts or ends with at least
# AFFIX_HEAVY_ROUNDS prefixes or suffixes in a row is tokenised in pieces of this length.
MAX_CHUNK_CHARS = 2_000
AFFIX_HEAVY_ROUNDS = 16
# Any chunk longer than this is tokenised in pieces of this length: spaCy's infix search
# grows a little faster than its length on one huge chunk ("a:a:a:…"), and no word,
# address, link or base64 line is this long.
MAX_WHOLE_CHUNK_CHARS = 16_384
# English exceptions split "id" as "i'd"; in a request it is always "identifier".
ID_FORMS = ("id", "Id", "ID", "ids", "IDs", "Ids")


class CachingTokenizer:
    """Wraps a spaCy ``Tokenizer``; tokens as it makes them, from a cache of chunks."""

    def __init__(self, inner: Callable[[str], Doc], vocab: Vocab) -> None:
        self.inner = inner
        self.vocab = vocab
        self.cache: dict[str, tuple[tuple[str, ...], tuple[bool, ...]]] = {}
        search = getattr(inner, "prefix_search", None)
        owner = getattr(search, "__self__", None)
        self.affixes = owner if isinstance(owner, LinearAffixes) else None

    def chunk(self, text: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
        """The tokens of one chunk, and their trailing spaces (none, inside a chunk)."""
        entry = self.cache.get(text)
        if entry is None:
            words = tuple(t.text for t in self.inner(text))
            entry = (words, (False,) * len(words))
            if not _NOT_KEPT.search(text):
                if len(self.cache) >= MAX_CACHED_CHUNKS:
                    self.cache.clear()
                self.cache[text] = entry
        return entry

    def pieces(self, text: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
        """The tokens of a chunk of any length. spaCy's affix loop copies and hashes the
        rest of a chunk once per prefix or suffix it strips, so a chunk longer than
        ``MAX_CHUNK_CHARS`` that starts or ends with a run of affixes ("_" * 200 000) is
        tokenised piece by piece; any other chunk up to ``MAX_WHOLE_CHUNK_CHARS`` (a
        base64 line, a long link) is one piece, spaCy's tokens exactly, and a longer one
        is cut in pieces of that length."""
        if len(text) <= MAX_CHUNK_CHARS:
            return self.cache.get(text) or self.chunk(text)
        heavy = self.affixes.affix_heavy(text) if self.affixes is not None else True
        if not heavy and len(text) <= MAX_WHOLE_CHUNK_CHARS:
            return self.cache.get(text) or self.chunk(text)
        size = MAX_CHUNK_CHARS if heavy else MAX_WHOLE_CHUNK_CHARS
        words: list[str] = []
        for start in range(0, len(text), size):
            piece = text[start : start + size]
            words += (self.cache.get(piece) or self.chunk(piece))[0]
        return tuple(words), (False,) * len(words)

    def __call__(self, text: str) -> Doc:
        words: list[str] = []
        spaces: list[bool] = []
        cache, chunk = self.cache, self.chunk
        limit = MAX_CHUNK_CHARS
        # [chunk, whitespace, chunk, whitespace, …, chunk]; a chunk may be "" at the ends
        parts = _SPLIT.split(text)
        if parts[0]:
            first = parts[0]
            found, trailing = (
                cache.get(first) or chunk(first) if len(first) <= limit else self.pieces(first)
            )
            words += found
            spaces += trailing
        for run, part in zip(parts[1::2], parts[2::2], strict=True):
            # spaCy's whitespace rule: one ' ' after a token is that token's trailing
            # space; any other whitespace (the rest of the run, or a run that starts the
            # text or starts with a line break) is a token of its own.
            if words and run[0] == " ":
                spaces[-1] = True
                run = run[1:]
            if run:
                found, trailing = cache.get(run) or chunk(run)
                words += found
                spaces += trailing
            if part:
                found, trailing = (
                    cache.get(part) or chunk(part) if len(part) <= limit else self.pieces(part)
                )
                words += found
                spaces += trailing
        return Doc(self.vocab, words=words, spaces=spaces)

    @contextmanager
    def memory_zone(self, mem: Any = None) -> Iterator[Any]:
        """spaCy's zone for the wrapped tokenizer too (``Language.memory_zone`` calls it)."""
        zone = getattr(self.inner, "memory_zone", None)
        if zone is None:
            yield mem
            return
        with zone(mem) as entered:
            yield entered


def _top_level_branch(piece: str) -> bool:
    """Whether an affix piece is an alternation at its top level ("a|b", not "(?:a|b)"):
    "^" + piece would then anchor only its first branch, and the pieces could not be
    regrouped. Read from the text: the parser inlines non-capturing groups."""
    depth, in_set, escaped = 0, False, False
    for char in piece:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif in_set:
            in_set = char != "]"
        elif char == "[":
            in_set = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            return True
    return False


def _min_width(piece: str) -> int:
    return int(sre_parse.parse(piece).getwidth()[0])


def _max_width(piece: str) -> int:
    return int(min(sre_parse.parse(piece).getwidth()[1], 1 << 30))


def _last_characters(items: Any) -> tuple[set[str] | None, bool]:
    """(the characters a parsed expression's match can end with, or None when any may;
    whether it can match the empty string), for the expressions affix pieces are made of:
    literals, sets, groups, branches, repeats and zero-width assertions."""
    last: set[str] = set()
    for op, arg in reversed(list(items)):
        name = str(op)
        if name in ("ASSERT", "ASSERT_NOT", "AT"):
            continue  # zero-width: the character before it may be the last
        if name == "LITERAL":
            last.add(chr(arg))
            return last, False
        if name == "IN":
            chars: set[str] = set()
            for kind, value in arg:
                if str(kind) == "LITERAL":
                    chars.add(chr(value))
                elif str(kind) == "RANGE" and value[1] - value[0] < 4096:
                    chars.update(chr(c) for c in range(value[0], value[1] + 1))
                else:
                    return None, False  # a category, a negation, a huge range: any
            return last | chars, False
        if name == "SUBPATTERN":
            inner, empty = _last_characters(arg[-1])
        elif name == "BRANCH":
            inner, empty = set(), False
            for branch in arg[1]:
                found, can_be_empty = _last_characters(branch)
                if found is None:
                    return None, False
                inner |= found
                empty = empty or can_be_empty
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            inner, empty = _last_characters(arg[2])
            empty = empty or arg[0] == 0
        else:
            return None, False  # ANY, NOT_LITERAL, back-references…: any character
        if inner is None:
            return None, False
        last |= inner
        if not empty:
            return last, False
    return last, True


def _asserts(piece: str) -> bool:
    return any(look in piece for look in ("(?<", "(?=", "(?!"))


# The window at the end of a chunk a multi-character suffix is searched in; doubled while
# a match fills it (two or more dots, a piece without bound).
_SUFFIX_WINDOW = 8
# URL expressions' user-info group "\S+(?::\S*)?@" backtracks over every colon after
# every position; "\S+@" describes the same strings (a colon is a non-space) in one pass.
_URL_USERINFO = r"(?:\S+(?::\S*)?@)?"
_URL_USERINFO_LINEAR = r"(?:\S+@)?"


class LinearAffixes:
    """A tokenizer's prefix search, suffix search and URL match, with the same answers
    and without scanning the whole chunk: what spaCy's affix loop asks once per prefix
    or suffix it strips.

    * prefix: spaCy searches ``^p1|^p2|…``, which Python's ``re`` tries at every position
      of the rest of the chunk; ``p1|p2|…`` matched at its start gives the same match.
    * suffix: spaCy searches ``p1$|p2$|…`` over the whole rest. The pieces one character
      wide with no look-around (",", ")", "_", ">", "…", icons) are answered by
      matching the last character; the others (longer ones like "'s" or "US$", and
      those with look-behinds like "(?<=[0-9])km") are searched in a window at the end
      wide enough for the longest of them (doubled while a match fills it: two or
      more dots have no bound), and only when the chunk ends in a character one of
      them can end with. The length of a suffix is fixed by where the leftmost match
      starts, so the two together answer as the one expression does.
    * URL: the user-info group is rewritten without its nested quantifier.

    ``install`` replaces them on a tokenizer when its expressions can be read this way
    (pieces without top-level alternation) and leaves it as it is otherwise."""

    def __init__(
        self,
        prefix_pieces: Sequence[str],
        suffix_pieces: Sequence[str],
        url_pattern: re.Pattern[str] | None,
    ) -> None:
        self.prefix = re.compile("|".join(p for p in prefix_pieces if p.strip()))
        pieces = [p for p in suffix_pieces if p.strip()]
        single = [p for p in pieces if _max_width(p) == 1 and not _asserts(p)]
        others = [p for p in pieces if p not in single]
        self.single = re.compile("|".join(single)) if single else None
        self.others = re.compile("|".join(p + "$" for p in others)) if others else None
        # The characters the other pieces can end with: a chunk ending in anything else
        # has no suffix but a one-character one (None: any character may end one).
        ends: set[str] | None = set()
        for piece in others:
            found, _ = _last_characters(sre_parse.parse(piece))
            ends = None if found is None or ends is None else ends | found
        self.other_ends = None if ends is None else frozenset(ends)
        bounded = [_max_width(p) for p in others if _max_width(p) < 1 << 30]
        self.window = max([_SUFFIX_WINDOW, *(2 * w for w in bounded)])
        self.url: re.Pattern[str] | None = None
        if url_pattern is not None and url_pattern.pattern.count(_URL_USERINFO) == 1:
            linear = url_pattern.pattern.replace(_URL_USERINFO, _URL_USERINFO_LINEAR)
            self.url = re.compile(linear, url_pattern.flags)

    @classmethod
    def install(
        cls,
        tokenizer: Any,
        prefixes: Sequence[str | re.Pattern[str]],
        suffixes: Sequence[str | re.Pattern[str]],
    ) -> bool:
        """Give ``tokenizer`` (built from these ``prefixes`` and ``suffixes``) the linear
        searches; False, and the tokenizer untouched, when they cannot be built."""
        from spacy.util import compile_prefix_regex, compile_suffix_regex

        if not all(isinstance(p, str) for p in (*prefixes, *suffixes)):
            return False
        prefix_pieces = [str(p) for p in prefixes]
        suffix_pieces = [str(p) for p in suffixes]
        prefix_owner = getattr(getattr(tokenizer, "prefix_search", None), "__self__", None)
        suffix_owner = getattr(getattr(tokenizer, "suffix_search", None), "__self__", None)
        pieces = [p for p in (*prefix_pieces, *suffix_pieces) if p.strip()]
        if (
            not isinstance(prefix_owner, re.Pattern)
            or not isinstance(suffix_owner, re.Pattern)
            or prefix_owner.pattern != compile_prefix_regex(prefix_pieces).pattern
            or suffix_owner.pattern != compile_suffix_regex(suffix_pieces).pattern
            or any(_top_level_branch(p) or _min_width(p) == 0 for p in pieces)
        ):
            return False
        url_match = getattr(tokenizer, "url_match", None)
        url = getattr(url_match, "__self__", None)
        linear = cls(prefix_pieces, suffix_pieces, url if isinstance(url, re.Pattern) else None)
        tokenizer.prefix_search = linear.prefix_search
        tokenizer.suffix_search = linear.suffix_search
        if linear.url is not None:
            tokenizer.url_match = linear.url.match
        return True

    def prefix_search(self, text: str) -> re.Match[str] | None:
        return self.prefix.match(text)

    def suffix_search(self, text: str) -> re.Match[str] | None:
        return self._suffix(text, len(text))

    def _suffix(self, text: str, end: int) -> re.Match[str] | None:
        """The suffix of ``text[:end]`` as spaCy's expression finds it in that string."""
        if not end:
            return None
        if self.others is not None and (
            self.other_ends is None or text[end - 1] in self.other_ends
        ):
            window = self.window
            while True:
                low = max(0, end - window)
                found = self.others.search(text, low, end)
                if found is None or found.start() > low or low == 0:
                    break
                window *= 2  # the match fills the window: it may start further back
            if found is not None:
                return found  # it starts at the last character at the latest
        return self.single.match(text, end - 1, end) if self.single is not None else None

    def affix_heavy(self, text: str, rounds: int = AFFIX_HEAVY_ROUNDS) -> bool:
        """Whether spaCy's affix loop would strip at least ``rounds`` prefixes or suffixes
        in a row from ``text`` (each round copies and hashes the rest of it)."""
        start = 0
        for _ in range(rounds):
            m = self.prefix.match(text, start)
            if m is None or m.end() == start:
                break
            start = m.end()
        else:
            return True
        end = len(text)
        for _ in range(rounds):
            m = self._suffix(text, end)
            if m is None or m.start() >= end or end <= start:
                return False
            end = m.start()
        return True


def unwrap(text: str) -> str:
    """The text the recognizers tokenise: a lone line break inside "serious physical\n
    injury" or "screen\nname" would be a token and break the pattern. Spaces keep every
    offset, and blank lines stay paragraph breaks."""
    return _WRAP.sub(" ", text)


def _tokenise(body: str) -> Doc:
    """The one way a body becomes a Doc, shared or not (call it inside a memory zone)."""
    return shared_nlp().make_doc(unwrap(body[:MAX_EXTRACT_CHARS]))


@contextmanager
def body_doc(text: str, shared: Doc | None = None) -> Iterator[Doc]:
    """The Doc of a body: ``shared`` when the pipeline made one for the message
    (``message_doc``), else one made here, in a memory zone that ends with the block."""
    if shared is not None:
        yield shared
        return
    with shared_nlp().memory_zone():
        yield _tokenise(text)


def message_doc(ctx: MessageContext) -> Doc | None:
    """The body's Doc, made once per message and shared by every stage that reads tokens.

    It lives in a memory zone that ends with the message's analysis (``ctx.resources``,
    closed by ``ingest.pipeline.analyse``). A stage run on its own, with no resources,
    gets None and its recognizer tokenises the body itself."""
    if ctx.resources is None:
        return None
    doc = ctx.scratch.get("body_doc")
    if not isinstance(doc, Doc):
        ctx.resources.enter_context(shared_nlp().memory_zone())
        doc = ctx.scratch["body_doc"] = _tokenise(ctx.body_text)
    return doc


@cache
def load_ner(name: str) -> Language:
    """An installed spaCy pipeline with an ``ner`` component, by package name or path.
    Nothing is downloaded: a missing pipeline is a configuration error at start-up."""
    try:
        nlp = spacy.load(name)
    except OSError as exc:
        raise ValueError(
            f"extraction.ner_model {name!r} is not an installed spaCy pipeline; install its "
            "package (or give a path to one) or leave ner_model unset"
        ) from exc
    if "ner" not in nlp.pipe_names and "entity_ruler" not in nlp.pipe_names:
        raise ValueError(f"extraction.ner_model {name!r} has no entity recognizer")
    return nlp


@cache
def shared_nlp() -> Language:
    """A blank English pipeline with the caching tokenizer and a warm vocabulary, built
    once per process. Every Matcher and PhraseMatcher must be built on its vocab."""
    nlp = spacy.blank("en")
    tokenizer: Any = nlp.tokenizer
    for form in ID_FORMS:
        tokenizer.add_special_case(form, [{ORTH: form}])
    LinearAffixes.install(tokenizer, nlp.Defaults.prefixes or (), nlp.Defaults.suffixes or ())
    nlp.tokenizer = CachingTokenizer(tokenizer, nlp.vocab)
    warm(nlp)
    return nlp


# -- matching only where a pattern can match ----------------------------------------------

Match = tuple[int, int, int]
Element = dict[str, Any]
# Tokens an unbounded element ("*" or "+") may take in the window. Whitespace elements
# take one: a run of whitespace is always a single token.
_UNBOUNDED_WIDTH = 16
# What a stop word costs as an anchor, against 1 for any other word: "to" and "the" are
# everywhere, "warrant" is not.
_STOP_WORD_COST = 50
_STRING_ATTRS = {"LOWER": attrs.LOWER, "ORTH": attrs.ORTH, "TEXT": attrs.ORTH}


@dataclass
class _Anchor:
    """A way to recognise the tokens one pattern element matches."""

    attr: int | None = None  # with ``hashes``: the token's value for attr is one of them
    hashes: frozenset[int] = frozenset()
    cost: int = 1_000_000  # how common the tokens it admits are; a flag or regex: any
    flag: int | None = None  # a boolean attribute that must be true (LIKE_URL, IS_ALPHA…)
    regex: tuple[str, re.Pattern[str]] | None = None  # ("LOWER" or "TEXT", expression)


@dataclass
class _Group:
    """The patterns of one label: one spaCy Matcher, run around its anchors only."""

    matcher: Matcher
    width: int = 1
    whole_doc: bool = False
    hashes: dict[int, set[int]] = field(default_factory=dict)  # attribute id -> hashes
    flags: set[int] = field(default_factory=set)
    regexes: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)


class GatedMatcher:
    """spaCy's ``Matcher``, run only on the windows of a Doc where a match can be.

    spaCy's Matcher tries every pattern at every token, so its cost is tokens x patterns:
    4 ms for the 35 legal-process patterns on a 4 KB request, 12 ms for the 180 danger
    patterns, nearly all of it on words no pattern contains. Here each label's patterns
    get a Matcher of their own (greedy filtering is per label in spaCy too), and each
    pattern an anchor: its required element admitting the rarest words ("warrant", not
    "the/a/this" in "the warrant"; a stop word counts as fifty others). A call finds the
    tokens matching a label's anchors (hashes from ``Doc.to_array``), takes the window
    of the label's longest pattern on both sides, merges overlapping windows, and runs
    the label's Matcher on those spans only. Every match contains its anchor, so it lies
    whole in one window, and overlapping matches of a label share one: the result is the
    plain Matcher's (``plain()``, compared on the corpus in ``tests/test_nlp.py``).
    A label with a pattern that has nothing to anchor on is run on the whole Doc.
    """

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.groups: list[_Group] = []
        # What was added, in order: plain() builds the reference Matcher from it.
        self._added: list[tuple[str, list[list[Element]], str | None]] = []
        self._regex_answers: dict[tuple[re.Pattern[str], int], bool] = {}
        # attribute id -> anchor hash -> indices of the groups it anchors
        self._by_hash: dict[int, dict[int, list[int]]] = {}

    @property
    def whole_doc(self) -> bool:
        return any(g.whole_doc for g in self.groups)

    def add(self, label: str, patterns: Sequence[list[Element]], greedy: str | None = None) -> None:
        group = _Group(Matcher(self.vocab))
        group.matcher.add(label, list(patterns), greedy=greedy)
        for pattern in patterns:
            group.width = max(group.width, sum(_width(e) for e in pattern))
            anchors = [a for a in (_anchor(self.vocab, e) for e in pattern if _required(e)) if a]
            if not anchors:
                group.whole_doc = True
                continue
            anchor = min(reversed(anchors), key=lambda a: a.cost)
            if anchor.attr is not None:
                group.hashes.setdefault(anchor.attr, set()).update(anchor.hashes)
            elif anchor.flag is not None:
                group.flags.add(anchor.flag)
            elif anchor.regex is not None:
                group.regexes.append(anchor.regex)
        for attr, hashes in group.hashes.items():
            by_hash = self._by_hash.setdefault(attr, {})
            for value in hashes:
                by_hash.setdefault(value, []).append(len(self.groups))
        self.groups.append(group)
        self._added.append((label, list(patterns), greedy))

    def plain(self) -> Matcher:
        """One spaCy Matcher with every pattern: the answer the gated call must equal."""
        matcher = Matcher(self.vocab)
        for label, patterns, greedy in self._added:
            matcher.add(label, patterns, greedy=greedy)
        return matcher

    def __call__(self, doc: Doc) -> list[Match]:
        matches: list[Match] = []
        for group, windows in zip(self.groups, self.windows(doc), strict=True):
            for start, end in windows:
                if start == 0 and end == len(doc):
                    matches.extend(group.matcher(doc))
                else:
                    found = group.matcher(doc[start:end])
                    matches.extend((m, s + start, e + start) for m, s, e in found)
        return sorted(matches, key=lambda m: (m[1], m[2], m[0]))

    def spans(self, doc: Doc) -> list[Span]:
        return [Span(doc, s, e, label=m) for m, s, e in self(doc)]

    def windows(self, doc: Doc) -> list[list[tuple[int, int]]]:
        """Per label, the merged token windows its Matcher is run on."""
        anchored = self._anchored(doc)
        result = []
        for g, group in enumerate(self.groups):
            if group.whole_doc:
                result.append([(0, len(doc))])
                continue
            merged: list[tuple[int, int]] = []
            for index in sorted(anchored.get(g, ())):
                start = max(0, index - group.width + 1)
                end = min(len(doc), index + group.width)
                if merged and start <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
                else:
                    merged.append((start, end))
            result.append(merged)
        return result

    def _anchored(self, doc: Doc) -> dict[int, set[int]]:
        """Group index -> indices of the tokens that match one of its anchors. Each
        column is read once, and each distinct value in it looked up once."""
        anchored: dict[int, set[int]] = {}
        columns: dict[int, tuple[Any, Any]] = {}

        def distinct(attr: int) -> tuple[Any, Any]:
            if attr not in columns:
                values, inverse = np.unique(doc.to_array(attr), return_inverse=True)
                columns[attr] = (values, inverse.reshape(-1))
            return columns[attr]

        for attr, groups_by_hash in self._by_hash.items():
            values, inverse = distinct(attr)
            for k, value in enumerate(values.tolist()):
                groups = groups_by_hash.get(value)
                if groups:
                    positions = np.flatnonzero(inverse == k).tolist()
                    for g in groups:
                        anchored.setdefault(g, set()).update(positions)
        for g, group in enumerate(self.groups):
            for flag in group.flags:
                positions = np.flatnonzero(doc.to_array(flag)).tolist()
                anchored.setdefault(g, set()).update(positions)
            for which, rx in group.regexes:
                values, inverse = distinct(attrs.LOWER if which == "LOWER" else attrs.ORTH)
                for k, value in enumerate(values.tolist()):
                    if self._regex_answer(rx, value):
                        positions = np.flatnonzero(inverse == k).tolist()
                        anchored.setdefault(g, set()).update(positions)
        return anchored

    def _regex_answer(self, rx: re.Pattern[str], key: int) -> bool:
        """The expression is tried once per distinct string, and its answer kept."""
        answer = self._regex_answers.get((rx, key))
        if answer is None:
            answer = bool(rx.search(self.vocab.strings[key]))
            if len(self._regex_answers) >= MAX_CACHED_CHUNKS:
                self._regex_answers.clear()
            self._regex_answers[(rx, key)] = answer
        return answer


def _required(element: Element) -> bool:
    return element.get("OP") not in ("?", "*", "!")


def _width(element: Element) -> int:
    if element.get("OP") not in ("*", "+"):
        return 1
    return 1 if element.get("IS_SPACE") is True else _UNBOUNDED_WIDTH


def _word_cost(vocab: Vocab, word: str) -> int:
    return _STOP_WORD_COST if vocab[word.lower()].is_stop else 1


def _anchor(vocab: Vocab, element: Element) -> _Anchor | None:
    """The rarest way to recognise what ``element`` matches, or None."""
    best: _Anchor | None = None
    for key, value in element.items():
        anchor = None
        if key in _STRING_ATTRS:
            attr = _STRING_ATTRS[key]
            words = None
            if isinstance(value, str):
                words = [value]
            elif isinstance(value, dict) and set(value) == {"IN"}:
                words = [str(v) for v in value["IN"]]
            elif isinstance(value, dict) and set(value) == {"REGEX"}:
                which = "LOWER" if key == "LOWER" else "TEXT"
                anchor = _Anchor(regex=(which, re.compile(value["REGEX"])))
            if words is not None:
                hashes = frozenset(vocab.strings.add(w) for w in words)
                cost = sum(_word_cost(vocab, w) for w in words)
                anchor = _Anchor(attr=attr, hashes=hashes, cost=cost)
        elif value is True and key.startswith(("LIKE_", "IS_")) and hasattr(attrs, key):
            anchor = _Anchor(flag=getattr(attrs, key))
        if anchor and (best is None or anchor.cost < best.cost):
            best = anchor
    return best
