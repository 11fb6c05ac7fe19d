"""Uploaded files: the bytes decide the content type (never the client's header or the file name), image sizes
come from the format's own header, and file names are cleaned before they are stored or sent back.

Only formats a browser cannot run script from are recognised: PNG, JPEG, GIF, WebP, PDF, ZIP and plain UTF-8
text. SVG, HTML, XML and everything else (executables, unknown binaries) are refused, including markup that
would otherwise pass as text.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

DEFAULT_FILENAME: Final = "file"
MAX_FILENAME_CHARS: Final = 200
MAX_EXTENSION_CHARS: Final = 16
"""A longer suffix is not treated as an extension when a long name is shortened."""
MAX_CONTROL_SHARE: Final = 0.01
"""Text may hold at most this share of control characters (other than tab, line feed, carriage return, form
feed and escape) before it is treated as binary."""

PNG: Final = "image/png"
JPEG: Final = "image/jpeg"
GIF: Final = "image/gif"
WEBP: Final = "image/webp"
PDF: Final = "application/pdf"
ZIP: Final = "application/zip"
TEXT: Final = "text/plain"
IMAGE_TYPES: Final = frozenset({PNG, JPEG, GIF, WEBP})

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_C0_CONTROL_BYTES: Final = bytes(b for b in range(0x20) if b not in b"\t\n\r\f\x1b") + b"\x7f"
"""Control characters that mark binary data (tab, line feed, carriage return, form feed and escape are text)."""
_C1_CONTROLS: Final = re.compile(rb"\xc2[\x80-\x9f]")
"""U+0080-U+009F in UTF-8."""
# Markup a browser would render as a document if it ever ignored the declared type: the WHATWG MIME sniffing
# standard's HTML patterns, XML and SVG. A text upload starting with one of these (after a BOM and whitespace)
# is refused rather than stored as text.
_MARKUP_START: Final = re.compile(
    rb"<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|svg|math"
    rb"|object|embed|link|meta|img|form|base)[\s/>]"
    rb"|<!--|<\?xml",
    re.IGNORECASE,
)
_JPEG_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""Start-of-frame markers (SOF0-SOF15 without DHT, JPG and DAC): they carry the image size."""
_JPEG_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xD8)})
"""TEM and RST0-RST7: markers without a length."""
_BIDI_CONTROLS: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Bidirectional formatting characters, which can make "gpj.exe" look like "exe.jpg"."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What the bytes are: a content type and, for images, the size in pixels when the header tells it."""

    content_type: str
    width: int | None = None
    height: int | None = None


def sniff(data: bytes) -> Sniffed | None:
    """The type of ``data`` (with image dimensions), or None when it is not one of the accepted formats."""
    if data.startswith(_PNG_SIGNATURE):
        return _with_size(PNG, _png_size(data))
    if data.startswith(b"\xff\xd8\xff"):
        return _with_size(JPEG, _jpeg_size(data))
    if data.startswith((b"GIF87a", b"GIF89a")):
        return _with_size(GIF, _gif_size(data))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _with_size(WEBP, _webp_size(data))
    if data.startswith(b"%PDF-"):
        return Sniffed(PDF)
    if data.startswith(b"PK\x03\x04"):
        return Sniffed(ZIP)
    if is_plain_text(data):
        return Sniffed(TEXT)
    return None


def is_plain_text(data: bytes) -> bool:
    """Valid UTF-8 (a BOM allowed), no NUL, nearly no control characters, and not markup (HTML, SVG, XML)."""
    if not data or b"\x00" in data:
        return False
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    if _MARKUP_START.match(text[:4096].lstrip()[:64].encode()):
        return False
    controls = len(data) - len(data.translate(None, _C0_CONTROL_BYTES)) + len(_C1_CONTROLS.findall(data))
    return controls <= len(text) * MAX_CONTROL_SHARE


def _with_size(content_type: str, size: tuple[int, int] | None) -> Sniffed:
    if size is None or size[0] <= 0 or size[1] <= 0:
        return Sniffed(content_type)
    return Sniffed(content_type, width=size[0], height=size[1])


def _uint(data: bytes, at: int, size: int, order: Literal["big", "little"]) -> int | None:
    """The unsigned integer of ``size`` bytes at ``at``, or None when the data ends before it."""
    return int.from_bytes(data[at : at + size], order) if len(data) >= at + size else None


def _png_size(data: bytes) -> tuple[int, int] | None:
    """From the IHDR chunk, which must come first: width and height are big-endian 32-bit after its type."""
    if data[12:16] != b"IHDR":
        return None
    width, height = _uint(data, 16, 4, "big"), _uint(data, 20, 4, "big")
    return None if width is None or height is None else (width, height)


def _gif_size(data: bytes) -> tuple[int, int] | None:
    """The logical screen descriptor right after the signature: little-endian 16-bit width and height."""
    width, height = _uint(data, 6, 2, "little"), _uint(data, 8, 2, "little")
    return None if width is None or height is None else (width, height)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments up to the first start-of-frame (precision, height, width), stopping at the
    start of scan or the end of the image."""
    at = 2
    while at + 1 < len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            at += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        length = _uint(data, at + 2, 2, "big")
        if length is None or length < 2:
            return None
        if marker in _JPEG_SOF_MARKERS:
            height, width = _uint(data, at + 5, 2, "big"), _uint(data, at + 7, 2, "big")
            return None if width is None or height is None else (width, height)
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """From the first chunk: VP8 (lossy key frame header), VP8L (lossless bit-packed sizes) or VP8X (canvas)."""
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = _uint(data, 26, 2, "little"), _uint(data, 28, 2, "little")
        return None if width is None or height is None else (width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        bits = _uint(data, 21, 4, "little")
        if data[20:21] != b"\x2f" or bits is None:
            return None
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width, height = _uint(data, 24, 3, "little"), _uint(data, 27, 3, "little")
        return None if width is None or height is None else (width + 1, height + 1)
    return None


def clean_filename(raw: str | None) -> str:
    """A safe display name: NFC, the last path component only (``/`` and ``\\`` both separate), without control,
    bidirectional-formatting or line-separator characters, trimmed, at most 200 characters (a long name keeps its
    extension); "file" when nothing is left."""
    if raw is None:
        return DEFAULT_FILENAME
    name = unicodedata.normalize("NFC", raw)
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if _allowed_in_filename(ch)).strip()
    if name in ("", ".", ".."):
        return DEFAULT_FILENAME
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) < MAX_EXTENSION_CHARS:
            name = stem[: MAX_FILENAME_CHARS - len(extension) - 1].rstrip() + "." + extension
        else:
            name = name[:MAX_FILENAME_CHARS].rstrip()
    return name


def _allowed_in_filename(ch: str) -> bool:
    return unicodedata.category(ch) not in ("Cc", "Cs", "Zl", "Zp") and ch not in _BIDI_CONTROLS
