"""What an upload may be: ``Limits`` on what a table holds, checked by
intake before any heavy work (``for_schema``: as configured), and the gate
that refuses a request larger than the platform accepts before reading it:
a 413 with a message, instead of CKAN reading the whole body first."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, jsonify, make_response, request

import ckan.plugins.toolkit as tk

from ckanext.lgdp import config


@dataclass(frozen=True)
class Limits:
    """What a table may hold, checked before any heavy work: columns in the
    header, characters in a cell, data rows. None: no limit."""

    columns: int | None = None
    cell_chars: int | None = None
    rows: int | None = None


NO_LIMITS = Limits()


def for_schema(schema: dict[str, Any]) -> Limits:
    """What a file for this standard may hold (config: ckanext.lgdp.limits.*)."""
    return Limits(columns=config.limit_columns(len(schema.get("fields") or [])),
                  cell_chars=config.limit_cell_chars(), rows=config.limit_rows())


# Requests that carry a submission file.
UPLOAD_PATHS = ("/api/3/action/lgdp_submission_upload", "/api/action/lgdp_submission_upload")


def too_large_message(size: int) -> str:
    return tk._("The file is {size:.1f} MB; the largest file accepted is {limit:.0f} MB").format(
        size=size / 1048576, limit=config.max_upload_bytes() / 1048576)


def too_large() -> Any:
    if request.method != "POST" or request.content_length is None:
        return None
    path = request.path
    if not (path in UPLOAD_PATHS or (path.startswith("/submission/") and path.endswith("/upload"))):
        return None
    limit = config.max_upload_bytes()
    # a little room for the other fields of the form
    if request.content_length <= limit + 64 * 1024:
        return None
    message = too_large_message(request.content_length)
    if path.startswith("/api/"):
        resp = jsonify({"success": False, "error": {"__type": "Request Too Large", "message": message, "upload": [message]}})
    else:
        resp = tk.render("lgdp/submissions/too_large.html", {"message": message})
        resp = make_response(resp)
    resp.status_code = 413
    return resp


def register(app: Flask) -> None:
    app.before_request(too_large)
