"""Sorting a MIME tree into body and attachments, decoding text, and finding quoted replies."""

from __future__ import annotations

import base64
import hashlib
import io
import quopri
import zipfile
from email import message_from_bytes
from email.message import EmailMessage

import pytest

from classifiers.quotes import in_spans, quoted_spans
from core.context import MessageContext, RemovedAttachment
from ingest.attachments import AttachmentStage
from ingest.mime import MAX_DEPTH, MAX_PARTS, layout
from ingest.parse import ParseStage
from tests.conftest import ENVELOPE

HEAD = (
    b"From: Agent <agent@fbi.gov>\r\n"
    b"To: lawenforcement@example-platform.com\r\n"
    b"Subject: Preservation request\r\n"
    b"MIME-Version: 1.0\r\n"
)

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89" + b"\x00" * 20
)
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def _message() -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Agent <agent@fbi.gov>"
    msg["To"] = "lawenforcement@example-platform.com"
    msg["Subject"] = "Preservation request"
    return msg


def _run(raw: bytes) -> MessageContext:
    ctx = MessageContext(raw=raw, envelope=ENVELOPE)
    for stage in (ParseStage(), AttachmentStage()):
        ctx.verdicts.extend(stage(ctx))
    return ctx


def _text_part(charset: str | None, data: bytes, encoding: str = "8bit") -> bytes:
    ctype = b"Content-Type: text/plain"
    if charset:
        ctype += b"; charset=" + charset.encode()
    return (
        HEAD
        + ctype
        + b"\r\nContent-Transfer-Encoding: "
        + encoding.encode()
        + b"\r\n\r\n"
        + data
        + b"\r\n"
    )


def _mixed(*parts: bytes) -> bytes:
    body = b"".join(b"--b\r\n" + part + b"\r\n" for part in parts)
    return HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + body + b"--b--\r\n"


# -- body -------------------------------------------------------------------------


def test_plain_body_kept() -> None:
    msg = _message()
    msg.set_content("Please preserve @target_1.\nCase 24-0042.\n")
    ctx = _run(msg.as_bytes())
    assert ctx.body_text == "Please preserve @target_1.\nCase 24-0042."
    assert ctx.attachments == []
    assert ctx.verdicts == []
    found = layout(message_from_bytes(msg.as_bytes()))
    assert len(found.body) == 1
    assert found.attachments == []
    assert found.defects == []


def test_alternative_chooses_plain_and_drops_html_silently() -> None:
    msg = _message()
    msg.set_content("plain version @plain_one\n")
    msg.add_alternative("<p>html version @html_one</p>", subtype="html")
    ctx = _run(msg.as_bytes())
    assert ctx.body_text == "plain version @plain_one"
    assert "@html_one" not in ctx.body_text
    assert ctx.attachments == []
    assert "attachments_removed" not in ctx.reason_codes
    found = layout(message_from_bytes(msg.as_bytes()))
    assert [p.get_content_type() for p in found.body] == ["text/plain"]


def test_alternative_with_html_first_still_chooses_plain() -> None:
    raw = HEAD + (
        b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        b"--alt\r\nContent-Type: text/html\r\n\r\n<p>html @html_one</p>\r\n"
        b"--alt\r\nContent-Type: text/plain\r\n\r\nplain @plain_one\r\n"
        b"--alt--\r\n"
    )
    ctx = _run(raw)
    assert "@plain_one" in ctx.body_text
    assert "@html_one" not in ctx.body_text
    assert ctx.attachments == []


def test_html_only_converts_to_text_keeping_link_urls() -> None:
    msg = _message()
    msg.set_content(
        "<html><body><p>Please preserve "
        '<a href="https://twitter.com/bad_actor_99">this profile</a> and '
        '<a href="https://x.com/second_one">https://x.com/second_one</a>. '
        'Write to <a href="mailto:agent@fbi.gov">me</a>.</p>'
        "<script>var hidden = 1;</script></body></html>",
        subtype="html",
    )
    ctx = _run(msg.as_bytes())
    assert "this profile (https://twitter.com/bad_actor_99)" in ctx.body_text
    # a link whose text is already the URL is not repeated
    assert ctx.body_text.count("https://x.com/second_one") == 1
    assert "me (agent@fbi.gov)" in ctx.body_text
    assert "<a" not in ctx.body_text
    assert ctx.attachments == []


def test_zero_width_characters_removed_from_body() -> None:
    msg = _message()
    msg.set_content("Account @jo\u200bhn and @ja\u200dne\ufeff, case\u00ad 12\u2060\n")
    ctx = _run(msg.as_bytes())
    assert ctx.body_text == "Account @john and @jane, case 12"


def test_nul_and_control_bytes_do_not_raise_and_are_removed() -> None:
    ctx = _run(_text_part("utf-8", b"Hello\x00 @jack\x00\x01 world\x7f"))
    assert "\x00" not in ctx.body_text
    assert ctx.body_text.strip() == "Hello @jack world"


def test_nul_bytes_in_headers_do_not_raise() -> None:
    ctx = _run(b"From: agent@fbi.gov\x00\r\nSubject: x\x00y\r\n\r\nbody\x00 text\r\n")
    assert ctx.headers.subject == "x y"
    assert ctx.body_text.strip() == "body text"


def test_crlf_and_lf_copies_give_the_same_body_text() -> None:
    lf = _run(HEAD + b"Content-Type: text/plain\n\nPlease preserve @target_1.\n")
    crlf = _run(HEAD + b"Content-Type: text/plain\r\n\r\nPlease preserve @target_1.\r\n")
    assert lf.body_text == "Please preserve @target_1."
    assert crlf.body_text == lf.body_text


# -- charsets ---------------------------------------------------------------------

CHARSETS = [
    (
        "iso-8859-1",
        "Demande de pr\u00e9servation du compte @jean_dupont, dossier n\u00b0 42",
        "latin-1",
    ),
    (
        "windows-1252",
        "The \u201caccount\u201d \u2013 @smart_quotes \u2014 \u20ac100",
        "cp1252",
    ),
    ("Shift_JIS", "\u30a2\u30ab\u30a6\u30f3\u30c8 @tanaka_taro \u306e\u4fdd\u5168", "shift_jis"),
    ("ks_c_5601-1987", "\uc548\ub155\ud558\uc138\uc694 @kim_lee", "cp949"),
]


@pytest.mark.parametrize(("label", "text", "codec"), CHARSETS)
def test_declared_charset_decodes_8bit(label: str, text: str, codec: str) -> None:
    ctx = _run(_text_part(label, text.encode(codec)))
    assert ctx.body_text.strip() == text
    assert not any(d.startswith("charset_") for d in ctx.defects)


def test_windows_1252_quoted_printable() -> None:
    text = "The \u201caccount\u201d \u2013 caf\u00e9"
    ctx = _run(
        _text_part("windows-1252", quopri.encodestring(text.encode("cp1252")), "quoted-printable")
    )
    assert ctx.body_text.strip() == text


def test_shift_jis_base64() -> None:
    text = "\u30a2\u30ab\u30a6\u30f3\u30c8 @tanaka_taro \u306e\u4fdd\u5168"
    ctx = _run(_text_part("shift_jis", base64.encodebytes(text.encode("shift_jis")), "base64"))
    assert ctx.body_text == text


def test_utf8_mislabelled_as_ascii_decodes() -> None:
    text = "R\u00e9: compte @\u00e9lodie \u2013 pr\u00e9servation"
    ctx = _run(_text_part("us-ascii", text.encode("utf-8")))
    assert ctx.body_text.strip() == text


def test_cp1252_mislabelled_as_utf8_is_guessed() -> None:
    text = (
        "Nous vous prions de bien vouloir conserver les donn\u00e9es du compte, s\u2019il vous "
        "pla\u00eet. Tr\u00e8s urgent : la demande concerne une enqu\u00eate en cours \u00e0 "
        "Montr\u00e9al. Merci beaucoup \u2014 l\u2019\u00e9quipe de l\u2019enqu\u00eate."
    )
    ctx = _run(_text_part("utf-8", text.encode("cp1252")))
    assert ctx.body_text.strip() == text
    assert any(d.startswith("charset_guessed:") for d in ctx.defects)
    assert "mime_defects" in ctx.reason_codes


def test_unknown_charset_label_falls_back_to_utf8() -> None:
    ctx = _run(_text_part("x-no-such-charset", "hello @bob \u00e9".encode()))
    assert ctx.body_text.strip() == "hello @bob \u00e9"
    assert "unknown_charset:x-no-such-charset" in ctx.defects


# -- attachments ------------------------------------------------------------------


def _by_name(ctx: MessageContext) -> dict[str | None, RemovedAttachment]:
    return {a.filename: a for a in ctx.attachments}


def test_pdf_image_and_docx_attachments_are_described() -> None:
    msg = _message()
    msg.set_content("See the attached order.\n")
    docx = _docx()
    msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="order.pdf")
    msg.add_attachment(PNG, maintype="image", subtype="png", filename="screenshot.png")
    msg.add_attachment(
        docx, maintype="application", subtype=DOCX_TYPE.split("/")[1], filename="warrant.docx"
    )
    ctx = _run(msg.as_bytes())
    assert ctx.body_text == "See the attached order."
    found = _by_name(ctx)
    assert list(found) == ["order.pdf", "screenshot.png", "warrant.docx"]

    pdf = found["order.pdf"]
    assert pdf.declared_type == "application/pdf"
    assert pdf.sniffed_type == "application/pdf"
    assert pdf.size == len(PDF)
    assert pdf.sha256 == hashlib.sha256(PDF).hexdigest()

    png = found["screenshot.png"]
    assert png.declared_type == "image/png"
    assert png.sniffed_type == "image/png"
    assert png.size == len(PNG)
    assert png.sha256 == hashlib.sha256(PNG).hexdigest()

    word = found["warrant.docx"]
    assert word.declared_type == DOCX_TYPE
    assert word.sniffed_type is not None
    assert word.size == len(docx)
    assert word.sha256 == hashlib.sha256(docx).hexdigest()

    notes = [v for v in ctx.verdicts if v.code == "attachments_removed"]
    assert len(notes) == 1
    assert notes[0].message == ("3 attachment(s) removed: order.pdf, screenshot.png, warrant.docx.")


def test_declared_type_is_kept_when_sniffing_disagrees() -> None:
    msg = _message()
    msg.set_content("body\n")
    msg.add_attachment(PDF, maintype="image", subtype="jpeg", filename="photo.jpg")
    (attachment,) = _run(msg.as_bytes()).attachments
    assert attachment.declared_type == "image/jpeg"
    assert attachment.sniffed_type == "application/pdf"


def test_text_plain_attachment_with_filename_is_counted() -> None:
    msg = _message()
    msg.set_content("Body text @in_body\n")
    msg.add_attachment("Account list: @in_file\n", subtype="plain", filename="accounts.txt")
    ctx = _run(msg.as_bytes())
    assert "@in_file" not in ctx.body_text
    (attachment,) = ctx.attachments
    assert attachment.filename == "accounts.txt"
    assert attachment.declared_type == "text/plain"
    assert attachment.size == len(b"Account list: @in_file\n")


def test_inline_text_part_with_name_parameter_is_an_attachment() -> None:
    raw = _mixed(
        b"Content-Type: text/plain\r\n\r\nbody @in_body",
        b'Content-Type: text/plain; name="list.txt"\r\n\r\n@in_named_part',
    )
    ctx = _run(raw)
    assert "@in_named_part" not in ctx.body_text
    assert [a.filename for a in ctx.attachments] == ["list.txt"]


def test_message_rfc822_counted_once_and_not_walked() -> None:
    inner = _message()
    inner.set_content("Forwarded body @inner_handle\n")
    inner.add_attachment(b"zz", maintype="application", subtype="octet-stream", filename="in.bin")
    msg = _message()
    msg.set_content("Forwarding the original.\n")
    msg.add_attachment(inner)
    ctx = _run(msg.as_bytes())
    assert ctx.body_text == "Forwarding the original."
    assert "@inner_handle" not in ctx.body_text
    assert [a.declared_type for a in ctx.attachments] == ["message/rfc822"]
    assert ctx.attachments[0].size > 0


def test_text_calendar_is_an_attachment() -> None:
    msg = _message()
    msg.set_content("Meeting invite attached.\n")
    calendar = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    msg.add_attachment(calendar, subtype="calendar")
    ctx = _run(msg.as_bytes())
    assert "VCALENDAR" not in ctx.body_text
    (attachment,) = ctx.attachments
    assert attachment.declared_type == "text/calendar"
    assert attachment.filename is None


def test_calendar_alternative_is_an_attachment_and_unchosen_text_is_not() -> None:
    raw = HEAD + (
        b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        b"--alt\r\nContent-Type: text/plain\r\n\r\nplain invite\r\n"
        b"--alt\r\nContent-Type: text/html\r\n\r\n<p>html invite</p>\r\n"
        b"--alt\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n"
        b"--alt--\r\n"
    )
    ctx = _run(raw)
    assert ctx.body_text.strip() == "plain invite"
    assert [a.declared_type for a in ctx.attachments] == ["text/calendar"]


@pytest.mark.parametrize(
    ("disposition", "expected"),
    [
        (
            b"attachment; filename*=UTF-8''d%C3%A9cision%20judiciaire.pdf",
            "d\u00e9cision judiciaire.pdf",
        ),
        (
            b"attachment;\r\n filename*0*=iso-8859-1'fr'ordonnance%20de%20;\r\n"
            b" filename*1*=communication%20n%B0%201.pdf",
            "ordonnance de communication n\u00b0 1.pdf",
        ),
    ],
)
def test_rfc2231_filename_is_decoded(disposition: bytes, expected: str) -> None:
    raw = _mixed(
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody",
        b"Content-Type: application/pdf\r\nContent-Disposition: "
        + disposition
        + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"%PDF-1.4\n"),
    )
    ctx = _run(raw)
    (attachment,) = ctx.attachments
    assert attachment.filename == expected
    assert attachment.sniffed_type == "application/pdf"
    assert attachment.sha256 == hashlib.sha256(b"%PDF-1.4\n").hexdigest()


def test_bad_base64_does_not_raise() -> None:
    raw = _mixed(
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"SGVsbG8gQGphY2s=!!!***not base64",
        b'Content-Type: application/pdf; name="x.pdf"\r\nContent-Transfer-Encoding: base64\r\n'
        b"\r\nJVBERi0x$$$LjQK=",
    )
    ctx = _run(raw)
    assert "@jack" in ctx.body_text
    (attachment,) = ctx.attachments
    assert attachment.filename == "x.pdf"
    assert attachment.size > 0


# -- hostile trees ----------------------------------------------------------------


def _nested(depth: int) -> bytes:
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    closing = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return HEAD + opening + b"Content-Type: text/plain\r\n\r\ndeep body" + closing


def test_nesting_up_to_max_depth_is_walked() -> None:
    ctx = _run(_nested(MAX_DEPTH))
    assert ctx.body_text.strip() == "deep body"
    assert "nesting_too_deep" not in ctx.defects
    assert ctx.attachments == []


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, MAX_DEPTH + 10, 100])
def test_nesting_deeper_than_max_depth_stops(depth: int) -> None:
    ctx = _run(_nested(depth))
    assert ctx.defects.count("nesting_too_deep") == 1
    assert "mime_defects" in ctx.reason_codes
    assert ctx.body_text == ""  # the body lay beyond the cap
    assert len(ctx.attachments) == 1  # what lies beyond is one attachment
    found = layout(message_from_bytes(_nested(depth)))
    assert found.defects == ["nesting_too_deep"]


def test_very_deep_nesting_does_not_raise_in_attachment_stage() -> None:
    ctx = _run(_nested(400))
    assert "nesting_too_deep" in ctx.defects


def test_extremely_deep_nesting_does_not_raise_in_parse_stage() -> None:
    ctx = MessageContext(raw=_nested(1200), envelope=ENVELOPE)
    ParseStage()(ctx)
    assert ctx.defects


def _many(count: int) -> bytes:
    parts = b"".join(
        b"--b\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count)
    )
    return HEAD + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + b"--b--\r\n"


def test_parts_up_to_max_parts_are_walked() -> None:
    # the multipart root counts as one part
    found = layout(message_from_bytes(_many(MAX_PARTS - 1)))
    assert found.defects == []
    assert len(found.body) == MAX_PARTS - 1
    assert found.parts_seen == MAX_PARTS


def test_more_than_max_parts_stop_without_exception() -> None:
    ctx = _run(_many(MAX_PARTS + 50))
    assert ctx.defects.count("too_many_parts") == 1
    assert "mime_defects" in ctx.reason_codes
    assert len(ctx.attachments) == 1
    assert "part 0" in ctx.body_text
    assert f"part {MAX_PARTS + 49}" not in ctx.body_text


# -- quoted replies ---------------------------------------------------------------


def _quoted_text(text: str) -> list[str]:
    return [text[start:end] for start, end in quoted_spans(text)]


def test_greater_than_lines_are_quoted() -> None:
    text = "Thanks for the reply.\n> earlier line one\n> earlier line two\nMy new text\n"
    assert _quoted_text(text) == ["> earlier line one\n> earlier line two\n"]


def test_indented_greater_than_line_is_quoted() -> None:
    text = "new\n   > indented quote\nnew again"
    assert _quoted_text(text) == ["   > indented quote\n"]


def test_attribution_line_quotes_to_the_end() -> None:
    text = (
        "Following up on @new_target.\n\n"
        "On Mon, Jan 1, 2024 at 10:00 AM Platform <le@example-platform.com> wrote:\n"
        "> We need more about @old_target.\n"
        "trailing line\n"
    )
    spans = quoted_spans(text)
    start = text.index("On Mon")
    assert spans == [(start, len(text))]
    assert not in_spans(text.index("@new_target"), spans)
    assert in_spans(text.index("@old_target"), spans)


def test_original_message_block_quotes_to_the_end() -> None:
    text = (
        "New text @new_one\n\n"
        "-----Original Message-----\n"
        "From: Platform\nSent: Monday\nSubject: x\n\nold @old_one\n"
    )
    assert _quoted_text(text) == [text[text.index("-----Original") :]]


def test_outlook_from_sent_block_quotes_to_the_end() -> None:
    text = "New\nFrom: Agent Smith\nSent: Tuesday, 2 Jan\nTo: x\n\nold\n"
    assert _quoted_text(text) == [text[text.index("From:") :]]


def test_forwarded_message_with_header_block_is_not_quoted() -> None:
    text = (
        "Please see the threat below.\n\n"
        "---------- Forwarded message ---------\n"
        "From: Victim <victim@example.com>\n"
        "Date: Mon, Jan 1, 2024 at 9:00 AM\n"
        "Subject: threat\n"
        "To: agent@fbi.gov\n\n"
        "The account @threatening_one is threatening me.\n"
    )
    assert quoted_spans(text) == []


def test_text_without_quotes_has_no_spans() -> None:
    assert quoted_spans("") == []
    assert quoted_spans("no quotes here\nat all\n") == []


def test_parse_stage_records_quoted_spans_of_body_text() -> None:
    msg = _message()
    msg.set_content("New request for @new_target.\n\n> old line @old_target\n")
    ctx = _run(msg.as_bytes())
    assert [ctx.body_text[s:e] for s, e in ctx.quoted_spans] == ["> old line @old_target"]
