"""CSV injection: cells a spreadsheet would run as a formula when the file
is opened, reported as a validation step of their own."""
from __future__ import annotations

import csv
import re
from typing import Any

__all__ = ["formula_errors"]


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
