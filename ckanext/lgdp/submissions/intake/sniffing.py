"""What a file is, from its name and its first bytes: magic numbers,
markup, UTF-16/32, OLE2 containers, blank files, and the encoding of a
CSV that is not UTF-8."""
from __future__ import annotations

import codecs
import os
import re

import ckan.plugins.toolkit as tk

from .messages import N_, IntakeError, accepted

CHUNK = 1 << 20
HEAD = 64 * 1024


def extension(filename: str) -> str:
    return os.path.splitext(filename.strip().lower())[1].lstrip(".")


_BLANK = b" \t\r\n\x0b\x0c,;\"" + codecs.BOM_UTF8


def blank(head: bytes, size: int, path: str) -> bool:
    """Only whitespace, a UTF-8 BOM and separators (an empty sheet saved as
    CSV), streaming past the head only while it stays blank."""
    if head.translate(None, _BLANK):
        return False
    if size <= len(head):
        return True
    with open(path, "rb") as f:
        f.seek(len(head))
        while chunk := f.read(CHUNK):
            if chunk.translate(None, _BLANK):
                return False
    return True


# Magic numbers of things people upload by mistake. A ZIP or OLE2 container
# is told apart further on.
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", N_("a PNG image")),
    (b"\xff\xd8\xff", N_("a JPEG image")),
    (b"GIF87a", N_("a GIF image")),
    (b"GIF89a", N_("a GIF image")),
    (b"BM", ""),  # checked below: too short to trust alone
    (b"II*\x00", N_("a TIFF image")),
    (b"MM\x00*", N_("a TIFF image")),
    (b"%PDF-", N_("a PDF document")),
    (b"MZ", N_("a Windows program")),
    (b"\x7fELF", N_("a program")),
    (b"\x1f\x8b", N_("a compressed (gzip) file")),
    (b"Rar!\x1a\x07", N_("a RAR archive")),
    (b"7z\xbc\xaf\x27\x1c", N_("a 7-Zip archive")),
    (b"{\\rtf", N_("a Rich Text (RTF) document")),
    (b"%!PS", N_("a PostScript document")),
]
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MARKUP = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|title|meta|table|div|script|iframe|!--)[\s>/]",
    re.IGNORECASE)
_CONTROL = bytes(range(0, 9)) + bytes(range(14, 32)) + b"\x7f"


def sniff(head: bytes) -> tuple[str, str]:
    """What the start of a file looks like: ("zip"|"ole2"|"utf16"|"binary"|
    "html"|"xml"|"text", a phrase naming it)."""
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip", ""
    if head.startswith(_OLE2):
        return "ole2", ""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf16", "UTF-32"
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf16", "UTF-16"
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf16", "UTF-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even, odd = sample[0::2], sample[1::2]
        # UTF-16 without BOM: ASCII text with every other byte zero.
        if odd.count(0) > 0.4 * len(odd) and not even.count(0):
            return "utf16", "UTF-16"
        if even.count(0) > 0.4 * len(even) and not odd.count(0):
            return "utf16", "UTF-16"
    for magic, what in _MAGIC:
        if head.startswith(magic):
            if magic == b"BM":
                if len(head) > 14 and head[6:10] == b"\x00\x00\x00\x00":
                    return "binary", N_("a bitmap (BMP) image")
                continue
            return "binary", what
    text = head[3:] if head.startswith(codecs.BOM_UTF8) else head
    start = text.lstrip()[:1024]
    if start.startswith(b"<"):
        lowered = start.lower()
        if _MARKUP.match(start) or b"<html" in lowered:
            return "html", N_("a web page (HTML)")
        if b"urn:schemas-microsoft-com:office:spreadsheet" in head:
            return "xml", N_("an Excel 2003 XML spreadsheet")
        if lowered.startswith((b"<?xml", b"<!doctype", b"<svg", b"<rss", b"<feed")):
            return "xml", N_("an XML document")
    if b"\x00" in head:
        return "binary", N_("binary data (it contains NUL bytes)")
    sample = head[:8192]
    if sample and len(sample.translate(None, delete=_CONTROL)) < 0.9 * len(sample):
        return "binary", N_("binary data")
    return "text", ""


_OLE_STREAMS = [
    ("EncryptedPackage", "encrypted"),
    ("WordDocument", "doc"),
    ("PowerPoint Document", "ppt"),
    ("Workbook", "xls"),
    ("Book", "xls"),
]


def ole2(path: str, ext: str) -> IntakeError:
    """An OLE2 compound file: say what it holds, from its directory's
    stream names (UTF-16LE), found by a streaming scan."""
    wanted = [(name.encode("utf-16-le"), what) for name, what in _OLE_STREAMS]
    found: set[str] = set()
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            data = tail + chunk
            for needle, what in wanted:
                if needle in data:
                    found.add(what)
            tail = data[-64:]
    if "encrypted" in found:
        message = tk._("This workbook is protected with a password, so it cannot be read. "
                       "In Excel use File > Info > Protect Workbook > Encrypt with Password, "
                       "delete the password, save it as .xlsx or CSV UTF-8 and upload it again.")
        what = "encrypted"
    elif "doc" in found or "ppt" in found:
        what = "doc" if "doc" in found else "ppt"
        name = tk._("a Word document") if what == "doc" else tk._("a PowerPoint presentation")
        message = tk._("This file is {found}, not a table. Upload the return as {accepted}.").format(
            found=name, accepted=accepted())
        if ext == "csv":
            return IntakeError("binary-not-csv", message, status=415, details={"found": what})
    else:
        what = "xls"
        message = tk._("This is an old Excel 97-2003 workbook (.xls format), which cannot be "
                       "read. Open it in Excel and use File > Save As to save it as Excel "
                       "Workbook (.xlsx) or CSV UTF-8, then upload that file.")
    return IntakeError("xlsx-invalid", message, details={"found": what, "named": ext})


def guess_encoding(sample: bytes) -> str:
    """The encoding a non-UTF-8 CSV most likely has. Detectors guess poorly
    on the few non-ASCII bytes a return holds, so only a confident guess is
    taken; otherwise Windows-1252, what Excel on a UK Windows PC writes for
    "CSV (Comma delimited)"."""
    guess = None
    try:
        # optional: whichever detector is installed (chardet, else charset-normalizer)
        import chardet  # noqa: PLC0415

        result = chardet.detect(sample)
        if result.get("encoding") and (result.get("confidence") or 0) >= 0.6:
            guess = result["encoding"]
    except ImportError:
        try:
            from charset_normalizer import from_bytes  # noqa: PLC0415 - the other detector

            best = from_bytes(sample).best()
            if best is not None and best.coherence >= 0.6:
                guess = best.encoding
        except ImportError:
            pass
    if guess:
        guess = codecs.lookup(guess).name if _known(guess) else guess.lower()
        guess = {"cp1252": "windows-1252", "iso8859-1": "latin-1", "latin_1": "latin-1",
                 "mac-roman": "Mac Roman", "utf-16": "UTF-16"}.get(guess, guess)
        if guess not in ("ascii", "utf-8"):
            return guess
    try:
        sample.decode("cp1252")
        return "windows-1252"
    except UnicodeDecodeError:
        return "latin-1"


def _known(name: str) -> bool:
    try:
        codecs.lookup(name)
        return True
    except LookupError:
        return False
