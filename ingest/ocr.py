"""Fax documents to text: PDF pages rendered by pdfium, TIFF frames by Pillow, Tesseract.

Runs inside the analysis worker process, never on the event loop. A fax document comes
from anyone, and a few hundred bytes can describe a page of a billion pixels (a 333-byte
PDF with a 14,400 pt page renders to 1.6 Gpx at 200 dpi; pdfium's ``to_pil()`` bypasses
Pillow's own bomb check). So every cap is checked *before* the expensive step, from what
the document declares:

- pages: at most ``max_pages`` are looked at (the rest are counted, not read; a TIFF's
  frames are counted only that far, since Pillow's frame count is quadratic);
- page size: a PDF page whose longer side exceeds ``max_page_points`` is refused unrendered;
- pixels: a PDF page whose render at ``ocr_dpi`` would exceed ``max_page_pixels`` is
  rendered at the lower resolution that fits; an image drawn on a PDF page, or a TIFF
  frame, declaring more pixels than that is refused undecoded (decoding it is the bomb);
- time: OCR of one fax stops after ``max_ocr_seconds`` (Tesseract gets the time left as
  its timeout and is killed at it).

Each refusal or stop is a ``CapHit`` in the result, which the fax stage turns into a hold
verdict with its reason: the case is held for staff, the analysis never crashes on it.
The worker's memory cap (``RLIMIT_AS``) is the backstop for what the checks cannot see.

pytesseract writes each page image (and Tesseract its output) to ``tempfile``'s folder,
which the analysis worker points at its own folder under ``<data_dir>/tmp/ocr``.
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from collections.abc import Generator
from dataclasses import dataclass, field

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytesseract
from PIL import Image

from config.settings import FaxSettings

# Tesseract's OpenMP threads fight each other (and the analysis workers) on small machines:
# measured here, one thread reads a 200-dpi page in 0.6 s against 2.4 s with the default.
# An operator's own setting wins.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

# Embedded images looked at per PDF page before rendering; a page with more is refused.
MAX_IMAGE_OBJECTS = 2000


class OcrError(Exception):
    """The document cannot be read at all (not a PDF/image, Tesseract failed)."""


@dataclass(frozen=True)
class CapHit:
    """A cap that stopped or skipped part of a document: ``code`` for the verdict."""

    code: str
    message: str


@dataclass(frozen=True)
class OcrLimits:
    max_pages: int
    max_page_points: float
    max_page_pixels: int
    max_seconds: float

    @classmethod
    def from_settings(cls, fax: FaxSettings) -> OcrLimits:
        return cls(fax.max_pages, fax.max_page_points, fax.max_page_pixels, fax.max_ocr_seconds)


@dataclass(frozen=True)
class OcrResult:
    text: str
    # Pages the document has; when ``more_pages`` it has at least that many (a TIFF's
    # frames are only counted as far as the page cap).
    pages: int
    pages_read: int
    seconds: float
    caps: tuple[CapHit, ...] = ()
    # Pages rendered below ocr_dpi to stay under the pixel cap: (page number, dpi).
    scaled: tuple[tuple[int, int], ...] = ()
    more_pages: bool = False
    pages_looked_at: int = field(default=0)


class _Refused(Exception):
    def __init__(self, hit: CapHit) -> None:
        self.hit = hit


def _check_images(page: pypdfium2.PdfPage, number: int, limits: OcrLimits) -> None:
    """Refuse a page that draws an image declaring more pixels than the cap: pdfium
    decodes an embedded image at its own size, whatever size it is drawn at."""
    for count, obj in enumerate(
        page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=8), start=1
    ):
        if count > MAX_IMAGE_OBJECTS:
            raise _Refused(
                CapHit(
                    "fax_page_too_complex",
                    f"Page {number} draws more than {MAX_IMAGE_OBJECTS} images; it was not "
                    "rendered.",
                )
            )
        if not isinstance(obj, pypdfium2.PdfImage):
            continue
        width, height = obj.get_px_size()
        if width * height > limits.max_page_pixels:
            raise _Refused(
                CapHit(
                    "fax_image_too_many_pixels",
                    f"Page {number} holds a {width} x {height} px image, over the "
                    f"{limits.max_page_pixels:,} px cap; it was not rendered.",
                )
            )


def _render_pdf_page(
    pdf: pypdfium2.PdfDocument, index: int, dpi: int, limits: OcrLimits
) -> tuple[Image.Image, int]:
    """Page ``index`` as a grayscale image and the dpi it was rendered at; ``_Refused``
    when a cap forbids rendering it. Checked from the page box before anything is drawn."""
    number = index + 1
    page = pdf[index]
    try:
        width, height = page.get_size()
        if not (math.isfinite(width) and math.isfinite(height)) or width <= 0 or height <= 0:
            raise _Refused(CapHit("fax_page_unreadable", f"Page {number} has no usable page size."))
        if max(width, height) > limits.max_page_points:
            raise _Refused(
                CapHit(
                    "fax_page_too_large",
                    f"Page {number} is {width:,.0f} x {height:,.0f} pt, over the "
                    f"{limits.max_page_points:,.0f} pt cap; it was not rendered.",
                )
            )
        _check_images(page, number, limits)
        scale = dpi / 72
        # pdfium's bitmap is ceil(side * scale) on each side (PdfPage.render)
        if math.ceil(width * scale) * math.ceil(height * scale) > limits.max_page_pixels:
            scale = math.sqrt(limits.max_page_pixels / (width * height)) * 0.999
            while math.ceil(width * scale) * math.ceil(height * scale) > limits.max_page_pixels:
                scale *= 0.99
        if math.ceil(width * scale) < 1 or math.ceil(height * scale) < 1:
            raise _Refused(CapHit("fax_page_unreadable", f"Page {number} is too small to read."))
        image = page.render(scale=scale, grayscale=True).to_pil()
        return image, round(scale * 72)
    except pypdfium2.PdfiumError as exc:
        raise _Refused(
            CapHit("fax_page_unreadable", f"Page {number} could not be rendered: {exc}.")
        ) from exc
    finally:
        page.close()


# (page number, the page's image or the cap that refused it, dpi it was rendered at or 0)
Page = tuple[int, Image.Image | CapHit, int]


def _open_pdf(data: bytes) -> pypdfium2.PdfDocument:
    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise OcrError(f"unreadable PDF: {exc}") from exc


def _pdf_pages(
    pdf: pypdfium2.PdfDocument, dpi: int, count: int, limits: OcrLimits
) -> Generator[Page, None, None]:
    for index in range(count):
        try:
            image, used_dpi = _render_pdf_page(pdf, index, dpi, limits)
        except _Refused as refused:
            yield index + 1, refused.hit, 0
            continue
        yield index + 1, image, used_dpi


def _open_image(data: bytes) -> Image.Image:
    """Open (not decode) an image; Pillow's own bomb check is replaced by ours, which
    looks at every frame and knows our cap."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise _Refused(
            CapHit("fax_image_too_many_pixels", f"The image declares too many pixels ({exc}).")
        ) from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise OcrError(f"unreadable image: {exc}") from exc


def _count_frames(image: Image.Image, limit: int) -> int:
    """Frames of an image, counted only up to ``limit + 1`` (enough to know there are more
    than the cap; Pillow's own count walks every frame, quadratically)."""
    count = 0
    try:
        for index in range(limit + 1):
            image.seek(index)
            count = index + 1
    except EOFError:
        pass
    except (OSError, ValueError, SyntaxError) as exc:
        if count == 0:
            raise OcrError(f"unreadable image: {exc}") from exc
    return max(count, 1)


def _frame_cap(image: Image.Image, number: int, limits: OcrLimits) -> CapHit | None:
    """The cap the current frame is over, from its header alone (nothing decoded)."""
    width, height = image.size
    if width * height > limits.max_page_pixels:
        return CapHit(
            "fax_page_too_many_pixels",
            f"Page {number} is {width:,} x {height:,} px, over the "
            f"{limits.max_page_pixels:,} px cap; it was not decoded.",
        )
    dpi = image.info.get("dpi")
    if isinstance(dpi, tuple) and len(dpi) == 2 and min(float(d) for d in dpi) > 0:
        points = max(width / float(dpi[0]), height / float(dpi[1])) * 72
        if points > limits.max_page_points:
            return CapHit(
                "fax_page_too_large",
                f"Page {number} is {points:,.0f} pt on its longer side, over the "
                f"{limits.max_page_points:,.0f} pt cap; it was not decoded.",
            )
    return None


def _image_pages(image: Image.Image, count: int, limits: OcrLimits) -> Generator[Page, None, None]:
    for index in range(count):
        number = index + 1
        try:
            image.seek(index)
            hit = _frame_cap(image, number, limits)
            if hit is not None:
                yield number, hit, 0
                continue
            frame = image.convert("L")
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            yield (
                number,
                CapHit("fax_page_unreadable", f"Page {number} could not be read: {exc}."),
                0,
            )
            continue
        yield number, frame, 0


def is_fax_document(content_type: str, data: bytes) -> bool:
    return (
        data.startswith(b"%PDF")
        or data[:4] in (b"II*\x00", b"MM\x00*")
        or content_type
        in (
            "application/pdf",
            "image/tiff",
            "image/tif",
        )
    )


def ocr_time_cap(limits: OcrLimits, read: int) -> str:
    return (
        f"OCR stopped at the {limits.max_seconds:g} s cap per fax after {read} page(s); "
        "the rest was not read."
    )


def _time_cap(limits: OcrLimits, read: int) -> CapHit:
    return CapHit("fax_ocr_time_cap", ocr_time_cap(limits, read))


def ocr_document(
    data: bytes,
    dpi: int,
    language: str,
    max_pages: int,
    *,
    limits: OcrLimits | None = None,
) -> OcrResult:
    """The text of a PDF or image document, within ``limits`` (default: the FaxSettings
    defaults, with ``max_pages``). ``limits.max_seconds`` is the time this call may take.
    Raises ``OcrError`` only when the document cannot be opened at all or Tesseract fails;
    everything a cap stopped is in ``result.caps``."""
    if limits is None:
        limits = OcrLimits.from_settings(FaxSettings())
    start = time.perf_counter()
    deadline = start + limits.max_seconds
    limit = max(0, min(max_pages, limits.max_pages))
    caps: list[CapHit] = []
    scaled: list[tuple[int, int]] = []
    texts: list[str] = []
    looked = 0
    document: pypdfium2.PdfDocument | Image.Image
    if data.startswith(b"%PDF"):
        document = pdf = _open_pdf(data)
        total = len(pdf)
        more = False
        pages = _pdf_pages(pdf, dpi, min(total, limit), limits)
    else:
        try:
            document = image = _open_image(data)
        except _Refused as refused:
            return OcrResult("", 1, 0, time.perf_counter() - start, (refused.hit,), (), False, 1)
        try:
            total = _count_frames(image, limit)
        except OcrError:
            image.close()
            raise
        more = total > limit
        pages = _image_pages(image, min(total, limit), limits)
    try:
        for number, page, used_dpi in pages:
            looked += 1
            if isinstance(page, CapHit):
                caps.append(page)
                continue
            if used_dpi and used_dpi < dpi:
                scaled.append((number, used_dpi))
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                caps.append(_time_cap(limits, len(texts)))
                break
            try:
                texts.append(pytesseract.image_to_string(page, lang=language, timeout=remaining))
            except RuntimeError as exc:
                if "timeout" not in str(exc).lower():
                    raise OcrError(f"tesseract failed: {exc}") from exc
                caps.append(_time_cap(limits, len(texts)))
                break
            except pytesseract.TesseractError as exc:
                raise OcrError(f"tesseract failed: {exc}") from exc
            finally:
                page.close()
    finally:
        pages.close()
        document.close()
    return OcrResult(
        "\n\f\n".join(t.strip() for t in texts),
        total,
        len(texts),
        time.perf_counter() - start,
        tuple(caps),
        tuple(scaled),
        more,
        looked,
    )
