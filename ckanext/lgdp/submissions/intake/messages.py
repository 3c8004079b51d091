"""What intake tells the uploader: ``IntakeError`` and the messages more
than one check raises, each saying what is wrong and what to do.

Every sentence goes through the translation catalogue (``tk._``) when the
error is raised, in the language of the request that uploaded the file;
``details`` stay as they are, for machines (``found`` names a file type in
English). A phrase kept in a table (``N_``) is translated where it is used.
"""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk

__all__ = ["IntakeError", "N_", "accepted", "save_as_csv", "delimiter_name", "named_as"]


def N_(text: str) -> str:
    """Mark a phrase for the catalogue; it is translated where it is shown."""
    return text


def save_as_csv() -> str:
    return tk._('In Excel, use File > Save As, choose "CSV UTF-8 (Comma delimited) (*.csv)"')


def accepted() -> str:
    return tk._("a CSV file (.csv, saved as CSV UTF-8) or an Excel workbook (.xlsx)")


DELIMITERS = {";": N_("semicolons (;)"), "\t": N_("tabs"), "|": N_("vertical bars (|)")}


def delimiter_name(delimiter: str) -> str:
    return tk._(DELIMITERS[delimiter])


def named_as(what: str) -> str:
    """A file type phrase of sniffing's or workbooks' ("a PNG image"), translated."""
    return tk._(what) if what else what


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


def size_text(n: int) -> str:
    """Sizes in MB (MiB), as upload limits are set; tiny ones (only seen in
    tests) in KB or bytes."""
    mb = n / (1024 * 1024)
    if mb >= 10:
        return f"{mb:.0f} MB"
    if mb >= 0.1:
        return f"{mb:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return tk._("{n} bytes").format(n=n)


def too_large(size: int, max_bytes: int) -> IntakeError:
    return IntakeError(
        "too-large",
        tk._("The file is {size}, over the {limit} limit for an upload. Check it holds only the return (no extra "
             "sheets, images or thousands of empty formatted rows); a workbook saved as CSV UTF-8 is usually much "
             "smaller.").format(size=size_text(size), limit=size_text(max_bytes)),
        status=413, details={"bytes": size, "max_bytes": max_bytes})


# How to get an accepted file from what was uploaded, by extension.
_FORMAT_HINTS = {
    "xlsm": N_("For a macro-enabled workbook, save a copy as Excel Workbook (.xlsx)."),
    "xlsb": N_("For an Excel binary workbook, save a copy as Excel Workbook (.xlsx)."),
    "ods": N_("In LibreOffice use File > Save As and choose Excel 2007-365 (.xlsx) or Text CSV (UTF-8, comma)."),
    "numbers": N_("In Numbers use File > Export To > CSV (Unicode UTF-8) or Excel."),
    "tsv": N_("Open it in Excel and save it as CSV UTF-8 (Comma delimited)."),
    "txt": N_("If it holds the table, open it in Excel and save it as CSV UTF-8 (Comma delimited)."),
    "zip": N_("Upload the return file itself, not a ZIP archive."),
    "pdf": N_("A PDF cannot be read as data: upload the spreadsheet the return was made from."),
}


def unsupported(ext: str) -> IntakeError:
    if ext:
        message = tk._('Files of type ".{ext}" cannot be accepted: upload the return as {accepted}.').format(
            ext=ext, accepted=accepted())
    else:
        message = tk._("Files without an extension cannot be accepted: upload the return as {accepted}.").format(
            accepted=accepted())
    hint = _FORMAT_HINTS.get(ext, "")
    return IntakeError(
        "unsupported-format", message + (f" {tk._(hint)}" if hint else ""),
        status=415, details={"extension": ext})


def empty(size: int) -> IntakeError:
    if size == 0:
        return IntakeError(
            "empty-file",
            tk._("The file is empty (0 bytes). Check you chose the right file and that it "
                 "was saved before uploading."), details={"bytes": 0})
    return IntakeError(
        "empty-file",
        tk._("The file holds no data: only blank lines, spaces or empty cells. Check you "
             "chose the right file and that it was saved before uploading."),
        details={"bytes": size})


def markup(kind: str, what: str, ext: str) -> IntakeError:
    if kind == "html":
        named = {"xls": tk._(".xls (many systems export web pages under that name)"),
                 "xlsx": ".xlsx"}.get(ext, ".csv")
        message = tk._(
            "This file is a web page (HTML), not a table, although it is named {named}: "
            "it may be an error or sign-in page saved instead of the data, or a sheet "
            "saved as \"Web Page\". Open the return in Excel and save it as "
            "{accepted}.").format(named=named, accepted=accepted())
    else:
        message = tk._("This file is {what}, not a CSV file or an Excel workbook. Open it in "
                       "Excel and save it as {accepted}.").format(what=named_as(what), accepted=accepted())
    return IntakeError("html-not-csv", message, status=415, details={"found": kind})


def too_many_columns(found: int, limit: int, more: bool = False) -> IntakeError:
    if more:
        message = tk._(
            "The first row of this file has more than {found:,} columns; a file for this return may have at most "
            "{limit:,}. Check that the columns of the return go across the first row (not down), "
            "remove the columns that are not part of the return, and upload the file again.")
    else:
        message = tk._(
            "The first row of this file has {found:,} columns; a file for this return may have at most "
            "{limit:,}. Check that the columns of the return go across the first row (not down), "
            "remove the columns that are not part of the return, and upload the file again.")
    return IntakeError(
        "too-many-columns", message.format(found=found, limit=limit),
        details={"columns": found, "max_columns": limit, "at_least": more})


def too_many_rows(limit: int) -> IntakeError:
    return IntakeError(
        "too-many-rows",
        tk._("This file has more than {limit:,} rows of data, the most a file may hold. Check it "
             "holds only the return (no empty formatted rows below it), or split it, and upload it "
             "again.").format(limit=limit),
        details={"max_rows": limit})


def cell_too_long(row: int, column: int, length: int, limit: int, sheet: str = "", cell: str = "") -> IntakeError:
    """A cell over the limit: at a row and column of a CSV, or at a cell of a sheet."""
    if sheet:
        message = tk._("Cell {cell} of sheet '{sheet}' holds {length:,} characters; a cell may hold at most "
                       "{limit:,}. Check that cell (a quote mark left open can join many rows into one cell), "
                       "shorten it and upload the file again.")
    else:
        message = tk._("Row {row}, column {column} holds {length:,} characters; a cell may hold at most "
                       "{limit:,}. Check that cell (a quote mark left open can join many rows into one cell), "
                       "shorten it and upload the file again.")
    return IntakeError(
        "cell-too-long", message.format(row=row, column=column, cell=cell, sheet=sheet, length=length, limit=limit),
        details={"row": row, "column": column, "chars": length, "max_chars": limit})


def delimiter_error(delimiter: str, header: str, from_sep_line: bool = False) -> IntakeError:
    name = delimiter_name(delimiter)
    shown = header if len(header) <= 80 else header[:77] + "..."
    if from_sep_line:
        where = tk._("its first line, {line}, tells Excel to split the columns with {name}").format(
            line=shown.strip().strip(chr(34)), name=name)
    else:
        where = tk._('line 1 reads "{line}"').format(line=shown.replace(chr(9), " <tab> "))
    fix = tk._("{save_as_csv} and upload the new file.").format(save_as_csv=save_as_csv())
    if delimiter == ";":
        fix += " " + tk._("If Excel still writes semicolons, the computer's list separator is set "
                          "to ';' (Windows: Region settings > Additional settings).")
    return IntakeError(
        "delimiter",
        tk._("The columns of this file are separated by {name}, not commas ({where}). {fix}").format(
            name=name, where=where, fix=fix),
        details={"line": 1, "found": delimiter})


def bomb(reason: str, details: dict[str, Any]) -> IntakeError:
    return IntakeError(
        "xlsx-bomb",
        tk._("This workbook cannot be opened safely: {reason}. Delete unused sheets, images "
             "and empty formatted rows, or save the data sheet as CSV UTF-8, and upload it again.").format(
            reason=reason),
        details=details)


def corrupt(ext: str, error: BaseException | str) -> IntakeError:
    reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    if ext != "xlsx":
        message = tk._("This file (named .{ext}) cannot be opened as an Excel workbook: it is damaged or not "
                       "really an .xlsx file. Open the return in Excel, save it again as Excel Workbook "
                       "(.xlsx) or CSV UTF-8, and upload the new file.").format(ext=ext)
    else:
        message = tk._("This file cannot be opened as an Excel workbook: it is damaged or not "
                       "really an .xlsx file. Open the return in Excel, save it again as Excel Workbook "
                       "(.xlsx) or CSV UTF-8, and upload the new file.")
    return IntakeError("xlsx-invalid", message, details={"reason": reason})
