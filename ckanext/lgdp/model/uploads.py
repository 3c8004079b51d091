"""Every file a council uploads to a submission, and what became of it.

The file itself is a resource of the submission dataset (kept for good: a new
upload is a new resource, never an overwrite); this row follows its intake,
validation, queries and role in the submission. The Frictionless report is
kept in ckanext-validation's own `validation` table, by resource id.
"""
from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.model.audit import _now

# pending: waiting for the worker; running: being validated; valid / invalid:
# validated (invalid = blocking errors); rejected: failed the intake checks
# (not a readable table); interrupted: the worker stopped and the retries ran out;
# error: the platform could not validate it (its fault, not the file's).
UPLOAD_STATES = ("pending", "running", "valid", "invalid", "rejected", "interrupted", "error")
IN_PROGRESS = ("pending", "running")

# Upload.status is the one record of a validation's outcome. ckanext-validation
# shows it from its `validation` table's status, written from it
# (submissions/jobs.py _record_outcome), and from the resource's
# validation_status, put on the resource's dict when it is shown
# (validation_shown). Its names for each of ours:
VALIDATION_STATUS = {"pending": "running", "running": "running", "valid": "success", "invalid": "failure",
                     "rejected": "failure", "interrupted": "error", "error": "error"}


class Upload(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_upload"

    # the resource id of the file
    id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True)
    submission_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    version: Mapped[int] = sa.Column(sa.Integer, nullable=False)
    filename: Mapped[str | None] = sa.Column(sa.UnicodeText)
    source_url: Mapped[str | None] = sa.Column(sa.UnicodeText)
    uploaded_by: Mapped[str | None] = sa.Column(sa.UnicodeText)
    uploaded_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)
    channel: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, default="api")
    status: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, default="pending")
    standard_version: Mapped[int | None] = sa.Column(sa.Integer)
    attempts: Mapped[int] = sa.Column(sa.Integer, nullable=False, default=0)
    job_id: Mapped[str | None] = sa.Column(sa.UnicodeText)
    # when its current job was queued (a job not yet in Redis is given a moment)
    enqueued_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    worker: Mapped[str | None] = sa.Column(sa.UnicodeText)  # host:pid while running
    started_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    finished_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    rows: Mapped[int | None] = sa.Column(sa.Integer)
    bytes: Mapped[int | None] = sa.Column(sa.BigInteger)
    sha256: Mapped[str | None] = sa.Column(sa.UnicodeText)
    # the one normalised file the upload was validated from (submissions/normalised.py)
    normal_sha256: Mapped[str | None] = sa.Column(sa.UnicodeText)
    normal_bytes: Mapped[int | None] = sa.Column(sa.BigInteger)
    # data rows counted at intake (for a CSV an upper bound: a quoted cell may span lines)
    normal_rows: Mapped[int | None] = sa.Column(sa.Integer)
    # its header row, as matched to the standard
    header: Mapped[list[str] | None] = sa.Column(JSONB)
    error_count: Mapped[int] = sa.Column(sa.Integer, nullable=False, default=0)
    # the intake problem (code and message) of a rejected file, or the
    # platform's error
    problem_code: Mapped[str | None] = sa.Column(sa.UnicodeText)
    problem: Mapped[str | None] = sa.Column(sa.UnicodeText)
    notes: Mapped[list[str]] = sa.Column(JSONB, nullable=False, default=list)
    # [{"id", "field", "message", "value", "previous", "explanation", "explained_by", "explained_at"}]
    queries: Mapped[list[dict[str, Any]]] = sa.Column(JSONB, nullable=False, default=list)
    # {field: total} of the countable fields of a valid file
    summary: Mapped[dict[str, Any]] = sa.Column(JSONB, nullable=False, default=dict)

    def unexplained(self) -> list[dict[str, Any]]:
        return [q for q in self.queries or [] if not (q.get("explanation") or "").strip()]

    def dictize(self) -> dict[str, Any]:
        def iso(value: datetime.datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "resource_id": self.id,
            "submission_id": self.submission_id,
            "version": self.version,
            "filename": self.filename,
            "source_url": self.source_url,
            "uploaded_by": self.uploaded_by,
            "uploaded_at": iso(self.uploaded_at),
            "channel": self.channel,
            "status": self.status,
            "standard_version": self.standard_version,
            "attempts": self.attempts,
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "normalised": {"sha256": self.normal_sha256, "bytes": self.normal_bytes, "header": list(self.header or [])}
            if self.normal_sha256 else None,
            "error_count": self.error_count,
            "problem_code": self.problem_code,
            "problem": self.problem,
            "notes": list(self.notes or []),
            "queries": list(self.queries or []),
            "unexplained_queries": len(self.unexplained()),
            "summary": dict(self.summary or {}),
        }


# ---------------------------------------------------------------- reads


def uploads_of(submission_id: str) -> list[Upload]:
    """Every upload of a submission, newest first."""
    return (model.Session.query(Upload)
            .filter(Upload.submission_id == submission_id)
            .order_by(Upload.version.desc())
            .all())


def next_version(submission_id: str) -> int:
    """The version number a submission's next upload takes."""
    latest = (model.Session.query(Upload.version)
              .filter(Upload.submission_id == submission_id)
              .order_by(Upload.version.desc())
              .first())
    return (latest[0] if latest else 0) + 1


def validation_shown(resource_ids: list[str]) -> dict[str, dict[str, str]]:
    """resource id -> the fields ckanext-validation shows on a resource
    (``validation_status``, ``validation_timestamp``), worked out from the
    upload's status when its validation is over: they are not stored with
    the resource (no dataset write per validation)."""
    ids = [i for i in resource_ids if i]
    if not ids:
        return {}
    rows = (model.Session.query(Upload.id, Upload.status, Upload.finished_at)
            .filter(Upload.id.in_(ids), Upload.status.notin_(IN_PROGRESS)))
    return {rid: {"validation_status": VALIDATION_STATUS[status],
                  "validation_timestamp": finished.isoformat() if finished else ""}
            for rid, status, finished in rows}


def in_progress() -> list[Upload]:
    """The uploads waiting for or under validation (``IN_PROGRESS``)."""
    return model.Session.query(Upload).filter(Upload.status.in_(IN_PROGRESS)).all()
