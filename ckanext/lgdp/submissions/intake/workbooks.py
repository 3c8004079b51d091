"""Excel workbooks: the ZIP checked before anything is decompressed, then
the chosen sheet converted to CSV, streaming (openpyxl read-only)."""
from __future__ import annotations

import csv
import datetime as dt
import decimal
import math
import re
import warnings
import zipfile
from typing import Any, Callable, Iterator

import ckan.plugins.toolkit as tk

from .limits import NO_LIMITS, Limits
from .messages import (
    N_,
    IntakeError,
    accepted,
    bomb,
    cell_too_long,
    corrupt,
    named_as,
    size_text,
    too_many_columns,
    too_many_rows,
)
from .normalising import Intake, Output
from .sniffing import CHUNK

MAX_ZIP_ENTRIES = 10_000
# The compression ratio is checked only for entries that expand past this:
# small, repetitive XML parts compress far beyond any sensible ratio.
RATIO_CHECK_FROM = 1 << 20


def inspect_zip(path: str, ext: str, zip_limits: tuple[int, int], output: Callable[[bool], Output | None],
                limits: Limits = NO_LIMITS) -> Intake:
    max_uncompressed, max_ratio = zip_limits
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise corrupt(ext, e) from None
    with archive:
        infos = archive.infolist()
        what = _zip_kind(archive, infos)
        if what is not None:
            if ext == "csv":
                raise IntakeError(
                    "binary-not-csv",
                    tk._("This file is {found}, not a CSV file. Upload the return itself as {accepted}.").format(
                        found=named_as(what), accepted=accepted()), status=415, details={"found": what})
            hint = (" " + tk._("In LibreOffice use File > Save As and choose Excel 2007-365 (.xlsx).")
                    if "OpenDocument" in what else "")
            raise IntakeError(
                "xlsx-invalid",
                tk._("This file is {found}, not an Excel workbook (.xlsx). Upload the return as {accepted}.").format(
                    found=named_as(what), accepted=accepted()) + hint, details={"found": what})
        if len(infos) > MAX_ZIP_ENTRIES:
            raise bomb(tk._("it holds {parts:,} parts (the limit is {limit:,})").format(
                parts=len(infos), limit=MAX_ZIP_ENTRIES),
                        {"entries": len(infos), "max_entries": MAX_ZIP_ENTRIES})
        total = sum(i.file_size for i in infos)
        if total > max_uncompressed:
            raise bomb(
                tk._("it would expand to {size} when opened (the limit is {limit})").format(
                    size=size_text(total), limit=size_text(max_uncompressed)),
                {"uncompressed": total, "max_uncompressed": max_uncompressed})
        for i in infos:
            if i.file_size > RATIO_CHECK_FROM and i.file_size > max_ratio * max(i.compress_size, 1):
                ratio = i.file_size // max(i.compress_size, 1)
                raise bomb(
                    tk._('its part "{part}" is compressed {ratio:,} to 1 (the limit is {limit} to 1)').format(
                        part=i.filename, ratio=ratio, limit=max_ratio),
                    {"entry": i.filename, "ratio": ratio, "max_ratio": max_ratio})
        if any(i.flag_bits & 0x1 for i in infos):
            raise IntakeError(
                "xlsx-invalid",
                tk._("The parts of this workbook are encrypted, so it cannot be read. Remove the "
                     "password and upload it again, or upload the return as {accepted}.").format(accepted=accepted()),
                details={"found": "encrypted-zip"})

    notes = []
    if ext != "xlsx":
        notes.append(tk._("the file is named .{ext} but is an Excel workbook (.xlsx): it was "
                          "read as one").format(ext=ext))
    return convert_xlsx(path, ext, notes, output, limits)


def _zip_kind(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str | None:
    """None for an OOXML workbook openpyxl can read, else what the archive
    is, from its entry names (nothing is decompressed but a tiny mimetype)."""
    names = {i.filename for i in infos}
    if "[Content_Types].xml" in names and any(
            n.startswith("xl/") and n.endswith(".xml") and "workbook" in n.lower() for n in names):
        return None
    if any(n.startswith("xl/") and n.endswith(".bin") and "workbook" in n.lower() for n in names):
        return N_("an Excel binary workbook (.xlsb)")
    if "mimetype" in names and archive.getinfo("mimetype").file_size < 200:
        mimetype = archive.read("mimetype")
        if b"opendocument.spreadsheet" in mimetype:
            return N_("an OpenDocument spreadsheet (.ods)")
        if b"opendocument" in mimetype:
            return N_("an OpenDocument file")
    if "word/document.xml" in names:
        return N_("a Word document")
    if "ppt/presentation.xml" in names:
        return N_("a PowerPoint presentation")
    return N_("a ZIP archive")


def _choose_sheet(workbook: Any) -> tuple[Any, str]:
    visible = [ws for ws in workbook.worksheets if ws.sheet_state == "visible"]
    for ws in visible:
        if ws.title.strip().lower() == "data":
            return ws, tk._("converted from sheet '{sheet}' of an Excel workbook").format(sheet=ws.title)
    if not visible:
        return None, ""
    ws = visible[0]
    note = tk._("converted from sheet '{sheet}' of an Excel workbook").format(sheet=ws.title)
    if len(visible) > 1:
        note += " " + tk._("(the first of its {n} visible sheets; name a sheet 'Data' "
                           "to have that one read instead)").format(n=len(visible))
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
    # openpyxl takes ~0.2 s to import: loaded when a workbook arrives
    import openpyxl  # noqa: PLC0415

    handle = open(path, "rb")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=data_only,
                                              keep_links=False)
    except Exception as e:  # openpyxl raises a wide variety on bad input
        handle.close()
        raise corrupt(ext, e) from None
    return workbook, handle


def convert_xlsx(path: str, ext: str, notes: list[str], output: Callable[[bool], Output | None],
                 limits: Limits = NO_LIMITS) -> Intake:
    """The workbook's sheet written as CSV to ``output(True)``, once."""
    values_wb, values_file = _open_workbook(path, ext, data_only=True)
    formulas_wb = formulas_file = None
    out = output(True)
    assert out is not None
    try:
        sheet, note = _choose_sheet(values_wb)
        if sheet is None:
            raise IntakeError(
                "xlsx-empty",
                tk._("This workbook has no visible worksheet to read. Put the return in a "
                     "visible sheet named 'Data' and upload it again."), details={})
        notes.append(note)
        sheet.reset_dimensions()  # stored dimensions can run to row 1,048,576
        formula_rows: Iterator[Any] | None = None
        if _has_formulas(values_wb, sheet):
            formulas_wb, formulas_file = _open_workbook(path, ext, data_only=False)
            formula_sheet = formulas_wb[sheet.title]
            formula_sheet.reset_dimensions()
            formula_rows = formula_sheet.iter_rows()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = _write_sheet(sheet, formula_rows, csv.writer(out.text(), lineterminator="\n"), limits)
        written = out.keep()
    except IntakeError:
        out.discard()
        raise
    except Exception as e:
        out.discard()
        raise corrupt(ext, e) from None
    finally:
        values_wb.close()
        values_file.close()
        if formulas_wb is not None and formulas_file is not None:
            formulas_wb.close()
            formulas_file.close()
    return Intake(format="xlsx", csv_path=written, rows_hint=rows, notes=[*notes, *out.notes], temporary=out.target is None,
                  sha256=out.sha256, bytes=out.bytes, header=out.header)


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
            raise too_many_columns(len(cells), limits.columns)
        if limits.cell_chars is not None and cells and max(map(len, cells)) > limits.cell_chars:
            at = max(range(len(cells)), key=lambda i: len(cells[i]))
            cell = row[at]
            raise cell_too_long(getattr(cell, "row", 0) or 0, at + 1, len(cells[at]), limits.cell_chars,
                                sheet=sheet.title, cell=getattr(cell, "coordinate", ""))
        if limits.rows is not None and written + blank_run >= limits.rows and cells and width is not None:
            raise too_many_rows(limits.rows)
        if width is None:
            if not cells:
                blank_run += 1
                continue
            if blank_run:
                raise IntakeError(
                    "header-missing",
                    tk._("Row 1 of sheet '{sheet}' is empty: the column names must be in "
                         "row 1. Delete the empty rows above them and upload the file again.").format(sheet=sheet.title),
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
        more = " " + tk._("(and {n} more)").format(n=n_uncalculated - 1) if n_uncalculated > 1 else ""
        raise IntakeError(
            "xlsx-uncalculated",
            tk._("Cell {cell} of sheet '{sheet}' holds a formula ({formula}) that has never "
                 "been calculated{more}, so its value is unknown: the file was probably made by "
                 "a program rather than Excel. Open it in Excel (press F9 if calculation is set "
                 "to manual), save it and upload it again, or save it as CSV UTF-8.").format(
                cell=cell, sheet=sheet.title, formula=formula, more=more),
            details={"sheet": sheet.title, "cell": cell, "formula": formula,
                     "cells": [c for c, _ in uncalculated], "count": n_uncalculated})
    if width is None:
        raise IntakeError(
            "xlsx-empty",
            tk._("Sheet '{sheet}' of this workbook is empty. Put the return in a sheet "
                 "named 'Data' (column names in row 1) and upload it again.").format(sheet=sheet.title),
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
