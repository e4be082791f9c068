"""Fax decompression bombs: a few hundred bytes that describe a page of a billion pixels.

Every cap is checked before the expensive step, so these documents are refused without
rendering or decoding them, and without Tesseract (the tests that need it say so). Through
the real road (SMTP listener, fax-gateway email, spool, runner, SQLite) an over-cap fax is a
held case with its reason, never a crash and never a message in bad/.
"""

from __future__ import annotations

import shutil
import struct
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from config.settings import FaxSettings
from core.envelope import Envelope
from ingest.ocr import OcrLimits, ocr_document
from le_intake.app import build_app
from tests.conftest import REQUEST_ADDRESS, Listener, make_settings
from tests.faxdocs import REQUEST_LINES, render_page, tiff_bytes

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (.ci/run installs it)"
)

# The reported one: a page of 14,400 x 14,400 pt, 1.6 Gpx (about 10 GiB as RGBA) at 200 dpi.
BIG_PAGE_PDF = (
    b"%PDF-1.4\n"
    b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 14400 14400]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)


def pdf_with_page(width: float, height: float, pages: int = 1) -> bytes:
    """A PDF of ``pages`` empty pages of the given size (pdfium rebuilds the missing xref)."""
    kids = " ".join(f"{3 + i} 0 R" for i in range(pages))
    objects = [
        b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n",
        f"2 0 obj<</Type/Pages/Kids[{kids}]/Count {pages}>>endobj\n".encode(),
    ]
    for i in range(pages):
        objects.append(
            f"{3 + i} 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 {width} {height}]>>"
            "endobj\n".encode()
        )
    return b"%PDF-1.4\n" + b"".join(objects) + b"trailer<</Root 1 0 R>>\n%%EOF\n"


def pdf_with_image(px: int) -> bytes:
    """A letter-size page drawing an embedded image that declares ``px`` x ``px`` pixels."""
    content = b"q 612 0 0 792 0 0 cm /Im1 Do Q"
    return (
        b"%PDF-1.4\n"
        b"1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
        b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
        b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]"
        b"/Resources<</XObject<</Im1 4 0 R>>>>/Contents 5 0 R>>endobj\n"
        + f"4 0 obj<</Type/XObject/Subtype/Image/Width {px}/Height {px}".encode()
        + b"/BitsPerComponent 8/ColorSpace/DeviceGray/Length 4>>stream\nabcd\nendstream endobj\n"
        + f"5 0 obj<</Length {len(content)}>>stream\n".encode()
        + content
        + b"\nendstream endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


Frame = tuple[int, int, int | None] | tuple[int, int, int | None, bytes]


def bomb_tiff(frames: list[Frame]) -> bytes:
    """A little-endian, uncompressed 1-bit TIFF whose frames declare (width, height, dpi),
    holding 4 bytes each unless real packed rows are given: what a header says, not what
    the file holds, is what a bomb check must read."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    previous_next = 4  # where the offset of the next IFD is to be written
    for frame in frames:
        width, height, dpi = frame[:3]
        data = frame[3] if len(frame) == 4 else b"\x00" * 4
        strip = len(out)
        out += data
        rational = len(out)
        if dpi:
            out += struct.pack("<IIII", dpi, 1, dpi, 1)
        entries = [
            struct.pack("<HHII", 256, 4, 1, width),
            struct.pack("<HHII", 257, 4, 1, height),
            struct.pack("<HHIHH", 258, 3, 1, 1, 0),
            struct.pack("<HHIHH", 259, 3, 1, 1, 0),
            struct.pack("<HHIHH", 262, 3, 1, 1, 0),  # BlackIsZero: Pillow's "1" bytes
            struct.pack("<HHII", 273, 4, 1, strip),
            struct.pack("<HHIHH", 277, 3, 1, 1, 0),
            struct.pack("<HHII", 278, 4, 1, height),
            struct.pack("<HHII", 279, 4, 1, len(data)),
        ]
        if dpi:
            entries += [
                struct.pack("<HHII", 282, 5, 1, rational),
                struct.pack("<HHII", 283, 5, 1, rational + 8),
                struct.pack("<HHIHH", 296, 3, 1, 2, 0),
            ]
        ifd = len(out)
        struct.pack_into("<I", out, previous_next, ifd)
        out += struct.pack("<H", len(entries)) + b"".join(entries)
        previous_next = len(out)
        out += b"\x00\x00\x00\x00"
    return bytes(out)


def limits(**changes: float) -> OcrLimits:
    base = OcrLimits.from_settings(FaxSettings())
    return OcrLimits(
        int(changes.get("max_pages", base.max_pages)),
        changes.get("max_page_points", base.max_page_points),
        int(changes.get("max_page_pixels", base.max_page_pixels)),
        changes.get("max_seconds", base.max_seconds),
    )


def codes(data: bytes, **changes: float) -> list[str]:
    result = ocr_document(data, 200, "eng", 30, limits=limits(**changes))
    return [c.code for c in result.caps]


def test_the_reported_333_byte_pdf_is_refused_unrendered() -> None:
    assert len(BIG_PAGE_PDF) < 333
    result = ocr_document(BIG_PAGE_PDF, 200, "eng", 30)
    assert result.pages == 1
    assert result.pages_read == 0
    [cap] = result.caps
    assert cap.code == "fax_page_too_large"
    assert "14,400 x 14,400 pt" in cap.message


@pytest.mark.parametrize(
    ("width", "height"), [(14400, 14400), (612, 20000), (1e9, 10), (1729, 100)]
)
def test_any_side_over_the_points_cap_is_refused(width: float, height: float) -> None:
    assert codes(pdf_with_page(width, height)) == ["fax_page_too_large"]


@pytest.mark.parametrize("box", ["0 0 0 0", "0 0 -612 -792", "0 0 1e400 1"])
def test_a_page_box_without_a_usable_size_is_a_verdict_not_a_crash(box: str) -> None:
    # pdfium falls back to a default box for some, the cap or the size check takes others;
    # no exception either way (a zero time cap keeps Tesseract out of it)
    data = pdf_with_page(612, 792).replace(b"0 0 612 792", box.encode())
    result = ocr_document(data, 200, "eng", 30, limits=limits(max_seconds=1e-9))
    assert result.pages == 1
    assert result.pages_read == 0
    assert len(result.caps) == 1
    assert result.caps[0].code in ("fax_page_unreadable", "fax_page_too_large", "fax_ocr_time_cap")


def test_an_embedded_image_over_the_pixel_cap_is_refused_before_rendering() -> None:
    assert codes(pdf_with_image(40_000)) == ["fax_image_too_many_pixels"]


def test_a_render_over_the_pixel_cap_is_scaled_down_not_refused() -> None:
    # 1,700 pt square at 200 dpi would be 22 Mpx; the cap allows 1 Mpx: about 42 dpi.
    # (A zero time cap stops before Tesseract, so this runs without it.)
    result = ocr_document(
        pdf_with_page(1700, 1700),
        200,
        "eng",
        30,
        limits=limits(max_page_pixels=1_000_000, max_seconds=1e-9),
    )
    [(page, dpi)] = result.scaled
    assert page == 1
    assert 30 <= dpi <= 43
    assert [c.code for c in result.caps] == ["fax_ocr_time_cap"]


def test_tiff_frames_over_the_pixel_cap_are_refused_undecoded_on_every_frame() -> None:
    # Pillow checks only the first frame when it opens a file; the second is bigger still.
    data = bomb_tiff([(9_000, 9_000, None), (30_000, 30_000, None)])
    result = ocr_document(data, 200, "eng", 30)
    assert [c.code for c in result.caps] == ["fax_page_too_many_pixels"] * 2
    assert result.pages == 2
    assert result.pages_read == 0


def test_a_tiff_over_pillows_own_bomb_limit_is_a_cap_not_an_unreadable_file() -> None:
    assert codes(bomb_tiff([(40_000, 40_000, None)])) == ["fax_image_too_many_pixels"]


def test_a_tiff_frame_over_the_points_cap_is_refused() -> None:
    # 2,000 px at 10 dpi: 200 inches, 14,400 pt
    assert codes(bomb_tiff([(2_000, 2_000, 10)])) == ["fax_page_too_large"]


def test_pages_past_the_cap_are_counted_not_read() -> None:
    data = bomb_tiff([(2_000, 2_000, 10)] * 40)
    result = ocr_document(data, 200, "eng", 5)
    assert result.pages_looked_at == 5
    assert result.more_pages is True
    assert len(result.caps) == 5


def test_a_pdf_with_many_pages_is_looked_at_only_up_to_the_cap() -> None:
    result = ocr_document(pdf_with_page(14400, 14400, pages=50), 200, "eng", 3)
    assert result.pages == 50
    assert result.pages_looked_at == 3


def test_the_ocr_time_cap_stops_the_document() -> None:
    result = ocr_document(
        tiff_bytes([render_page(["x"])]), 200, "eng", 30, limits=limits(max_seconds=1e-9)
    )
    assert [c.code for c in result.caps] == ["fax_ocr_time_cap"]
    assert result.pages_read == 0


@needs_tesseract
def test_tesseract_is_stopped_at_the_time_cap() -> None:
    page = render_page(REQUEST_LINES)
    result = ocr_document(
        tiff_bytes([page, page, page]), 200, "eng", 30, limits=limits(max_seconds=0.3)
    )
    assert [c.code for c in result.caps] == ["fax_ocr_time_cap"]
    assert result.pages_read < 3


@needs_tesseract
def test_good_pages_are_read_beside_a_refused_one() -> None:
    page = render_page(REQUEST_LINES)
    real = (page.width, page.height, 200, page.tobytes())
    result = ocr_document(bomb_tiff([real, (30_000, 30_000, None)]), 200, "eng", 30)
    assert result.pages == 2
    assert result.pages_read == 1
    assert "lonestar_tips" in result.text
    assert [c.code for c in result.caps] == ["fax_page_too_many_pixels"]


# -- through the real road ------------------------------------------------------------------


def gateway_fax(document: bytes, filename: str, subtype: str, message_id: str) -> bytes:
    msg = EmailMessage()
    # as the boundary MTA hands it over: the gateway's own domain authenticated
    msg["Authentication-Results"] = (
        "le-intake.local; dkim=pass header.d=efax.example; dmarc=pass header.from=efax.example"
    )
    msg["From"] = "eFax Service <fax-gateway@efax.example>"
    msg["To"] = REQUEST_ADDRESS
    msg["Subject"] = "New fax from +1 512-424-2999, 1 page"
    msg["Message-ID"] = message_id
    msg.set_content("You have received a fax. See the attachment.\n")
    msg.add_attachment(
        document, maintype=subtype.split("/")[0], subtype=subtype.split("/")[1], filename=filename
    )
    return msg.as_bytes()


@pytest.mark.parametrize(
    ("document", "filename", "ctype", "code"),
    [
        (BIG_PAGE_PDF, "fax.pdf", "application/pdf", "fax_page_too_large"),
        (pdf_with_image(40_000), "fax.pdf", "application/pdf", "fax_image_too_many_pixels"),
        (
            bomb_tiff([(30_000, 30_000, None)] * 3),
            "f.tif",
            "image/tiff",
            "fax_image_too_many_pixels",
        ),
        (bomb_tiff([(9_000, 9_000, None)] * 3), "f.tif", "image/tiff", "fax_page_too_many_pixels"),
    ],
)
async def test_a_bomb_fax_becomes_a_held_case_with_its_reason(
    listener: Listener, document: bytes, filename: str, ctype: str, code: str
) -> None:
    raw = gateway_fax(document, filename, ctype, "<bomb-1@efax.example>")
    await listener.send(raw, "bounce@efax.example", [REQUEST_ADDRESS])
    assert await listener.app.runner.drain() == 1
    [summary] = await listener.app.store.list_cases()
    case = await listener.app.store.get_case(summary["id"])
    assert case is not None
    assert case["status"] == "held"
    assert case["channel"] == "fax-email"
    reasons = case["messages"][0]["reasons"]
    assert code in reasons
    assert "fax_unverified" in reasons
    assert listener.app.spool.bad_items() == []
    assert listener.app.spool.pending() == []


async def test_fax_pages_over_the_cap_hold_the_case(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, fax={"max_pages": 2})
    app = await build_app(settings)
    try:
        raw = gateway_fax(bomb_tiff([(2_000, 2_000, 10)] * 6), "f.tif", "image/tiff", "<p@e>")
        envelope = Envelope(
            "bounce@efax.example", (REQUEST_ADDRESS,), datetime.now(UTC), peer="127.0.0.1:2500"
        )
        app.spool.put(raw, envelope)
        assert await app.runner.drain() == 1
        [summary] = await app.store.list_cases()
        case = await app.store.get_case(summary["id"])
        assert case is not None
        assert {"fax_pages_over_limit", "fax_page_too_large"} <= set(case["messages"][0]["reasons"])
    finally:
        await app.close()
