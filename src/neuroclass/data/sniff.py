"""Why a file with an image suffix is not a readable image, in words a user can act on.

PIL says "cannot identify image file" for an empty file, a web page saved as .jpg and a PDF alike,
and "image file is truncated (57 bytes not processed)" for an interrupted download; these
functions look at the bytes to say which it is.
"""
from __future__ import annotations

from pathlib import Path

# first bytes -> what the content is (checked in order; a prefix match)
MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or an Office/ODF document)"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\x00\x05\x16\x07", "macOS metadata (an AppleDouble ._ file)"),
    (b"\x00\x00\x00\x01Bud1", "macOS Finder metadata (.DS_Store)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 file (Windows Thumbs.db or an old Office document)"),
    (b"8BPS", "a Photoshop document"),
    (b"<svg", "an SVG drawing (vector text; export it to PNG)"),
    (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
)
HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1")
FORMAT_NAMES = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG", ".png": "PNG",
                ".gif": "GIF", ".bmp": "BMP", ".webp": "WebP", ".tif": "TIFF", ".tiff": "TIFF"}
HEAD_BYTES = 512
UNREAD_IMAGE = "a HEIC/HEIF photo"
SIGNATURES = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"),
              (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"BM", "BMP"))


def image_format(path: Path) -> str | None:
    """The image format the first bytes announce ("JPEG", "PNG", ...), None for other content.

    >>> image_format(Path("/dev/null")) is None
    True
    """
    head = _head(path)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in SIGNATURES if head.startswith(magic)), None)


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return b""


def describe_content(path: Path) -> str | None:
    """What the file holds when it is not an image Pillow reads (e.g. "an HTML page"); None when
    the bytes do not say (an unknown binary format, or the file cannot be opened).

    >>> describe_content(Path("/dev/null"))
    'nothing: the file is empty (0 bytes)'
    """
    try:
        if path.stat().st_size == 0:
            return "nothing: the file is empty (0 bytes)"
    except OSError:
        return None
    head = _head(path)
    for magic, what in MAGIC:
        if head.startswith(magic):
            return what
    if head[4:8] == b"ftyp":
        if head[8:12] in HEIF_BRANDS:
            return f"{UNREAD_IMAGE} (as iPhones save), which Pillow does not read; convert it to JPEG"
        return "an MP4/QuickTime video or another ISO media file"
    return _describe_text(head)


def _describe_text(head: bytes) -> str | None:
    try:
        text = head.decode("utf-8").lstrip("\ufeff \t\r\n").lower()
    except UnicodeDecodeError:
        return None  # binary of a kind not listed (a cut-off multi-byte character is rare here)
    if text.startswith(("<!doctype html", "<html", "<head", "<body")) or "<html" in text:
        return "an HTML page (a download that saved an error or login page?)"
    if text.startswith("<?xml") or text.startswith("<"):
        return "XML or markup text"
    if text.startswith(("{", "[")):
        return "JSON text"
    return "text"


def ends_early(path: Path, image_format: str | None) -> bool:
    """True when a JPEG lacks its end-of-image marker, a PNG its IEND chunk or a GIF its trailer:
    the file was cut off (an interrupted download or copy). False for other formats."""
    tail = _tail(path, 64)
    if tail is None:
        return False
    stripped = tail.rstrip(b"\x00\r\n ")  # padding some tools append after the end marker
    if image_format in ("JPEG", "MPO"):
        return not stripped.endswith(b"\xff\xd9")
    if image_format == "PNG":
        return b"IEND" not in tail[-16:]
    if image_format == "GIF":
        return not stripped.endswith(b";")
    return False


def _tail(path: Path, n: int) -> bytes | None:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read()
    except OSError:
        return None


def truncated_reason(image_format: str) -> str:
    """The one-line reason for a file cut off part-way.

    >>> truncated_reason("JPEG")
    'the JPEG data is truncated: the file ends early; re-export or re-download it'
    """
    return f"the {image_format} data is truncated: the file ends early; re-export or re-download it"


def not_an_image_reason(path: Path) -> str | None:
    """"file is empty (0 bytes)", "the file is a HEIC/HEIF photo ..." or "not a PNG image: its
    content is an HTML page ..."; None when the bytes do not say what the file is."""
    what = describe_content(path)
    if what is None:
        return None
    if what.startswith("nothing"):
        return "file is empty (0 bytes)"
    if what.startswith(UNREAD_IMAGE):
        return f"the file is {what}"
    expected = f"a {FORMAT_NAMES[path.suffix.lower()]} image" if path.suffix.lower() in FORMAT_NAMES \
        else "an image"
    return f"not {expected}: its content is {what}"
