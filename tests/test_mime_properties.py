"""Property tests of the parse and attachment stages over generated MIME trees.

The trees are modelled here (``TextLeaf``, ``AttLeaf``, ``Rfc822``, ``Multi``), built
with the stdlib ``EmailMessage`` and serialised with ``as_bytes()``. What is body and what
is attachment is computed from the model by the rule in ``ingest/mime.py``'s docstring,
never by asking the code under test:

* body: inline text/plain and text/html leaves without a filename and without
  ``Content-Disposition: attachment``;
* ``multipart/alternative``: one alternative is chosen (plain, then html, then a nested
  multipart); the other text/plain|text/html alternatives are dropped silently, the other
  alternatives are walked for attachments only;
* every other leaf is an attachment, a ``message/rfc822`` part is one attachment.

Profiles: ``default`` (300 examples a test) and ``thorough`` (10,000), chosen with the
``HYPOTHESIS_PROFILE`` environment variable.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from core.context import MessageContext
from ingest.attachments import AttachmentStage
from ingest.mime import MAX_DEPTH, MAX_PARTS
from ingest.parse import ParseStage
from ingest.pipeline import run_stages
from tests.conftest import ENVELOPE

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "default", max_examples=300, deadline=None, suppress_health_check=_SUPPRESSED
)
settings.register_profile(
    "thorough", max_examples=10_000, deadline=None, suppress_health_check=_SUPPRESSED
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")
settings.load_profile(PROFILE)

# The trees at the caps are costly (a wide one is ~1 s): fewer examples of them.
DEEP_EXAMPLES = max(30, settings().max_examples // 10)
WIDE_EXAMPLES = max(12, settings().max_examples // 30)

if PROFILE == "thorough":
    # 10,000 examples a test run for minutes: the suite's 120 s per-test timeout is off.
    pytestmark = pytest.mark.timeout(0)


MARKER_PREFIX = "ATTMARK"
HEX = "0123456789abcdef"
BODY_TYPES = ("text/plain", "text/html")
MULTI_SUBTYPES = ("mixed", "alternative", "related")
CHARSETS = ("utf-8", "iso-8859-1", "windows-1252")
TEXT_CTES = ("7bit", "8bit", "quoted-printable", "base64")
# ASCII letters, a few non-ASCII letters, and one combining accent (so NFC matters).
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" + "éßжЖ東ñøÅΩçü" + "\u0301"
FILENAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_éßж東"

PDF_HEAD = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nstream\n"
PNG_HEAD = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
)

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# --- The model -------------------------------------------------------------------------


@dataclass(frozen=True)
class TextLeaf:
    """A text/plain or text/html part that the rule makes body (no filename, no
    attachment disposition)."""

    subtype: str
    lines: tuple[tuple[str, ...], ...]
    charset: str
    cte: str
    inline: bool

    @property
    def words(self) -> list[str]:
        return [word for line in self.lines for word in line]

    def text(self) -> str:
        if self.subtype == "html":
            paragraphs = "".join(f"<p>{' '.join(line)}</p>\n" for line in self.lines)
            return f"<html><body>\n{paragraphs}</body></html>\n"
        return "".join(" ".join(line) + "\n" for line in self.lines)


@dataclass(frozen=True)
class AttLeaf:
    """A leaf the rule makes an attachment; ``payload`` is bytes for binary types."""

    ctype: str
    marker: str
    payload: bytes | str
    filename: str | None
    name_param: bool  # the filename goes in Content-Type's ``name``, not the disposition
    disposition: str | None
    charset: str
    cte: str


@dataclass(frozen=True)
class Rfc822:
    marker: str
    inner: Node
    filename: str | None


@dataclass(frozen=True)
class Multi:
    subtype: str
    children: tuple[Node, ...]


Node = TextLeaf | AttLeaf | Rfc822 | Multi


@dataclass(frozen=True)
class Generated:
    root: Node
    subject: str
    crlf: bool


def content_type_of(node: Node) -> str:
    if isinstance(node, TextLeaf):
        return f"text/{node.subtype}"
    if isinstance(node, AttLeaf):
        return node.ctype
    if isinstance(node, Rfc822):
        return "message/rfc822"
    return f"multipart/{node.subtype}"


def chosen_alternative(children: tuple[Node, ...]) -> int | None:
    """Plain first, then html, then a nested multipart (by the rule, not the code)."""
    for subtype in ("plain", "html"):
        for index, child in enumerate(children):
            if isinstance(child, TextLeaf) and child.subtype == subtype:
                return index
    for index, child in enumerate(children):
        if isinstance(child, Multi):
            return index
    return None


@dataclass
class Expected:
    # (leaf, depth of the leaf, pre-order index counting every node of the outer tree)
    body: list[tuple[TextLeaf, int, int]] = field(default_factory=list)
    attachments: list[AttLeaf | Rfc822] = field(default_factory=list)
    nodes: int = 0
    dropped: int = 0  # text alternatives dropped silently, never walked
    deepest_multipart: int = -1

    @property
    def within_caps(self) -> bool:
        # One part of slack on each cap, so an off-by-one reading of "deeper than" or
        # "more than" never decides a check.
        return self.deepest_multipart <= MAX_DEPTH - 2 and self.nodes <= MAX_PARTS - 2

    @property
    def beyond_caps(self) -> bool:
        """Some part certainly lies beyond a cap (again with a part of slack)."""
        if self.deepest_multipart >= MAX_DEPTH + 1:
            return True
        walked = self.nodes - self.dropped
        return self.deepest_multipart <= MAX_DEPTH - 2 and walked >= MAX_PARTS + 2


def expected_layout(root: Node) -> Expected:
    out = Expected()
    _expect(root, 0, True, out)
    return out


def _expect(node: Node, depth: int, as_body: bool, out: Expected) -> None:
    out.nodes += 1
    index = out.nodes
    if isinstance(node, TextLeaf):
        if as_body:
            out.body.append((node, depth, index))
        return
    if isinstance(node, AttLeaf | Rfc822):
        out.attachments.append(node)
        return
    out.deepest_multipart = max(out.deepest_multipart, depth)
    if node.subtype != "alternative":
        for child in node.children:
            _expect(child, depth + 1, as_body, out)
        return
    chosen = chosen_alternative(node.children)
    for position, child in enumerate(node.children):
        if position == chosen:
            _expect(child, depth + 1, as_body, out)
        elif content_type_of(child) in BODY_TYPES:
            out.nodes += 1  # counted all the same, to keep the index conservative
            out.dropped += 1
        else:
            _expect(child, depth + 1, False, out)


def all_markers(node: Node) -> list[str]:
    if isinstance(node, TextLeaf):
        return []
    if isinstance(node, AttLeaf):
        return [node.marker]
    if isinstance(node, Rfc822):
        return [node.marker, *all_markers(node.inner)]
    return [marker for child in node.children for marker in all_markers(child)]


# --- Building real messages from the model ---------------------------------------------


def build(node: Node, boundaries: Iterator[int]) -> EmailMessage:
    part = EmailMessage()
    if isinstance(node, TextLeaf):
        part.set_content(
            node.text(),
            subtype=node.subtype,
            charset=node.charset,
            cte=node.cte,
            disposition="inline" if node.inline else None,
        )
    elif isinstance(node, AttLeaf):
        filename = None if node.name_param else node.filename
        maintype, _, subtype = node.ctype.partition("/")
        if isinstance(node.payload, bytes):
            part.set_content(
                node.payload,
                maintype=maintype,
                subtype=subtype,
                cte=node.cte,
                disposition=node.disposition,
                filename=filename,
            )
        else:
            part.set_content(
                node.payload,
                subtype=subtype,
                charset=node.charset,
                cte=node.cte,
                disposition=node.disposition,
                filename=filename,
            )
        if node.name_param and node.filename is not None:
            charset = None if node.filename.isascii() else "utf-8"
            part.set_param("name", node.filename, charset=charset)
    elif isinstance(node, Rfc822):
        inner = EmailMessage()
        inner["From"] = "someone@example.org"
        inner["Subject"] = f"Forwarded {node.marker}"
        inner["Content-Type"] = f'multipart/mixed; boundary="=_Part_{next(boundaries)}_x7Q"'
        note_part = EmailMessage()
        note_part.set_content(f"Forwarded note {node.marker}\n")
        inner.attach(note_part)
        inner.attach(build(node.inner, boundaries))
        part.set_content(inner, filename=node.filename)
    else:
        part["Content-Type"] = f'multipart/{node.subtype}; boundary="=_Part_{next(boundaries)}_x7Q"'
        built: dict[int, EmailMessage] = {}  # a child repeated (wide trees) is built once
        for child in node.children:
            if id(child) not in built:
                built[id(child)] = build(child, boundaries)
            part.attach(built[id(child)])
    return part


def serialise(generated: Generated) -> bytes:
    message = build(generated.root, itertools.count())
    message["From"] = "Agent Smith <agent.smith@fbi.gov>"
    message["To"] = "lawenforcement@example-platform.com"
    message["Subject"] = generated.subject
    if "MIME-Version" not in message:
        message["MIME-Version"] = "1.0"
    return message.as_bytes(policy=policy.SMTP if generated.crlf else policy.default)


def run(raw: bytes) -> MessageContext:
    return run_stages(MessageContext(raw=raw, envelope=ENVELOPE), [ParseStage(), AttachmentStage()])


def check_invariants(ctx: MessageContext) -> None:
    """What holds for any input: a readable body, and a description of each removal."""
    assert isinstance(ctx.body_text, str)
    assert unicodedata.is_normalized("NFC", ctx.body_text)
    assert not _CONTROL.search(ctx.body_text)
    for attachment in ctx.attachments:
        assert SHA256_HEX.fullmatch(attachment.sha256)
        assert attachment.size >= 0


# --- Strategies --------------------------------------------------------------------------


def encodable(text: str, charset: str) -> bool:
    try:
        text.encode(charset)
    except UnicodeEncodeError:
        return False
    return True


words = st.text(alphabet=LETTERS, min_size=1, max_size=12).filter(
    lambda word: MARKER_PREFIX not in word
)
markers = st.text(alphabet=HEX, min_size=12, max_size=12).map(lambda tail: MARKER_PREFIX + tail)
stems = st.text(alphabet=FILENAME_CHARS, min_size=1, max_size=60)


@st.composite
def filenames(draw: st.DrawFn, extension: str) -> str:
    return f"{draw(stems)}.{extension}"


@st.composite
def text_encodings(draw: st.DrawFn, text: str) -> tuple[str, str]:
    charset = draw(st.sampled_from([c for c in CHARSETS if encodable(text, c)]))
    ctes = [c for c in TEXT_CTES if c != "7bit" or text.isascii()]
    return charset, draw(st.sampled_from(ctes))


@st.composite
def text_leaves(draw: st.DrawFn) -> TextLeaf:
    lines = tuple(tuple(line) for line in draw(st.lists(st.lists(words, max_size=8), max_size=4)))
    leaf = TextLeaf(draw(st.sampled_from(["plain", "html"])), lines, "", "", draw(st.booleans()))
    charset, cte = draw(text_encodings(leaf.text()))
    return TextLeaf(leaf.subtype, leaf.lines, charset, cte, leaf.inline)


@st.composite
def binary_leaves(draw: st.DrawFn) -> AttLeaf:
    ctype, head, extension = draw(
        st.sampled_from(
            [
                ("application/pdf", PDF_HEAD, "pdf"),
                ("application/octet-stream", b"", "bin"),
                ("image/png", PNG_HEAD, "png"),
            ]
        )
    )
    marker = draw(markers)
    noise = draw(st.binary(max_size=64))
    payload = head + noise + f"\n({marker}) Tj\n".encode() + draw(st.binary(max_size=16))
    filename = draw(st.none() | filenames(extension))
    return AttLeaf(
        ctype=ctype,
        marker=marker,
        payload=payload,
        filename=filename,
        name_param=filename is not None and draw(st.booleans()),
        disposition=draw(st.sampled_from([None, "attachment", "inline"])),
        charset="",
        cte="base64",
    )


@st.composite
def text_attachments(draw: st.DrawFn) -> AttLeaf:
    marker = draw(markers)
    extra = " ".join(draw(st.lists(words, max_size=6)))
    kind = draw(st.sampled_from(["csv", "calendar", "plain", "html"]))
    filename: str | None
    if kind == "csv":
        text = f"id,note\n1,{marker}\n2,{extra}\n"
        filename = draw(st.none() | filenames("csv"))
        disposition = draw(st.sampled_from([None, "attachment", "inline"]))
    elif kind == "calendar":
        text = f"BEGIN:VCALENDAR\nSUMMARY:{marker} {extra}\nEND:VCALENDAR\n"
        filename = draw(st.none() | filenames("ics"))
        disposition = draw(st.sampled_from([None, "attachment", "inline"]))
    elif kind == "plain":  # a text/plain file: the filename makes it an attachment
        text = f"Attached notes {marker} {extra}\n"
        filename = draw(filenames("txt"))
        disposition = draw(st.sampled_from([None, "attachment", "inline"]))
    else:  # text/html made an attachment by its disposition alone
        text = f"<html><body><p>{marker} {extra}</p></body></html>\n"
        filename = draw(st.none() | filenames("html"))
        disposition = "attachment"
    charset, cte = draw(text_encodings(text))
    return AttLeaf(
        ctype=f"text/{kind}",
        marker=marker,
        payload=text,
        filename=filename,
        name_param=filename is not None and draw(st.booleans()),
        disposition=disposition,
        charset=charset,
        cte=cte,
    )


plain_leaves: st.SearchStrategy[Node] = st.one_of(
    text_leaves(), binary_leaves(), text_attachments()
)


@functools.cache
def multiparts(depth: int) -> st.SearchStrategy[Node]:
    """A multipart whose children nest at most ``depth - 1`` deeper."""
    return st.builds(
        Multi,
        st.sampled_from(MULTI_SUBTYPES),
        st.lists(trees(depth - 1), min_size=1, max_size=4).map(tuple),
    )


@functools.cache
def trees(depth: int) -> st.SearchStrategy[Node]:
    """Trees of multiparts nested at most ``depth`` deep, message/rfc822 parts included;
    half of the nodes above the leaves are multiparts, so most trees have some depth."""
    if depth == 0:
        return plain_leaves
    rfc822s = st.builds(Rfc822, markers, trees(min(depth - 1, 1)), st.none() | filenames("eml"))
    kinds: dict[str, st.SearchStrategy[Node]] = {
        "leaf": plain_leaves,
        "multipart": multiparts(depth),
        "rfc822": rfc822s,
    }
    return st.sampled_from(["leaf", "multipart", "multipart", "rfc822"]).flatmap(kinds.__getitem__)


subjects = st.lists(words, max_size=5).map(" ".join)
# The root is a multipart more often than not: a single-part message is one shape only.
messages = st.builds(Generated, multiparts(4) | trees(4), subjects, st.booleans())


@st.composite
def deep_chains(draw: st.DrawFn) -> Generated:
    """A chain of nested multiparts around the depth cap, a leaf or two at each level."""
    node: Node = draw(plain_leaves)
    for _ in range(draw(st.integers(MAX_DEPTH - 3, 40))):
        extra = draw(st.lists(plain_leaves, max_size=1))
        children = (node, *extra) if draw(st.booleans()) else (*extra, node)
        node = Multi(draw(st.sampled_from(MULTI_SUBTYPES)), children)
    return Generated(node, draw(subjects), draw(st.booleans()))


@st.composite
def wide_trees(draw: st.DrawFn) -> Generated:
    """One multipart with up to 1,100 leaves, a few templates repeated."""
    templates = draw(st.lists(plain_leaves, min_size=1, max_size=4))
    count = draw(st.integers(MAX_PARTS - 3, 1100))
    children = tuple(itertools.islice(itertools.cycle(templates), count))
    subtype = draw(st.sampled_from(["mixed", "related", "alternative"]))
    return Generated(Multi(subtype, children), draw(subjects), draw(st.booleans()))


# --- Properties over generated trees ----------------------------------------------------


def check_tree(generated: Generated) -> None:
    raw = serialise(generated)
    note(f"raw message ({len(raw)} bytes): {raw[:3000]!r}")
    ctx = run(raw)  # property 1: never raises
    check_invariants(ctx)
    expected = expected_layout(generated.root)
    body = ctx.body_text

    # Property 2: no attachment's marker reaches the body.
    for marker in set(all_markers(generated.root)):
        assert marker not in body

    # Property 3: every word of every body leaf reaches the body (leaves within the caps).
    body_words = {
        (unicodedata.normalize("NFC", word), leaf)
        for leaf, depth, index in expected.body
        if depth <= MAX_DEPTH - 1 and index <= MAX_PARTS - 2
        for word in leaf.words
    }
    for word, leaf in body_words:
        assert word in body, (word, leaf)

    if not expected.within_caps:
        # What lies beyond a cap is recorded as one attachment: one more than the parts at
        # most, and never more than MAX_PARTS (the walk stops).
        assert len(ctx.attachments) <= min(len(expected.attachments) + 1, MAX_PARTS)
        if expected.beyond_caps:
            assert ctx.attachments
        return

    # Property 4: one description per attachment part, and the right one.
    assert len(ctx.attachments) == len(expected.attachments)
    assert Counter(a.declared_type for a in ctx.attachments) == Counter(
        content_type_of(a) for a in expected.attachments
    )
    assert Counter(a.filename for a in ctx.attachments) == Counter(
        a.filename for a in expected.attachments
    )
    actual_digests = Counter((a.sha256, a.size) for a in ctx.attachments)
    binary_digests = Counter(
        (hashlib.sha256(a.payload).hexdigest(), len(a.payload))
        for a in expected.attachments
        if isinstance(a, AttLeaf) and isinstance(a.payload, bytes)
    )
    assert binary_digests <= actual_digests


@given(messages)
def test_generated_trees(generated: Generated) -> None:
    check_tree(generated)


@settings(max_examples=DEEP_EXAMPLES)
@given(deep_chains())
def test_deep_chains(generated: Generated) -> None:
    check_tree(generated)


@settings(max_examples=WIDE_EXAMPLES)
@given(wide_trees())
def test_wide_trees(generated: Generated) -> None:
    check_tree(generated)


# --- Never raising on broken bytes -------------------------------------------------------

TOKENS = (
    b"multipart/alternative",
    b"multipart/mixed",
    b"multipart/related",
    b"message/rfc822",
    b"boundary=",
    b"charset=",
    b"utf-8",
    b"iso-8859-1",
    b"base64",
    b"quoted-printable",
    b"filename",
    b"Content-Type:",
    b"Content-Transfer-Encoding:",
    b"\r\n\r\n",
    b"\n\n",
)
GARBAGE = (
    b"",
    b"x-unknown",
    b"utf-16",
    b"utf-7",
    b"\xff\xfe",
    b"base64",
    b"quoted-printable",
    b"multipart/mixed",
    b"message/rfc822",
    b"text/plain",
    b'boundary=""',
    b"=?utf-8?b?!!?=",
    b"filename*0*=utf-8''%ZZ",
    b'charset=""',
    b"\x00",
    b"\r\n\r\n",
    b"\n \n",
)
MUTATION_KINDS = (
    "flip",
    "insert",
    "delete",
    "truncate",
    "nul",
    "replace",
    "drop_boundary",
    "break_base64",
    "break_qp",
)
_BASE64_LINE = re.compile(rb"^[A-Za-z0-9+/]{8,}={0,2}\r?$", re.MULTILINE)
_QP_ESCAPE = re.compile(rb"=[0-9A-F]{2}|=\r?\n")
_BOUNDARY_LINE = re.compile(rb"^--[^\r\n]*\r?\n?", re.MULTILINE)

Mutation = tuple[str, int, bytes]
mutations: st.SearchStrategy[Mutation] = st.tuples(
    st.sampled_from(MUTATION_KINDS),
    st.integers(0, 1 << 20),
    st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(GARBAGE)),
)


def _pick(spans: list[re.Match[bytes]], position: int) -> re.Match[bytes] | None:
    return spans[position % len(spans)] if spans else None


def mutate(raw: bytes, mutation: Mutation) -> bytes:
    kind, position, data = mutation
    at = position % (len(raw) + 1)
    if kind == "flip" and raw:
        at %= len(raw)
        return raw[:at] + bytes([raw[at] ^ (data[0] if data and data[0] else 0xFF)]) + raw[at + 1 :]
    if kind == "insert":
        return raw[:at] + data + raw[at:]
    if kind == "delete":
        return raw[:at] + raw[at + 1 + (data[0] if data else 0) :]
    if kind == "truncate":
        return raw[:at]
    if kind == "nul":
        return raw[:at] + b"\x00" * (1 + position % 3) + raw[at:]
    if kind == "replace":
        token = TOKENS[position % len(TOKENS)]
        found = [m.start() for m in re.finditer(re.escape(token), raw)]
        if not found:
            return raw
        start = found[(position // len(TOKENS)) % len(found)]
        return raw[:start] + data + raw[start + len(token) :]
    if kind == "drop_boundary":
        lines = list(_BOUNDARY_LINE.finditer(raw))
        if position % 4 == 0:  # every boundary line
            return _BOUNDARY_LINE.sub(b"", raw)
        match = _pick(lines, position)
        return raw if match is None else raw[: match.start()] + raw[match.end() :]
    if kind == "break_base64":
        match = _pick(list(_BASE64_LINE.finditer(raw)), position)
        if match is None:
            return raw
        cut = match.start() + position % max(1, match.end() - match.start())
        if position % 2:  # a character outside the alphabet, or padding mid-line
            return raw[:cut] + (data if data else b"=") + raw[cut:]
        return raw[:cut] + raw[cut + 1 :]  # one character less: the padding is off
    if kind == "break_qp":
        match = _pick(list(_QP_ESCAPE.finditer(raw)), position)
        if match is None:
            return raw
        broken = (b"=", b"=G", b"=4", b"=\r", b"=Z9")[position % 5]
        return raw[: match.start()] + broken + raw[match.end() :]
    return raw


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    raw = serialise(draw(st.builds(Generated, trees(3), subjects, st.booleans())))
    for change in draw(st.lists(mutations, min_size=1, max_size=6)):
        raw = mutate(raw, change)
    return raw


@given(mutated_messages())
def test_mutated_messages_never_raise(raw: bytes) -> None:
    note(f"mutated message ({len(raw)} bytes): {raw[:3000]!r}")
    check_invariants(run(raw))


HEAD_PREFIXES = (
    b"",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n",
    b'Content-Type: multipart/alternative; boundary="b"\n\n--b\nContent-Type: text/plain\n\n',
    b"Content-Type: message/rfc822\r\n\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n",
    b"Content-Type: text/html; charset=x-unknown\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
)
arbitrary_bytes = st.builds(
    lambda prefix, data: prefix + data, st.sampled_from(HEAD_PREFIXES), st.binary(max_size=2048)
)


@given(arbitrary_bytes)
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    check_invariants(run(raw))


# --- Bugs found, kept as explicit failing examples ---------------------------------------


def test_broken_b_encoded_word_in_subject() -> None:
    check_invariants(run(b"From: agent@fbi.gov\r\nSubject: =?utf-8?b?A?=\r\n\r\nHello\r\n"))


def test_non_ascii_charset_in_encoded_word() -> None:
    check_invariants(run(b"From: agent@fbi.gov\r\nSubject: =?\xff?q?A?=\r\n\r\nHello\r\n"))


def test_nul_in_charset_label() -> None:
    check_invariants(run(b'Content-Type: text/plain; charset="\x00"\r\n\r\nHello\r\n'))


def test_broken_b_encoded_word_in_filename() -> None:
    raw = (
        b"From: agent@fbi.gov\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nHello\r\n"
        b"--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="=?utf-8?b?A?="\r\n\r\n%PDF-1.4\r\n'
        b"--b--\r\n"
    )
    check_invariants(run(raw))


def test_rfc822_before_multipart_alternative() -> None:
    raw = (
        b"From: agent@fbi.gov\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: message/rfc822\r\n\r\n"
        b"Subject: forwarded\r\n\r\nATTMARK000000000000\r\n"
        b"--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n"
        b"--c\r\nContent-Type: text/plain\r\n\r\nPreserve the account\r\n"
        b"--c--\r\n"
        b"--b--\r\n"
    )
    ctx = run(raw)
    assert [a.declared_type for a in ctx.attachments] == ["message/rfc822"]
    assert "Preserve the account" in ctx.body_text


def test_parts_cap_in_alternative() -> None:
    children = [b"--b\r\nContent-Type: text/plain\r\n\r\nPreserve the account\r\n"] + [
        b"--b\r\nContent-Type: application/octet-stream\r\n\r\nx%d\r\n" % i
        for i in range(MAX_PARTS + 100)
    ]
    raw = (
        b"From: agent@fbi.gov\r\n"
        b"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
        + b"".join(children)
        + b"--b--\r\n"
    )
    ctx = run(raw)
    assert "Preserve the account" in ctx.body_text
    assert len(ctx.attachments) <= MAX_PARTS
