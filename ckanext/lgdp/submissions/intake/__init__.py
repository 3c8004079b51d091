"""Intake: the quick, synchronous checks an uploaded return goes through
before its table is validated against the standard's Table Schema.

``inspect_upload`` answers the question "can this file be read as a table at
all?" and, when it cannot, says why in words a council officer can act on
(``IntakeError``: a stable ``code``, a ``message``, an HTTP ``status`` and
``details``). When it can, it hands back a UTF-8, comma-separated CSV for the
validator (``Intake.csv_path``): the upload itself when it already is one, or
a temporary file (an Excel workbook converted, a byte order mark removed).

``normalise`` is the platform's entry point: the same checks, whose one pass
over the upload writes its normalised file (``submissions/normalised.py``)
and hashes the original as it reads it (``Original``), so that after intake
nothing reads the original again. Messages and notes are in the language of
the request (the translation catalogue).

The package, one concern a module:

- ``sniffing``: what a file is, from its name and first bytes; encodings;
- ``text``: CSV files, the header line and the one streaming pass;
- ``workbooks``: Excel workbooks, checked as ZIPs and converted;
- ``normalising``: ``Original`` (read and hashed once) and ``Output`` (the
  CSV written once, hashed, its header matched to the standard);
- ``limits``: what a table may hold, and the request size gate;
- ``messages``: ``IntakeError`` and the messages shared by the checks;
- ``injection``: ``formula_errors``, the CSV injection step of validation.

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

import os
from typing import Any, Callable

import ckan.plugins.toolkit as tk

from .injection import formula_errors
from .limits import NO_LIMITS, Limits
from .messages import N_, IntakeError, accepted, empty, markup, named_as, save_as_csv, too_large, unsupported
from .normalising import Intake, Original, Output
from .sniffing import HEAD, blank, extension, ole2, sniff
from .text import inspect_csv
from .workbooks import MAX_ZIP_ENTRIES, inspect_zip

__all__ = ["IntakeError", "Intake", "Limits", "NO_LIMITS", "MAX_ZIP_ENTRIES", "Original",
           "inspect_upload", "normalise", "formula_errors"]

XLSX_MAX_UNCOMPRESSED = 200 * 1024 * 1024


def inspect_upload(path: str, filename: str, *, max_bytes: int,
                   xlsx_max_uncompressed: int = XLSX_MAX_UNCOMPRESSED,
                   xlsx_max_ratio: int = 100, limits: Limits = NO_LIMITS) -> Intake:
    """Check an uploaded file and return it as CSV ready for validation, or
    raise ``IntakeError`` for the first problem found (see module doc). The
    CSV is the upload itself when nothing in it needs changing, else a
    temporary file (``Intake.cleanup`` removes it)."""
    return _inspect(Original(path, hashed=False), filename, lambda needed: Output() if needed else None,
                    max_bytes=max_bytes, xlsx_max_uncompressed=xlsx_max_uncompressed,
                    xlsx_max_ratio=xlsx_max_ratio, limits=limits)


def normalise(original: Original, filename: str, target: str, schema: dict[str, Any], *, max_bytes: int,
              xlsx_max_uncompressed: int = XLSX_MAX_UNCOMPRESSED, xlsx_max_ratio: int = 100,
              limits: Limits = NO_LIMITS) -> Intake:
    """The same checks, in the same single pass writing the upload's one
    normalised file at ``target`` (its header matched to ``schema``:
    ``normalised.match_header``), with its hash, size and header; the
    original's own size and hash are ``original.facts()``, whatever the
    outcome. ``Intake.notes`` holds intake's notes and the header's."""
    return _inspect(original, filename, lambda needed: Output(target, schema),
                    max_bytes=max_bytes, xlsx_max_uncompressed=xlsx_max_uncompressed,
                    xlsx_max_ratio=xlsx_max_ratio, limits=limits)


def _inspect(original: Original, filename: str, output: Callable[[bool], Output | None], *, max_bytes: int,
             xlsx_max_uncompressed: int, xlsx_max_ratio: int, limits: Limits) -> Intake:
    path = original.path
    size = original.size
    if size > max_bytes:
        raise too_large(size, max_bytes)

    ext = extension(filename or os.path.basename(path))
    if ext not in ("csv", "xlsx", "xls"):
        raise unsupported(ext)
    if size == 0:
        raise empty(size)

    with open(path, "rb") as f:
        head = f.read(HEAD)
    original.seen(0, head)
    kind, what = sniff(head)
    zip_limits = (xlsx_max_uncompressed, xlsx_max_ratio)

    if kind == "zip":
        return inspect_zip(path, ext, zip_limits, output, limits)
    if kind == "ole2":
        raise ole2(path, ext)
    if blank(head, size, path):
        raise empty(size)
    if kind in ("html", "xml"):
        raise markup(kind, what, ext)
    if ext != "csv":
        if kind == "binary":
            message = tk._("This file is named .{ext} but holds {found}, not an Excel workbook: open the return in "
                           "Excel, save it as Excel Workbook (.xlsx) or CSV UTF-8 and upload that file.")
        else:
            message = tk._("This file is named .{ext} but holds {found}, not an Excel workbook: if it is a CSV "
                           "file, rename it to end in .csv; otherwise open it in Excel and save it as Excel "
                           "Workbook (.xlsx).")
        found = what if kind == "binary" else N_("plain text")
        raise IntakeError("xlsx-invalid", message.format(ext=ext, found=named_as(found)),
                          details={"found": found, "named": ext})
    if kind == "utf16":
        raise IntakeError(
            "encoding",
            tk._('The file is saved as {found} (Excel calls it "Unicode Text"), not UTF-8. '
                 "{save_as_csv} and upload the new file.").format(found=what, save_as_csv=save_as_csv()),
            details={"line": 1, "byte": 0, "found": what.lower()})
    if kind == "binary":
        raise IntakeError(
            "binary-not-csv",
            tk._("This file is {found}, not a CSV file. Upload the return itself as {accepted}.").format(
                found=named_as(what), accepted=accepted()),
            status=415, details={"found": what})
    return inspect_csv(original, head, output, limits)
