"""The consolidation of each accepted submission into its return's central
table: where it stands, and what its last attempt did.

One row per submission, reset when a new file is accepted. A job records
itself here before it touches the table (status running, the attempt
counted, its RQ job and its process), and records the outcome after the
table's transaction has committed. So a worker killed at any point leaves
a row that says "running" under a job that is no longer alive, which the
sweep (repository.actions.reconcile) sees and queues again; after
MAX_ATTEMPTS such attempts the consolidation is "interrupted" and the
coordinating body is told. Written without touching the submission's
dataset (no package_update, no reindex): a Solr outage cannot stop the
outcome being recorded.
"""
from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk

from ckanext.lgdp.model.audit import _now

# pending: waiting for a worker (just accepted, or queued again); running: a
# job has it; consolidated: the accepted file's rows are in the table;
# failed: the table could not take them (a value, the table): needs a person;
# interrupted: its job stopped MAX_ATTEMPTS times (the worker was killed).
CONSOLIDATION_STATES = ("pending", "running", "consolidated", "failed", "interrupted")
IN_PROGRESS = ("pending", "running")
NEEDS_ATTENTION = ("failed", "interrupted")


class Consolidation(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_consolidation"

    submission_id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True)
    return_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, index=True)
    # the accepted upload (resource id) to consolidate
    upload_id: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False)
    status: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, default="pending", index=True)
    # attempts since the upload was accepted: a job counts one when it starts
    attempts: Mapped[int] = sa.Column(sa.Integer, nullable=False, default=0)
    job_id: Mapped[str | None] = sa.Column(sa.UnicodeText)
    worker: Mapped[str | None] = sa.Column(sa.UnicodeText)  # host:pid of the attempt
    enqueued_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    started_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    finished_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    # what the table holds of this submission since the last success
    consolidated_upload: Mapped[str | None] = sa.Column(sa.UnicodeText)
    resource_id: Mapped[str | None] = sa.Column(sa.UnicodeText)
    rows: Mapped[int | None] = sa.Column(sa.Integer)
    consolidated_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    # the sentence the submission's page and package_show show
    problem: Mapped[str | None] = sa.Column(sa.UnicodeText)
    updated_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now, onupdate=_now)

    def dictize(self) -> dict[str, Any]:
        def iso(value: datetime.datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        return {
            "submission_id": self.submission_id,
            "return_id": self.return_id,
            "upload_id": self.upload_id,
            "status": self.status,
            "attempts": self.attempts,
            "job_id": self.job_id,
            "worker": self.worker,
            "enqueued_at": iso(self.enqueued_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "consolidated_upload": self.consolidated_upload,
            "resource_id": self.resource_id,
            "rows": self.rows,
            "consolidated_at": iso(self.consolidated_at),
            "problem": self.problem,
        }
