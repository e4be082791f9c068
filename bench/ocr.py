"""Fax OCR: time per page and word accuracy against the rendered text.

Renders request letters as 200-dpi black-and-white pages (as a fax machine sends them),
with increasing speckle noise, writes them as TIFF (Group 4) and PDF, OCRs them the way
the fax stage does, and compares the words with the text that was rendered.

    python -m bench.ocr [--pages 6]
"""

from __future__ import annotations

import argparse
import difflib
import random
import statistics

from ingest.ocr import ocr_document
from tests.faxdocs import REQUEST_LINES, pdf_bytes, render_page, tiff_bytes

EXTRA = [
    "Please preserve all records for the account @north_star_77 and User ID 4412093.",
    "Contact phone on the account: +1 (713) 555-0199; email target.person@example.net.",
    "Pursuant to 18 U.S.C. 2703(f), preserve for 90 days from the date of this letter.",
    "Case No. 2026-CR-00412. Respond by December 15, 2026.",
]


def word_accuracy(reference: str, recognised: str) -> float:
    ref, got = reference.split(), recognised.split()
    matcher = difflib.SequenceMatcher(a=ref, b=got, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(1, len(ref))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=6)
    args = parser.parse_args()
    rng = random.Random(3)
    rows = []
    for n in range(args.pages):
        lines = REQUEST_LINES + rng.sample(EXTRA, 2)
        noise = [0.0, 0.0005, 0.002][n % 3]
        page = render_page(lines, noise=noise, seed=n)
        for kind, data in (("tiff", tiff_bytes([page])), ("pdf", pdf_bytes([page]))):
            result = ocr_document(data, 200, "eng", 5)
            rows.append((kind, noise, result.seconds, word_accuracy("\n".join(lines), result.text)))
    for kind in ("tiff", "pdf"):
        mine = [r for r in rows if r[0] == kind]
        print(
            f"{kind}: {len(mine)} pages, {statistics.mean(r[2] for r in mine):.2f} s/page, "
            f"word accuracy {statistics.mean(r[3] for r in mine):.1%} "
            f"(worst {min(r[3] for r in mine):.1%})"
        )
    for noise in sorted({r[1] for r in rows}):
        acc = statistics.mean(r[3] for r in rows if r[1] == noise)
        print(f"  noise {noise:.4f} of pixels: word accuracy {acc:.1%}")


if __name__ == "__main__":
    main()
