"""Sniffing uploaded files from their bytes, image sizes from their headers, and cleaning file names. The images
are built byte by byte here, following each format's specification."""

from __future__ import annotations

import struct
import zlib

import pytest

from chat_messages.domain.files import (
    DEFAULT_FILENAME,
    MAX_FILENAME_CHARS,
    Sniffed,
    clean_filename,
    is_plain_text,
    sniff,
)


def png(width: int, height: int) -> bytes:
    """A complete, valid RGB PNG: signature, IHDR, one IDAT of black rows, IEND, each chunk with its CRC."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, deflate, no filter/interlace
    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))  # filter type 0 per row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def gif(width: int, height: int) -> bytes:
    """A GIF89a with a two-colour global table and one 1x1 image (LZW min code size 2), then the trailer."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # global colour table of 2 entries
    colours = b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + colours + image + b"\x3b"


def jpeg(width: int, height: int, *, sof: int = 0xC0, fill: bool = False) -> bytes:
    """SOI, a JFIF APP0, a quantisation table, a start of frame (``sof``) with three components, a Huffman
    table, a start of scan and EOI: the marker structure a decoder walks."""

    def segment(marker: int, payload: bytes) -> bytes:
        return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload

    app0 = segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    dqt = segment(0xDB, b"\x00" + bytes(range(1, 65)))
    frame = segment(sof, struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01")
    dht = segment(0xC4, b"\x00" + b"\x01" + b"\x00" * 15 + b"\x00")
    scan = segment(0xDA, b"\x03\x01\x00\x02\x11\x03\x11\x00\x3f\x00") + b"\x12\x34"
    return b"\xff\xd8" + app0 + dqt + (b"\xff" if fill else b"") + dht + frame + scan + b"\xff\xd9"


def riff(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossy(width: int, height: int) -> bytes:
    """VP8: a key frame tag (3 bytes), the start code 9d 01 2a, then 14-bit width and height (scale bits 0)."""
    frame_tag = b"\x30\x01\x00"
    return riff(b"VP8 ", frame_tag + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 10)


def webp_lossless(width: int, height: int) -> bytes:
    """VP8L: signature 0x2f, then width-1 and height-1 in 14 bits each, alpha flag and version in 32 bits."""
    bits = (width - 1) | (height - 1) << 14
    return riff(b"VP8L", b"\x2f" + struct.pack("<I", bits) + b"\x00" * 8)


def webp_extended(width: int, height: int) -> bytes:
    """VP8X: flags, 3 reserved bytes, then canvas width-1 and height-1 in 24 bits each."""
    payload = b"\x10\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return riff(b"VP8X", payload)


# images


def test_a_real_png_is_an_image_with_its_size() -> None:
    data = png(3, 2)
    assert zlib.decompress(data[41:-16]) == (b"\x00" + b"\x00" * 9) * 2  # the pixel rows really are in it
    assert sniff(data) == Sniffed("image/png", width=3, height=2)


def test_a_wide_png_reads_32_bit_sizes() -> None:
    assert sniff(png(70_000, 1)) == Sniffed("image/png", width=70_000, height=1)


def test_gif_sizes_come_from_the_logical_screen() -> None:
    assert sniff(gif(5, 4)) == Sniffed("image/gif", width=5, height=4)
    assert sniff(b"GIF87a" + gif(300, 2)[6:]) == Sniffed("image/gif", width=300, height=2)


@pytest.mark.parametrize("sof", [0xC0, 0xC1, 0xC2, 0xC3, 0xC9, 0xCF])
def test_jpeg_sizes_come_from_the_start_of_frame(sof: int) -> None:
    assert sniff(jpeg(640, 480, sof=sof)) == Sniffed("image/jpeg", width=640, height=480)


def test_jpeg_fill_bytes_and_a_huffman_table_before_the_frame_are_skipped() -> None:
    assert sniff(jpeg(17, 9, fill=True)) == Sniffed("image/jpeg", width=17, height=9)


def test_a_jpeg_without_a_frame_header_is_still_a_jpeg_without_a_size() -> None:
    truncated = jpeg(10, 10)[:30]
    assert sniff(truncated) == Sniffed("image/jpeg")
    scan_first = b"\xff\xd8\xff\xda\x00\x02\xff\xd9"
    assert sniff(scan_first) == Sniffed("image/jpeg")
    assert sniff(b"\xff\xd8\xff\xe0\x00\x01") == Sniffed("image/jpeg")  # a length shorter than itself


@pytest.mark.parametrize(
    ("data", "width", "height"),
    [
        (webp_lossy(400, 300), 400, 300),
        (webp_lossless(1, 16384), 1, 16384),
        (webp_lossless(123, 45), 123, 45),
        (webp_extended(16_777_216, 2), 16_777_216, 2),
    ],
)
def test_webp_sizes_of_the_three_kinds(data: bytes, width: int, height: int) -> None:
    assert sniff(data) == Sniffed("image/webp", width=width, height=height)


def test_images_with_broken_or_short_headers_keep_their_type_without_a_size() -> None:
    assert sniff(png(3, 2)[:20]) == Sniffed("image/png")
    assert sniff(png(0, 2)) == Sniffed("image/png")  # zero is no size
    assert sniff(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dCgBI" + b"\x00" * 20) == Sniffed("image/png")
    assert sniff(b"GIF89a\x01") == Sniffed("image/gif")
    assert sniff(riff(b"VP8 ", b"\x00" * 20)) == Sniffed("image/webp")  # no start code
    assert sniff(riff(b"VP8L", b"\x00" * 8)) == Sniffed("image/webp")  # no signature
    assert sniff(riff(b"ALPH", b"\x00" * 8)) == Sniffed("image/webp")
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00") == Sniffed("image/webp")


# documents, archives, text


def test_pdf_and_zip_by_signature() -> None:
    assert sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj") == Sniffed("application/pdf")
    assert sniff(b"PK\x03\x04\x14\x00\x00\x00\x08\x00") == Sniffed("application/zip")


@pytest.mark.parametrize(
    "text",
    [
        "hello\n",
        "Grüße, 世界, 👋\r\n\ttabbed\f",
        "\ufeffa BOM first",
        "log line \x1b[31mred\x1b[0m",
        "a < b and c > d\n<not a tag at the start",
        "    plain text that mentions <html> later",
    ],
)
def test_utf8_text_is_plain_text(text: str) -> None:
    assert sniff(text.encode()) == Sniffed("text/plain")


def test_a_few_control_characters_in_a_long_text_are_allowed() -> None:
    assert is_plain_text(b"x" * 1000 + b"\x07" * 10)
    assert not is_plain_text(b"x" * 1000 + b"\x07" * 11)
    assert not is_plain_text(("x" * 100 + "\u0085" * 2).encode())  # C1 controls count too


# refused


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
        b"<!DOCTYPE html><html><body>hi</body></html>",
        b"\xef\xbb\xbf  \n<HTML>",
        b"<script>alert(1)</script>",
        b"<iframe src=x>",
        b"<!-- a comment --><p>",
        b"\t<body onload=alert(1)>",
        b"<a href='javascript:alert(1)'>x</a>",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff",  # a Windows executable
        b"\x7fELF\x02\x01\x01\x00",  # a Linux one
        b"\xca\xfe\xba\xbe\x00\x00\x00\x34",
        "UTF-16 text".encode("utf-16"),
        b"caf\xe9 in Latin-1",
        b"binary\x01\x02\x03\x04",
        b"",
    ],
)
def test_markup_executables_and_unknown_bytes_are_refused(data: bytes) -> None:
    assert sniff(data) is None


def test_a_client_chosen_name_or_type_never_matters() -> None:
    # only bytes go in: an SVG is refused whatever it is called, a PNG is a PNG
    assert sniff(b"<svg onload=alert(1)>") is None
    assert sniff(png(1, 1)) == Sniffed("image/png", width=1, height=1)


# file names


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, DEFAULT_FILENAME),
        ("", DEFAULT_FILENAME),
        ("   ", DEFAULT_FILENAME),
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\ada\\notes.txt", "notes.txt"),
        ("dir/", DEFAULT_FILENAME),
        ("..", DEFAULT_FILENAME),
        ("a/..", DEFAULT_FILENAME),
        (".bashrc", ".bashrc"),
        ("tab\there\nnew\x00line\x7f.txt", "tabherenewline.txt"),
        ("evil\u202egpj.exe", "evilgpj.exe"),
        ("line\u2028sep.txt", "linesep.txt"),
        ("  spaced name.txt  ", "spaced name.txt"),
        ("Cafe\u0301.txt", "Café.txt"),  # NFC
        ("photo 👋.png", "photo 👋.png"),
    ],
)
def test_file_names_are_cleaned(raw: str | None, clean: str) -> None:
    assert clean_filename(raw) == clean


def test_long_names_are_cut_to_200_characters_keeping_the_extension() -> None:
    cut = clean_filename("ü" * 300 + ".tar.gz")
    assert len(cut) == MAX_FILENAME_CHARS
    assert cut.endswith("ü.gz")
    no_extension = clean_filename("x" * 250)
    assert no_extension == "x" * MAX_FILENAME_CHARS
    odd_suffix = clean_filename("a" * 150 + "." + "b" * 100)
    assert len(odd_suffix) == MAX_FILENAME_CHARS
    assert odd_suffix.startswith("a" * 150 + ".")
    assert clean_filename("a" * 200) == "a" * 200
