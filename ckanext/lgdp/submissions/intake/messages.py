"""What intake tells the uploader: ``IntakeError`` and the messages more
than one check raises, each saying what is wrong and what to do."""
from __future__ import annotations

from typing import Any

__all__ = ["IntakeError", "ACCEPTED", "SAVE_AS_CSV", "DELIMITERS"]

SAVE_AS_CSV = 'In Excel, use File > Save As, choose "CSV UTF-8 (Comma delimited) (*.csv)"'
ACCEPTED = "a CSV file (.csv, saved as CSV UTF-8) or an Excel workbook (.xlsx)"

DELIMITERS = {";": "semicolons (;)", "\t": "tabs", "|": "vertical bars (|)"}


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
    return f"{n} bytes"


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


def unsupported(ext: str) -> IntakeError:
    shown = f'".{ext}"' if ext else "without an extension"
    hint = _FORMAT_HINTS.get(ext, "")
    return IntakeError(
        "unsupported-format",
        f"Files {'of type ' if ext else ''}{shown} cannot be accepted: upload the return "
        f"as {ACCEPTED}." + (f" {hint}" if hint else ""),
        status=415, details={"extension": ext})


def empty(size: int) -> IntakeError:
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


def markup(kind: str, what: str, ext: str) -> IntakeError:
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


def too_many_columns(found: int, limit: int, more: bool = False) -> IntakeError:
    shown = f"more than {found:,}" if more else f"{found:,}"
    return IntakeError(
        "too-many-columns",
        f"The first row of this file has {shown} columns; a file for this return may have at most "
        f"{limit:,}. Check that the columns of the return go across the first row (not down), "
        "remove the columns that are not part of the return, and upload the file again.",
        details={"columns": found, "max_columns": limit, "at_least": more})


def too_many_rows(limit: int) -> IntakeError:
    return IntakeError(
        "too-many-rows",
        f"This file has more than {limit:,} rows of data, the most a file may hold. Check it "
        "holds only the return (no empty formatted rows below it), or split it, and upload it again.",
        details={"max_rows": limit})


def cell_too_long(row: int, column: int, length: int, limit: int, where: str = "") -> IntakeError:
    at = where or f"Row {row}, column {column}"
    return IntakeError(
        "cell-too-long",
        f"{at} holds {length:,} characters; a cell may hold at most {limit:,}. Check that cell "
        "(a quote mark left open can join many rows into one cell), shorten it and upload the file again.",
        details={"row": row, "column": column, "chars": length, "max_chars": limit})


def delimiter_error(delimiter: str, header: str, from_sep_line: bool = False) -> IntakeError:
    name = DELIMITERS[delimiter]
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


def bomb(reason: str, details: dict[str, Any]) -> IntakeError:
    return IntakeError(
        "xlsx-bomb",
        f"This workbook cannot be opened safely: {reason}. Delete unused sheets, images "
        "and empty formatted rows, or save the data sheet as CSV UTF-8, and upload it again.",
        details=details)


def corrupt(ext: str, error: BaseException | str) -> IntakeError:
    reason = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
    named = f" (named .{ext})" if ext != "xlsx" else ""
    return IntakeError(
        "xlsx-invalid",
        f"This file{named} cannot be opened as an Excel workbook: it is damaged or not "
        "really an .xlsx file. Open the return in Excel, save it again as Excel Workbook "
        "(.xlsx) or CSV UTF-8, and upload the new file.",
        details={"reason": reason})
