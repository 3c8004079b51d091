"""Intake: the quick, synchronous checks an uploaded return goes through
before its table is validated against the standard's Table Schema.

``inspect_upload`` answers the question "can this file be read as a table at
all?" and, when it cannot, says why in words a council officer can act on
(``IntakeError``: a stable ``code``, a ``message``, an HTTP ``status`` and
``details``). When it can, it hands back a UTF-8, comma-separated CSV for the
validator (``Intake.csv_path``): the upload itself when it already is one, or
a temporary file (an Excel workbook converted, a byte order mark removed).

Checks run cheapest first and stop at the first problem:

1. ``too-large`` (413): the size, from the file system.
2. ``unsupported-format`` (415): the name's extension. .csv and .xlsx are
   accepted; a file named .xls is looked into rather than refused, because
   systems often export web pages or real .xlsx files under that name.
3. What the first 64 KB are (magic numbers, markup, byte patterns):
   - a ZIP archive is read as a workbook whatever its name (an .xlsx named
     .csv or .xls is converted, with a note); other ZIPs (.ods, .docx,
     plain archives) are refused: ``binary-not-csv`` when named .csv, else
     ``xlsx-invalid``;
   - an OLE2 compound file is ``xlsx-invalid``: a password-protected
     workbook (its directory names an "EncryptedPackage" stream), an Excel
     97-2003 .xls, or a Word/PowerPoint file (``binary-not-csv`` if .csv);
   - ``empty-file``: 0 bytes, or only blanks, a byte order mark and
     separators (an empty sheet saved as CSV);
   - ``html-not-csv`` (415): a web page or XML document;
   - text or binary named .xlsx/.xls: ``xlsx-invalid``;
   - ``encoding``: UTF-16/UTF-32 (Excel's "Unicode Text");
   - ``binary-not-csv`` (415): images, PDF, programs, archives, NUL bytes.
4. CSV: ``encoding`` within the first 64 KB, ``header-missing`` (line 1
   blank: frictionless would take the blank line as the header),
   ``delimiter`` (the header split by ';', tab or '|' into more columns
   than by ',', or an Excel "sep=;" line; a "sep=," line is removed with a
   note), then one streaming pass over the whole file in 1 MiB chunks:
   ``encoding`` (the first byte that is not UTF-8, with its line and
   offset) and ``binary-not-csv`` (a NUL byte), counting lines and, only
   when a BOM or "sep=," line is removed, copying to the temporary file.
   Nothing else is held in memory, so a 1M-row CSV costs well under a second.
5. Workbooks: ``xlsx-bomb`` (more than 10,000 entries, a total uncompressed
   size over ``xlsx_max_uncompressed`` or an entry over 1 MiB compressed
   more than ``xlsx_max_ratio`` to 1), decided from the ZIP directory
   before anything is decompressed (and Python's zipfile will not inflate
   an entry past the size the directory declares); ``xlsx-invalid``
   (openpyxl cannot open it), ``xlsx-empty`` (no visible worksheet, or the
   chosen one is empty), ``header-missing`` (row 1 of the sheet empty) and
   ``xlsx-uncalculated`` (a formula without a cached value: the first cell
   and how many). Conversion streams (openpyxl read-only).

Not intake errors (the table validation reports them row by row, with rows
numbered as in the file): ragged rows, blank rows, wrong codes, periods or
types, and a file with a header but no data rows. That last one is valid
for frictionless; whether a return may be empty is the caller's decision:
``rows_hint`` is 0 for it.

Workbooks: the sheet converted is the first visible sheet named "Data"
(case and surrounding spaces ignored), else the first visible worksheet.
Values are the cached results Excel stored (``data_only``), written as a
person expects to read them in a CSV: whole numbers without ".0", numbers to
Excel's 15 significant digits and never in exponent form, dates as ISO
8601 (2024-03-31, or 2024-03-31T10:15:00 when there is a time), TRUE/FALSE.
A number formatted as a percentage is written as Excel shows it ("95.6%"),
not as the fraction it stores (0.956), so a percentage cell in a numeric
column is reported by validation instead of passing as the wrong number.
Rows keep the numbers they have in the sheet (row 1 is the header; empty
rows inside the table are kept, empty rows after it dropped), so validation
messages point at the rows the officer sees in Excel.

``formula_errors`` is a validation step of its own: cells that a
spreadsheet would run as a formula when the CSV is opened (CSV injection),
as frictionless-shaped error dicts numbered exactly like frictionless's.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import math
import os
import re
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Any, Iterator

__all__ = ["IntakeError", "Intake", "Limits", "inspect_upload", "formula_errors"]

CHUNK = 1 << 20
HEAD = 64 * 1024
MAX_ZIP_ENTRIES = 10_000
# The compression ratio is checked only for entries that expand past this:
# small, repetitive XML parts compress far beyond any sensible ratio.
RATIO_CHECK_FROM = 1 << 20

SAVE_AS_CSV = 'In Excel, use File > Save As, choose "CSV UTF-8 (Comma delimited) (*.csv)"'
ACCEPTED = "a CSV file (.csv, saved as CSV UTF-8) or an Excel workbook (.xlsx)"


class IntakeError(Exception):
    """An upload that cannot be read as a table, and what to do about it."""

    def __init__(self, code: str, message: str, *, status: int = 400,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = dict(details or {})

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message,
                "status": self.status, "details": self.details}


@dataclass
class Intake:
    """A readable upload: ``csv_path`` is UTF-8, comma-separated CSV.

    ``rows_hint``: data rows after the header. For a workbook, the rows
    written; for a CSV, the physical lines after the header (a line break
    inside a quoted cell counts, so it can only overestimate; 0 means there
    is no data row). ``notes``: harmless normalisations, for the uploader.
    """

    format: str
    csv_path: str
    rows_hint: int | None = None
    notes: list[str] = field(default_factory=list)
    temporary: bool = False

    def cleanup(self) -> None:
        """Delete ``csv_path`` if intake created it; the upload is left alone."""
        if self.temporary:
            try:
                os.unlink(self.csv_path)
            except FileNotFoundError:
                pass
            self.temporary = False

    def __enter__(self) -> "Intake":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()


# --------------------------------------------------------------------------
# Entry point


@dataclass(frozen=True)
class Limits:
    """What a table may hold, checked before any heavy work: columns in the
    header, characters in a cell, data rows. None: no limit."""

    columns: int | None = None
    cell_chars: int | None = None
    rows: int | None = None


NO_LIMITS = Limits()


def inspect_upload(path: str, filename: str, *, max_bytes: int,
                   xlsx_max_uncompressed: int = 200 * 1024 * 1024,
                   xlsx_max_ratio: int = 100, limits: Limits = NO_LIMITS) -> Intake:
    """Check an uploaded file and return it as CSV ready for validation, or
    raise ``IntakeError`` for the first problem found (see module doc)."""
    size = os.path.getsize(path)
    if size > max_bytes:
        raise IntakeError(
            "too-large",
            f"The file is {_size(size)}, over the {_size(max_bytes)} limit for an upload. "
            "Check it holds only the return (no extra sheets, images or thousands of "
            "empty formatted rows); a workbook saved as CSV UTF-8 is usually much smaller.",
            status=413, details={"bytes": size, "max_bytes": max_bytes})

    ext = _extension(filename or os.path.basename(path))
    if ext not in ("csv", "xlsx", "xls"):
        raise _unsupported(ext)
    if size == 0:
        raise _empty(size)

    with open(path, "rb") as f:
        head = f.read(HEAD)
    kind, what = _sniff(head)
    zip_limits = (xlsx_max_uncompressed, xlsx_max_ratio)

    if kind == "zip":
        return _inspect_zip(path, ext, zip_limits, limits)
    if kind == "ole2":
        raise _ole2(path, ext)
    if _blank(head, size, path):
        raise _empty(size)
    if kind in ("html", "xml"):
        raise _markup(kind, what, ext)
    if ext != "csv":
        found = what if kind == "binary" else "plain text"
        hint = ("if it is a CSV file, rename it to end in .csv; otherwise open it in Excel "
                "and save it as Excel Workbook (.xlsx)" if kind != "binary" else
                "open the return in Excel, save it as Excel Workbook (.xlsx) or CSV UTF-8 "
                "and upload that file")
        raise IntakeError(
            "xlsx-invalid",
            f"This file is named .{ext} but holds {found}, not an Excel workbook: {hint}.",
            details={"found": found, "named": ext})
    if kind == "utf16":
        raise IntakeError(
            "encoding",
            f"The file is saved as {what} (Excel calls it \"Unicode Text\"), not UTF-8. "
            f"{SAVE_AS_CSV} and upload the new file.",
            details={"line": 1, "byte": 0, "found": what.lower()})
    if kind == "binary":
        raise IntakeError(
            "binary-not-csv",
            f"This file is {what}, not a CSV file. Upload the return itself as {ACCEPTED}.",
            status=415, details={"found": what})
    return _inspect_csv(path, head, size, limits)


# --------------------------------------------------------------------------
# Small helpers


def _size(n: int) -> str:
    """Sizes in MB (MiB), as upload limits are set; tiny ones (only seen in
    tests) in KB or bytes."""
    mb = n / (1024 * 1024)
    if mb >= 10:
        return f"{mb:.0f} MB"
    if mb >= 0.1:
        return f"{mb:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"


def _extension(filename: str) -> str:
    return os.path.splitext(filename.strip().lower())[1].lstrip(".")


# How to get an accepted file from what was uploaded, by extension.
_FORMAT_HINTS = {
    "xlsm": "For a macro-enabled workbook, save a copy as Excel Workbook (.xlsx).",
    "xlsb": "For an Excel binary workbook, save a copy as Excel Workbook (.xlsx).",
    "ods": "In LibreOffice use File > Save As and choose Excel 2007-365 (.xlsx) or "
           "Text CSV (UTF-8, comma).",
    "numbers": "In Numbers use File > Export To > CSV (Unicode UTF-8) or Excel.",
    "tsv": "Open it in Excel and save it as CSV UTF-8 (Comma delimited).",
    "txt": "If it holds the table, open it in Excel and save it as CSV UTF-8 "
           "(Comma delimited).",
    "zip": "Upload the return file itself, not a ZIP archive.",
    "pdf": "A PDF cannot be read as data: upload the spreadsheet the return was made from.",
}


def _unsupported(ext: str) -> IntakeError:
    shown = f'".{ext}"' if ext else "without an extension"
    hint = _FORMAT_HINTS.get(ext, "")
    return IntakeError(
        "unsupported-format",
        f"Files {'of type ' if ext else ''}{shown} cannot be accepted: upload the return "
        f"as {ACCEPTED}." + (f" {hint}" if hint else ""),
        status=415, details={"extension": ext})


def _empty(size: int) -> IntakeError:
    if size == 0:
        return IntakeError(
            "empty-file",
            "The file is empty (0 bytes). Check you chose the right file and that it "
            "was saved before uploading.", details={"bytes": 0})
    return IntakeError(
        "empty-file",
        "The file holds no data: only blank lines, spaces or empty cells. Check you "
        "chose the right file and that it was saved before uploading.",
        details={"bytes": size})


_BLANK = b" \t\r\n\x0b\x0c,;\"" + codecs.BOM_UTF8


def _blank(head: bytes, size: int, path: str) -> bool:
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
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"BM", ""),  # checked below: too short to trust alone
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF-", "a PDF document"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a program"),
    (b"\x1f\x8b", "a compressed (gzip) file"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"{\\rtf", "a Rich Text (RTF) document"),
    (b"%!PS", "a PostScript document"),
]
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MARKUP = re.compile(
    rb"<(?:!doctype\s+html|html|head|body|title|meta|table|div|script|iframe|!--)[\s>/]",
    re.IGNORECASE)
_CONTROL = bytes(range(0, 9)) + bytes(range(14, 32)) + b"\x7f"


def _sniff(head: bytes) -> tuple[str, str]:
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
                    return "binary", "a bitmap (BMP) image"
                continue
            return "binary", what
    text = head[3:] if head.startswith(codecs.BOM_UTF8) else head
    start = text.lstrip()[:1024]
    if start.startswith(b"<"):
        lowered = start.lower()
        if _MARKUP.match(start) or b"<html" in lowered:
            return "html", "a web page (HTML)"
        if b"urn:schemas-microsoft-com:office:spreadsheet" in head:
            return "xml", "an Excel 2003 XML spreadsheet"
        if lowered.startswith((b"<?xml", b"<!doctype", b"<svg", b"<rss", b"<feed")):
            return "xml", "an XML document"
    if b"\x00" in head:
        return "binary", "binary data (it contains NUL bytes)"
    sample = head[:8192]
    if sample and len(sample.translate(None, delete=_CONTROL)) < 0.9 * len(sample):
        return "binary", "binary data"
    return "text", ""


def _markup(kind: str, what: str, ext: str) -> IntakeError:
    if kind == "html":
        named = {"xls": ".xls (many systems export web pages under that name)",
                 "xlsx": ".xlsx"}.get(ext, ".csv")
        message = (
            f"This file is a web page (HTML), not a table, although it is named {named}: "
            "it may be an error or sign-in page saved instead of the data, or a sheet "
            "saved as \"Web Page\". Open the return in Excel and save it as "
            f"{ACCEPTED}.")
    else:
        message = (f"This file is {what}, not a CSV file or an Excel workbook. Open it in "
                   f"Excel and save it as {ACCEPTED}.")
    return IntakeError("html-not-csv", message, status=415, details={"found": kind})


_OLE_STREAMS = [
    ("EncryptedPackage", "encrypted"),
    ("WordDocument", "doc"),
    ("PowerPoint Document", "ppt"),
    ("Workbook", "xls"),
    ("Book", "xls"),
]


def _ole2(path: str, ext: str) -> IntakeError:
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
        message = ("This workbook is protected with a password, so it cannot be read. "
                   "In Excel use File > Info > Protect Workbook > Encrypt with Password, "
                   "delete the password, save it as .xlsx or CSV UTF-8 and upload it again.")
        what = "encrypted"
    elif "doc" in found or "ppt" in found:
        what = "doc" if "doc" in found else "ppt"
        name = "a Word document" if what == "doc" else "a PowerPoint presentation"
        message = f"This file is {name}, not a table. Upload the return as {ACCEPTED}."
        if ext == "csv":
            return IntakeError("binary-not-csv", message, status=415, details={"found": what})
    else:
        what = "xls"
        message = ("This is an old Excel 97-2003 workbook (.xls format), which cannot be "
                   "read. Open it in Excel and use File > Save As to save it as Excel "
                   "Workbook (.xlsx) or CSV UTF-8, then upload that file.")
    return IntakeError("xlsx-invalid", message, details={"found": what, "named": ext})


# --------------------------------------------------------------------------
# CSV


_DELIMITERS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}


def _fields(line: str, delimiter: str) -> int:
    try:
        return len(next(csv.reader([line], delimiter=delimiter), []))
    except csv.Error:
        return len(line.split(delimiter))


def _encoding_error(data: bytes, pos: int, offset: int, line: int) -> IntakeError:
    """``data[pos]`` is the first byte that is not UTF-8; it lies at ``offset``
    in the file, on ``line``."""
    bad = data[pos:pos + 1]
    sample = data[max(0, pos - 32 * 1024):pos + 32 * 1024]
    found = _guess_encoding(sample)
    name = found[0].upper() + found[1:]
    shown = ""
    try:
        char = bad.decode("cp1252" if found == "windows-1252" else found)
        if char.isprintable():
            shown = f', "{char}" in {name}'
    except (LookupError, UnicodeDecodeError):
        pass
    return IntakeError(
        "encoding",
        f"The file is not saved as UTF-8 (it looks like {name}): line {line} has a "
        f"character that cannot be read (byte 0x{bad.hex().upper()}{shown}). "
        f"{SAVE_AS_CSV} and upload the new file.",
        details={"line": line, "byte": offset, "found": found,
                 "value": f"0x{bad.hex().upper()}"})


def _guess_encoding(sample: bytes) -> str:
    """The encoding a non-UTF-8 CSV most likely has. Detectors guess poorly
    on the few non-ASCII bytes a return holds, so only a confident guess is
    taken; otherwise Windows-1252, what Excel on a UK Windows PC writes for
    "CSV (Comma delimited)"."""
    guess = None
    try:
        import chardet  # noqa: PLC0415

        result = chardet.detect(sample)
        if result.get("encoding") and (result.get("confidence") or 0) >= 0.6:
            guess = result["encoding"]
    except ImportError:
        try:
            from charset_normalizer import from_bytes  # noqa: PLC0415

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


def _line_of(data: bytes, pos: int, newlines: int = 0, returns: int = 0) -> int:
    """The line holding ``data[pos]``, after ``newlines`` LF and ``returns``
    CR line ends already seen. Lines end with LF or CRLF; with CR alone in
    old Mac files, so CRs count only while no LF has been seen."""
    if newlines or b"\n" in data[:pos]:
        return newlines + data.count(b"\n", 0, pos) + 1
    return returns + data.count(b"\r", 0, pos) + 1


def _first_line(data: bytes) -> tuple[str, int]:
    """The first line of ``data`` (decoded leniently) and where the next starts."""
    match = re.search(rb"\r\n|\n|\r", data)
    if match is None:
        return data.decode("utf-8", "replace"), len(data)
    return data[:match.start()].decode("utf-8", "replace"), match.end()


def _too_many_columns(found: int, limit: int, more: bool = False) -> IntakeError:
    shown = f"more than {found:,}" if more else f"{found:,}"
    return IntakeError(
        "too-many-columns",
        f"The first row of this file has {shown} columns; a file for this return may have at most "
        f"{limit:,}. Check that the columns of the return go across the first row (not down), "
        "remove the columns that are not part of the return, and upload the file again.",
        details={"columns": found, "max_columns": limit, "at_least": more})


def _too_many_rows(limit: int) -> IntakeError:
    return IntakeError(
        "too-many-rows",
        f"This file has more than {limit:,} rows of data, the most a file may hold. Check it "
        "holds only the return (no empty formatted rows below it), or split it, and upload it again.",
        details={"max_rows": limit})


def _cell_too_long(row: int, column: int, length: int, limit: int, where: str = "") -> IntakeError:
    at = where or f"Row {row}, column {column}"
    return IntakeError(
        "cell-too-long",
        f"{at} holds {length:,} characters; a cell may hold at most {limit:,}. Check that cell "
        "(a quote mark left open can join many rows into one cell), shorten it and upload the file again.",
        details={"row": row, "column": column, "chars": length, "max_chars": limit})


def _long_cell(path: str, skip: int, limit: int) -> IntakeError | None:
    """The first cell over ``limit`` characters, read with the csv module as
    frictionless reads the file (the rare path: some line is that long)."""
    from frictionless.formats.csv import settings as csv_settings  # noqa: PLC0415

    csv.field_size_limit(csv_settings.FIELD_SIZE_LIMIT)  # as frictionless's parser sets it
    with open(path, encoding="utf-8", newline="") as f:
        f.seek(skip)
        try:
            for number, record in enumerate(csv.reader(f), start=1):
                for column, cell in enumerate(record, start=1):
                    if len(cell) > limit:
                        return _cell_too_long(number, column, len(cell), limit)
        except csv.Error as e:
            return IntakeError(
                "cell-too-long",
                f"A cell of this file is too long to read ({e}); a cell may hold at most {limit:,} "
                "characters. Check for a quote mark left open, and upload the file again.",
                details={"max_chars": limit})
    return None


def _inspect_csv(path: str, head: bytes, size: int, limits: Limits = NO_LIMITS) -> Intake:
    notes: list[str] = []
    skip = 0
    if head.startswith(codecs.BOM_UTF8):
        skip = len(codecs.BOM_UTF8)
        notes.append("UTF-8 byte order mark (BOM) removed")

    # The start first: a bad byte there is reported before the header is judged.
    body = head[skip:]
    try:
        codecs.utf_8_decode(body, "strict", len(head) >= size)
    except UnicodeDecodeError as e:
        raise _encoding_error(body, e.start, skip + e.start, _line_of(body, e.start)) from None

    first, after = _first_line(body)
    if not first.strip():
        raise IntakeError(
            "header-missing",
            "Line 1 of the file is blank: the column names must be on the first line. "
            "Delete the empty lines above the column names and upload the file again.",
            details={"line": 1})
    sep = re.fullmatch(r'\s*"?sep=(.?)"?\s*', first, re.IGNORECASE)
    if sep:
        if sep.group(1) in _DELIMITERS:
            raise _delimiter_error(sep.group(1), first, from_sep_line=True)
        # Excel's "sep=," hint: harmless, but it would be read as the header.
        skip += after
        notes.append('Excel\'s "sep=," first line removed')
        first, _ = _first_line(body[after:])
        if not first.strip():
            raise IntakeError(
                "header-missing",
                'The line after Excel\'s "sep=," line is blank: the column names must '
                "come first. Delete the empty lines above them and upload the file again.",
                details={"line": 2})
    commas = _fields(first, ",")
    best = max(_DELIMITERS, key=lambda d: _fields(first, d))
    if _fields(first, best) >= 2 and _fields(first, best) > commas:
        raise _delimiter_error(best, first)

    if limits.columns is not None and commas > limits.columns:
        complete = skip + after < len(head) or len(head) >= size
        raise _too_many_columns(commas, limits.columns, more=not complete)

    max_lines = limits.rows + 2 if limits.rows is not None else None
    lines, ends_with_newline, temp, longest = _stream(path, skip, copy=skip > 0, max_lines=max_lines)
    rows = lines + (0 if ends_with_newline else 1) - 1
    if limits.rows is not None and rows > limits.rows:
        if temp:
            os.unlink(temp)
        raise _too_many_rows(limits.rows)
    if limits.cell_chars is not None and longest > limits.cell_chars:
        problem = _long_cell(path, skip, limits.cell_chars)
        if problem is not None:
            if temp:
                os.unlink(temp)
            raise problem
    return Intake(format="csv", csv_path=temp or path, rows_hint=max(rows, 0),
                  notes=notes, temporary=temp is not None)


def _delimiter_error(delimiter: str, header: str, from_sep_line: bool = False) -> IntakeError:
    name = _DELIMITERS[delimiter]
    shown = header if len(header) <= 80 else header[:77] + "..."
    if from_sep_line:
        where = f"its first line, {shown.strip().strip(chr(34))}, tells Excel to split the columns with {name}"
    else:
        where = f'line 1 reads "{shown.replace(chr(9), " <tab> ")}"'
    fix = SAVE_AS_CSV + " and upload the new file."
    if delimiter == ";":
        fix += (" If Excel still writes semicolons, the computer's list separator is set "
                "to ';' (Windows: Region settings > Additional settings).")
    return IntakeError(
        "delimiter",
        f"The columns of this file are separated by {name}, not commas ({where}). {fix}",
        details={"line": 1, "found": delimiter})


def _stream(path: str, skip: int, *, copy: bool,
            max_lines: int | None = None) -> tuple[int, bool, str | None, int]:
    """Read the file once from ``skip``: check that every byte is UTF-8 and
    none is NUL, count the lines, measure the longest (in bytes, so never
    less than its characters) and copy to a temporary file if asked. Stops
    once more than ``max_lines`` line ends are counted. Returns (line ends,
    whether the file ends with one, the copy's path, the longest line)."""
    newlines = returns = 0
    longest = run = 0  # run: bytes of the line still open at the chunk's end
    pending = b""
    last = b""
    offset = skip  # file offset of the first byte of ``pending + chunk``
    temp = out = None

    if copy:
        fd, temp = tempfile.mkstemp(prefix="lgdp-intake-", suffix=".csv")
        out = os.fdopen(fd, "wb")
    try:
        with open(path, "rb") as f:
            f.seek(skip)
            while True:
                chunk = f.read(CHUNK)
                final = not chunk
                data = pending + chunk
                if not data:
                    break
                nul = data.find(b"\x00")
                if nul >= 0:
                    line = _line_of(data, nul, newlines, returns)
                    raise IntakeError(
                        "binary-not-csv",
                        f"Line {line} of the file holds binary data (a NUL byte), so it is "
                        f"not a text CSV file. {SAVE_AS_CSV} and upload the new file.",
                        status=415, details={"line": line, "byte": offset + nul})
                if data.isascii():
                    consumed = len(data)
                else:
                    try:
                        _, consumed = codecs.utf_8_decode(data, "strict", final)
                    except UnicodeDecodeError as e:
                        raise _encoding_error(data, e.start, offset + e.start,
                                              _line_of(data, e.start, newlines, returns)) from None
                done = data[:consumed]
                newlines += done.count(b"\n")
                returns += done.count(b"\r")
                if done:
                    parts = done.split(b"\n") if newlines or b"\r" not in done else done.split(b"\r")
                    if len(parts) == 1:
                        run += len(done)
                    else:
                        longest = max(longest, run + len(parts[0]), max(map(len, parts[1:-1]), default=0))
                        run = len(parts[-1])
                    longest = max(longest, run)
                if max_lines is not None and max(newlines, returns) > max_lines:
                    break
                if done:
                    last = done[-1:]
                if out is not None:
                    out.write(done)
                pending = data[consumed:]
                offset += consumed
                if final:
                    break
        if out is not None:
            out.close()
            out = None
    except BaseException:
        if out is not None:
            out.close()
        if temp:
            os.unlink(temp)
        raise
    return (newlines or returns), last in (b"\n", b"\r"), temp, longest


# --------------------------------------------------------------------------
# Workbooks


def _inspect_zip(path: str, ext: str, zip_limits: tuple[int, int], limits: Limits = NO_LIMITS) -> Intake:
    max_uncompressed, max_ratio = zip_limits
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise _corrupt(ext, e) from None
    with archive:
        infos = archive.infolist()
        what = _zip_kind(archive, infos)
        if what is not None:
            if ext == "csv":
                raise IntakeError(
                    "binary-not-csv",
                    f"This file is {what}, not a CSV file. Upload the return itself as "
                    f"{ACCEPTED}.", status=415, details={"found": what})
            hint = (" In LibreOffice use File > Save As and choose Excel 2007-365 (.xlsx)."
                    if "OpenDocument" in what else "")
            raise IntakeError(
                "xlsx-invalid",
                f"This file is {what}, not an Excel workbook (.xlsx). Upload the return as "
                f"{ACCEPTED}.{hint}", details={"found": what})
        if len(infos) > MAX_ZIP_ENTRIES:
            raise _bomb(f"it holds {len(infos):,} parts (the limit is {MAX_ZIP_ENTRIES:,})",
                        {"entries": len(infos), "max_entries": MAX_ZIP_ENTRIES})
        total = sum(i.file_size for i in infos)
        if total > max_uncompressed:
            raise _bomb(
                f"it would expand to {_size(total)} when opened (the limit is "
                f"{_size(max_uncompressed)})",
                {"uncompressed": total, "max_uncompressed": max_uncompressed})
        for i in infos:
            if i.file_size > RATIO_CHECK_FROM and i.file_size > max_ratio * max(i.compress_size, 1):
                ratio = i.file_size // max(i.compress_size, 1)
                raise _bomb(
                    f'its part "{i.filename}" is compressed {ratio:,} to 1 (the limit is '
                    f"{max_ratio} to 1)",
                    {"entry": i.filename, "ratio": ratio, "max_ratio": max_ratio})
        if any(i.flag_bits & 0x1 for i in infos):
            raise IntakeError(
                "xlsx-invalid",
                "The parts of this workbook are encrypted, so it cannot be read. Remove the "
                f"password and upload it again, or upload the return as {ACCEPTED}.",
                details={"found": "encrypted-zip"})

    notes = []
    if ext != "xlsx":
        notes.append(f"the file is named .{ext} but is an Excel workbook (.xlsx): it was "
                     "read as one")
    return _convert_xlsx(path, ext, notes, limits)


def _zip_kind(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str | None:
    """None for an OOXML workbook openpyxl can read, else what the archive
    is, from its entry names (nothing is decompressed but a tiny mimetype)."""
    names = {i.filename for i in infos}
    if "[Content_Types].xml" in names and any(
            n.startswith("xl/") and n.endswith(".xml") and "workbook" in n.lower() for n in names):
        return None
    if any(n.startswith("xl/") and n.endswith(".bin") and "workbook" in n.lower() for n in names):
        return "an Excel binary workbook (.xlsb)"
    if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
        mimetype = archive.read("mimetype")
        if b"opendocument.spreadsheet" in mimetype:
            return "an OpenDocument spreadsheet (.ods)"
        if b"opendocument" in mimetype:
            return "an OpenDocument file"
    if "word/document.xml" in names:
        return "a Word document"
    if "ppt/presentation.xml" in names:
        return "a PowerPoint presentation"
    return "a ZIP archive"


def _bomb(reason: str, details: dict[str, Any]) -> IntakeError:
    return IntakeError(
        "xlsx-bomb",
        f"This workbook cannot be opened safely: {reason}. Delete unused sheets, images "
        "and empty formatted rows, or save the data sheet as CSV UTF-8, and upload it again.",
        details=details)


def _corrupt(ext: str, error: BaseException | str) -> IntakeError:
    reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    named = f" (named .{ext})" if ext != "xlsx" else ""
    return IntakeError(
        "xlsx-invalid",
        f"This file{named} cannot be opened as an Excel workbook: it is damaged or not "
        "really an .xlsx file. Open the return in Excel, save it again as Excel Workbook "
        "(.xlsx) or CSV UTF-8, and upload the new file.",
        details={"reason": reason})


def _choose_sheet(workbook: Any) -> tuple[Any, str]:
    visible = [ws for ws in workbook.worksheets if ws.sheet_state == "visible"]
    for ws in visible:
        if ws.title.strip().lower() == "data":
            return ws, f"converted from sheet '{ws.title}' of an Excel workbook"
    if not visible:
        return None, ""
    ws = visible[0]
    note = f"converted from sheet '{ws.title}' of an Excel workbook"
    if len(visible) > 1:
        note += (f" (the first of its {len(visible)} visible sheets; name a sheet 'Data' "
                 "to have that one read instead)")
    return ws, note


_FORMULA_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s>/]")


def _has_formulas(workbook: Any, sheet: Any) -> bool:
    """Whether the sheet's XML holds a formula element: a streaming byte scan
    (sizes are already bounded), so the formula pass is needed only then."""
    part = getattr(sheet, "_worksheet_path", None)
    archive = getattr(workbook, "_archive", None)
    if not part or archive is None:
        return True
    try:
        with archive.open(part) as src:
            tail = b""
            while chunk := src.read(CHUNK):
                if _FORMULA_TAG.search(tail + chunk):
                    return True
                tail = chunk[-64:]
    except (KeyError, zipfile.BadZipFile, OSError):
        return True
    return False


def _open_workbook(path: str, ext: str, data_only: bool) -> tuple[Any, Any]:
    """(workbook, file): opened from a file object, since openpyxl refuses a
    path whose name does not end in .xlsx; close both after use."""
    import openpyxl  # noqa: PLC0415

    handle = open(path, "rb")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=data_only,
                                              keep_links=False)
    except Exception as e:  # openpyxl raises a wide variety on bad input
        handle.close()
        raise _corrupt(ext, e) from None
    return workbook, handle


def _convert_xlsx(path: str, ext: str, notes: list[str], limits: Limits = NO_LIMITS) -> Intake:
    values_wb, values_file = _open_workbook(path, ext, data_only=True)
    formulas_wb = formulas_file = None
    fd, temp = tempfile.mkstemp(prefix="lgdp-intake-", suffix=".csv")
    try:
        sheet, note = _choose_sheet(values_wb)
        if sheet is None:
            raise IntakeError(
                "xlsx-empty",
                "This workbook has no visible worksheet to read. Put the return in a "
                "visible sheet named 'Data' and upload it again.", details={})
        notes.append(note)
        sheet.reset_dimensions()  # stored dimensions can run to row 1,048,576
        formula_rows: Iterator[Any] | None = None
        if _has_formulas(values_wb, sheet):
            formulas_wb, formulas_file = _open_workbook(path, ext, data_only=False)
            formula_sheet = formulas_wb[sheet.title]
            formula_sheet.reset_dimensions()
            formula_rows = formula_sheet.iter_rows()
        with warnings.catch_warnings(), os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            warnings.simplefilter("ignore")
            rows = _write_sheet(sheet, formula_rows, csv.writer(out, lineterminator="\n"), limits)
    except IntakeError:
        os.unlink(temp)
        raise
    except Exception as e:
        os.unlink(temp)
        raise _corrupt(ext, e) from None
    finally:
        values_wb.close()
        values_file.close()
        if formulas_wb is not None and formulas_file is not None:
            formulas_wb.close()
            formulas_file.close()
    return Intake(format="xlsx", csv_path=temp, rows_hint=rows, notes=notes, temporary=True)


def _write_sheet(sheet: Any, formula_rows: Iterator[Any] | None, writer: Any, limits: Limits = NO_LIMITS) -> int:
    """Write the sheet's rows; return the number of data rows written."""
    width = None
    blank_run = 0
    written = 0
    uncalculated: list[tuple[str, str]] = []
    n_uncalculated = 0
    for row in sheet.iter_rows():
        frow = next(formula_rows, ()) if formula_rows is not None else ()
        for fcell, vcell in zip(frow, row):
            if (getattr(fcell, "data_type", None) == "f" and vcell.value is None
                    and vcell.data_type not in ("s", "str", "inlineStr")):
                n_uncalculated += 1
                if len(uncalculated) < 10:
                    formula = fcell.value if isinstance(fcell.value, str) else getattr(
                        fcell.value, "text", str(fcell.value))
                    uncalculated.append((fcell.coordinate, formula))
        cells = [_cell_text(c) for c in row]
        while cells and cells[-1] == "":
            cells.pop()
        if limits.columns is not None and len(cells) > limits.columns:
            raise _too_many_columns(len(cells), limits.columns)
        if limits.cell_chars is not None and cells and max(map(len, cells)) > limits.cell_chars:
            at = max(range(len(cells)), key=lambda i: len(cells[i]))
            cell = row[at]
            raise _cell_too_long(getattr(cell, "row", 0) or 0, at + 1, len(cells[at]), limits.cell_chars,
                                 where=f"Cell {getattr(cell, 'coordinate', '')} of sheet '{sheet.title}'")
        if limits.rows is not None and written + blank_run >= limits.rows and cells and width is not None:
            raise _too_many_rows(limits.rows)
        if width is None:
            if not cells:
                blank_run += 1
                continue
            if blank_run:
                raise IntakeError(
                    "header-missing",
                    f"Row 1 of sheet '{sheet.title}' is empty: the column names must be in "
                    f"row 1. Delete the empty rows above them and upload the file again.",
                    details={"sheet": sheet.title, "row": 1})
            width = len(cells)
            writer.writerow(cells)
            continue
        if not cells:
            blank_run += 1
            continue
        for _ in range(blank_run):
            writer.writerow([""] * width)
        written += blank_run + 1
        blank_run = 0
        writer.writerow(cells + [""] * (width - len(cells)))
    if uncalculated:
        cell, formula = uncalculated[0]
        more = f" (and {n_uncalculated - 1} more)" if n_uncalculated > 1 else ""
        raise IntakeError(
            "xlsx-uncalculated",
            f"Cell {cell} of sheet '{sheet.title}' holds a formula ({formula}) that has never "
            f"been calculated{more}, so its value is unknown: the file was probably made by "
            "a program rather than Excel. Open it in Excel (press F9 if calculation is set "
            "to manual), save it and upload it again, or save it as CSV UTF-8.",
            details={"sheet": sheet.title, "cell": cell, "formula": formula,
                     "cells": [c for c, _ in uncalculated], "count": n_uncalculated})
    if width is None:
        raise IntakeError(
            "xlsx-empty",
            f"Sheet '{sheet.title}' of this workbook is empty. Put the return in a sheet "
            "named 'Data' (column names in row 1) and upload it again.",
            details={"sheet": sheet.title})
    return written


def _cell_text(cell: Any) -> str:
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        fmt = getattr(cell, "number_format", None) or ""
        if "%" in fmt and "\\%" not in fmt and '"%"' not in fmt:
            return _number_text(value * 100) + "%"
        return _number_text(value)
    if isinstance(value, dt.datetime):
        value = value + dt.timedelta(microseconds=500_000)
        value = value.replace(microsecond=0)
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.replace(microsecond=0).isoformat()
    if isinstance(value, dt.timedelta):
        seconds = round(value.total_seconds())
        sign = "-" if seconds < 0 else ""
        hours, rest = divmod(abs(seconds), 3600)
        return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return str(value)


def _number_text(value: int | float) -> str:
    """A number as Excel shows it in General format, without its binary
    noise: 15 significant digits, no ".0", no exponent."""
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    value = float(f"{value:.15g}")
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(decimal.Decimal(text), "f")
    return text


# --------------------------------------------------------------------------
# CSV injection


_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(
    r"[+-]?[£$€]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?")


def _looks_like_formula(cell: str) -> bool:
    if not cell.startswith(_TRIGGERS):
        return False
    if cell == "-":  # the usual "not applicable" mark; no spreadsheet runs it
        return False
    return not _PLAIN_NUMBER.fullmatch(cell.rstrip(" "))


def _shown(cell: str) -> str:
    text = cell.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= 100 else text[:97] + "..."


def formula_errors(csv_path: str, schema: Any, *, limit: int = 1000) -> list[dict[str, Any]]:
    """Cells of a data row that a spreadsheet would run as a formula when the
    CSV is opened (they start with =, +, -, @, a tab or a carriage return and
    are not plain numbers such as -5, +3.2 or -0.5e3), as frictionless-v5
    style error dicts of type "csv-injection", at most ``limit``.

    Rows are numbered as frictionless numbers them: the header is row 1 and
    every record the CSV reader yields counts, blank ones included, however
    many lines a quoted cell spans. Field names are the schema's, by
    position, as frictionless reports them; the header row is not checked
    (a label is compared with the schema's field names anyway)."""
    if hasattr(schema, "to_descriptor"):
        schema = schema.to_descriptor()
    names = [f.get("name", "") for f in (schema or {}).get("fields", [])]
    errors: list[dict[str, Any]] = []
    with open(csv_path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        labels = next(reader, None) or []
        for row_number, cells in enumerate(reader, start=2):
            for index, cell in enumerate(cells):
                if not _looks_like_formula(cell):
                    continue
                field_number = index + 1
                if index < len(names):
                    field_name = names[index]
                else:
                    field_name = labels[index] if index < len(labels) else ""
                first = {"\t": "a tab", "\r": "a carriage return"}.get(cell[0], f'"{cell[0]}"')
                note = (f"it starts with {first}, so Excel or LibreOffice could run it as a "
                        "formula when the file is opened; remove that first character or "
                        "reword the value")
                errors.append({
                    "type": "csv-injection",
                    "title": "CSV injection",
                    "description": (
                        "A cell starts with =, +, -, @, a tab or a carriage return and is not "
                        "a plain number: a spreadsheet opening the file could run it as a "
                        "formula (CSV or formula injection)."),
                    "message": (
                        f'The cell "{_shown(cell)}" in row at position "{row_number}" and '
                        f'field "{field_name}" at position "{field_number}" starts like a '
                        f"spreadsheet formula: {note}"),
                    "tags": ["#table", "#row", "#cell"],
                    "note": note,
                    "cells": list(cells),
                    "rowNumber": row_number,
                    "cell": cell,
                    "fieldName": field_name,
                    "fieldNumber": field_number,
                })
                if len(errors) >= limit:
                    return errors
    return errors
