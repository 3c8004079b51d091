"""Validation reports: kept in ckanext-validation's `validation` table (one
row per resource, in the Frictionless v5 report format it renders), read
back row by row for the council."""
from __future__ import annotations

import json
from typing import Any

from ckan import model
from ckanext.validation.model import Validation

from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.submissions import messages


def validation_row(resource_id: str) -> Validation | None:
    return (
        model.Session.query(Validation)
        .filter(Validation.resource_id == resource_id)
        .order_by(Validation.created.desc())
        .first()
    )


def store(resource_id: str, status: str, report: dict[str, Any] | None, error: dict[str, Any] | None = None) -> None:
    """Record a validation result (status: running, success, failure, error)."""
    row = validation_row(resource_id)
    if row is None:
        row = Validation(resource_id=resource_id, created=_now())
        model.Session.add(row)
    row.status = status
    row.report = report
    row.error = error
    row.finished = None if status == "running" else _now()


def report_of(resource_id: str) -> dict[str, Any] | None:
    row = validation_row(resource_id)
    if row is None or row.report is None:
        return None
    report = row.report
    if isinstance(report, str):  # ckanext-validation's own jobs store JSON text
        report = json.loads(report)
    return report


def problem_report(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A report in the Frictionless shape for a file that could not be read as
    a table at all (the intake checks) or could not be validated."""
    error = {
        "type": code,
        "title": code.replace("-", " ").capitalize(),
        "description": message,
        "message": message,
        "tags": ["#file"],
        "note": message,
        **({"details": details} if details else {}),
    }
    return {
        "valid": False,
        "stats": {"tasks": 1, "errors": 1, "warnings": 0, "seconds": 0},
        "warnings": [],
        "errors": [],
        "tasks": [
            {
                "name": "upload",
                "type": "table",
                "valid": False,
                "place": "",
                "labels": [],
                "stats": {"errors": 1, "warnings": 0, "seconds": 0},
                "warnings": [],
                "errors": [error],
            }
        ],
    }


def no_rows_error() -> dict[str, Any]:
    """A file with the column names and no data: nothing for the council."""
    message = "The file has the column names but no data rows: the return needs your council's row(s)"
    return {
        "type": "no-data-rows",
        "title": "No data rows",
        "description": message,
        "message": message,
        "tags": ["#table"],
        "note": message,
    }


def row_errors(
    report: dict[str, Any] | None, limit: int = 1000, catalogue: messages.Catalogue | None = None
) -> list[dict[str, Any]]:
    """The errors of a report as rows a person can work through: where (row,
    column), what was there, what is wrong. ``cell`` and ``message`` are
    Frictionless's; ``summary`` says the same in plain words with what to do,
    ``advice`` is that without the row and column, ``field_title`` names the
    column as the standard does (None for a column the standard does not
    have) and ``value`` is the cell as shown ("" for a missing one; see
    ``messages``). Long cells are shortened; the file keeps them whole."""
    if not report:
        return []
    if catalogue is None:
        catalogue = messages.Catalogue({})
    out: list[dict[str, Any]] = []
    for task in report.get("tasks") or []:
        for error in [*(report.get("errors") or []), *(task.get("errors") or [])]:
            if len(out) >= limit:
                return out
            short = messages.shorten_error(error)
            out.append(
                {
                    "row": error.get("rowNumber"),
                    "column": error.get("fieldNumber"),
                    "field": error.get("fieldName"),
                    "field_title": catalogue.field_title(error) if catalogue.known_field(error) else None,
                    "cell": short.get("cell"),
                    "value": messages.shorten(short.get("cell") if short.get("cell") != "None" else ""),
                    "type": error.get("type"),
                    "title": error.get("title"),
                    "message": short.get("message"),
                    "summary": catalogue.summary(error),
                    "advice": messages.capitalised(catalogue.advice(error)),
                }
            )
    return out


def shortened(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The report with its long cells shortened (``messages.shorten_error``),
    for answers and pages; the stored report keeps them whole."""
    if not report:
        return report
    changed = False
    tasks = []
    for task in report.get("tasks") or []:
        errors = [messages.shorten_error(e) for e in task.get("errors") or []]
        if any(a is not b for a, b in zip(errors, task.get("errors") or [])):
            changed = True
            task = {**task, "errors": errors}
        tasks.append(task)
    top = [messages.shorten_error(e) for e in report.get("errors") or []]
    if any(a is not b for a, b in zip(top, report.get("errors") or [])):
        changed = True
    if not changed:
        return report
    return {**report, "tasks": tasks, **({"errors": top} if "errors" in report else {})}


def error_count(report: dict[str, Any] | None) -> int:
    if not report:
        return 0
    return sum(len(t.get("errors") or []) for t in report.get("tasks") or []) + len(report.get("errors") or [])
