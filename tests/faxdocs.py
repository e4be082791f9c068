"""Fax-like test documents: a letter rendered at 200 dpi, black and white, with noise."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw, ImageFont

DPI = 200


def render_page(lines: list[str], noise: float = 0.0005, seed: int = 7) -> Image.Image:
    """One letter-size page at 200 dpi, 1-bit, with speckle noise like a fax line adds."""
    page = Image.new("L", (int(8.5 * DPI), 11 * DPI), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=34)
    y = 140
    for line in lines:
        draw.text((140, y), line, fill=0, font=font)
        y += 52
    rng = random.Random(seed)
    pixels = page.load()
    assert pixels is not None
    for _ in range(int(page.width * page.height * noise)):
        pixels[rng.randrange(page.width), rng.randrange(page.height)] = 0
    return page.convert("1")


def tiff_bytes(pages: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    pages[0].save(
        out,
        format="TIFF",
        compression="group4",
        save_all=True,
        append_images=pages[1:],
        dpi=(DPI, DPI),
    )
    return out.getvalue()


def pdf_bytes(pages: list[Image.Image]) -> bytes:
    out = io.BytesIO()
    pages[0].convert("L").save(
        out,
        format="PDF",
        save_all=True,
        append_images=[p.convert("L") for p in pages[1:]],
        resolution=DPI,
    )
    return out.getvalue()


REQUEST_LINES = [
    "EMERGENCY DISCLOSURE REQUEST",
    "Texas Department of Public Safety - Criminal Investigations",
    "To: Law Enforcement Response Team",
    "",
    "We request subscriber information for the account @lonestar_tips",
    "and the phone number (512) 555-0147 associated with it.",
    "User ID: 88123456. The account posted a threat to harm",
    "students at a school this morning; the threat is imminent.",
    "We need the information to locate the person.",
    "Records from November 1, 2026 to present.",
    "",
    "Sincerely,",
    "Sgt. Maria Lopez",
    "Texas Department of Public Safety",
]
