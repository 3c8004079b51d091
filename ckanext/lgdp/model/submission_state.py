"""Where each submission stands: its state in the workflow and what the steps
recorded, one row per submission, and the submissions whose search document
is to be refreshed.

A submission is a CKAN dataset, created once: its catalogue entry (title,
council, return, period, due date), its resources (the uploads), permission
labels and activity. What changes at every upload and step lives here
instead, written in the same transaction as the step's audit row: no
``package_update``, no scheming validation, no activity holding the whole
dataset, no search reindex per step.

The search document of a changed submission is refreshed in batches
(``lgdp_search_pending``, submissions/indexing.py). Direct reads (package_show
and its auth, pages, downloads, the DataStore) decide from this table, so a
step changes access at once; search follows within seconds, and while a
document is stale it is hidden from anyone the current state denies.
"""
from __future__ import annotations

import datetime
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.model.audit import _now

INITIAL = "expected"

# The fields a submission's dict shows (package_show, package_search, the
# pages), as the dataset's fields showed them before they moved here: text,
# "" when unset.
FIELDS = (
    "submission_status", "round", "standard_version", "current_upload", "submitted_upload", "accepted_upload",
    "signed_off_by", "signed_off_at", "submitted_at", "decided_by", "decided_at", "return_reason", "late",
)


class SubmissionState(tk.BaseModel):  # type: ignore[misc]
    __tablename__ = "lgdp_submission_state"

    submission_id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True)
    status: Mapped[str] = sa.Column(sa.UnicodeText, nullable=False, default=INITIAL, index=True)
    # 1, then one more after each return for correction
    round: Mapped[int] = sa.Column(sa.Integer, nullable=False, default=1)
    # the version of the return's standard the latest upload is checked against
    standard_version: Mapped[int | None] = sa.Column(sa.Integer)
    current_upload: Mapped[str | None] = sa.Column(sa.UnicodeText)
    submitted_upload: Mapped[str | None] = sa.Column(sa.UnicodeText)
    accepted_upload: Mapped[str | None] = sa.Column(sa.UnicodeText, index=True)
    signed_off_by: Mapped[str | None] = sa.Column(sa.UnicodeText)
    signed_off_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    submitted_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    decided_by: Mapped[str | None] = sa.Column(sa.UnicodeText)
    decided_at: Mapped[datetime.datetime | None] = sa.Column(sa.DateTime)
    return_reason: Mapped[str | None] = sa.Column(sa.UnicodeText)
    # submitted after the due date (None until submitted)
    late: Mapped[bool | None] = sa.Column(sa.Boolean)
    updated_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now, onupdate=_now)

    def shown(self) -> dict[str, Any]:
        """The submission's fields as its dict shows them."""

        def text(value: Any) -> str:
            if value is None:
                return ""
            if isinstance(value, datetime.datetime):
                return value.isoformat(timespec="seconds")
            return str(value)

        return {
            "submission_status": self.status,
            "round": text(self.round),
            "standard_version": text(self.standard_version),
            "current_upload": text(self.current_upload),
            "submitted_upload": text(self.submitted_upload),
            "accepted_upload": text(self.accepted_upload),
            "signed_off_by": text(self.signed_off_by),
            "signed_off_at": text(self.signed_off_at),
            "submitted_at": text(self.submitted_at),
            "decided_by": text(self.decided_by),
            "decided_at": text(self.decided_at),
            "return_reason": text(self.return_reason),
            "late": "" if self.late is None else ("yes" if self.late else "no"),
        }


class SearchPending(tk.BaseModel):  # type: ignore[misc]
    """A dataset whose search document is older than its state: refreshed by
    the next batch (submissions/indexing.py)."""

    __tablename__ = "lgdp_search_pending"

    package_id: Mapped[str] = sa.Column(sa.UnicodeText, primary_key=True)
    marked_at: Mapped[datetime.datetime] = sa.Column(sa.DateTime, nullable=False, default=_now)


# ---------------------------------------------------------------- reads


def state_of(submission_id: str) -> SubmissionState | None:
    """The submission's state (from the session's identity map when it has
    been read already in this transaction)."""
    return model.Session.get(SubmissionState, submission_id) if submission_id else None


def state_or_initial(submission_id: str) -> SubmissionState:
    """The submission's state, or (not added to the session) the state of a
    submission nothing has happened to yet."""
    found = state_of(submission_id)
    return found if found is not None else SubmissionState(submission_id=submission_id, status=INITIAL, round=1)


def status_of(submission_id: str) -> str:
    found = state_of(submission_id)
    return found.status if found is not None else INITIAL


def states_of(submission_ids: Iterable[str]) -> dict[str, SubmissionState]:
    """submission id -> its state, in one query."""
    ids = list({i for i in submission_ids if i})
    if not ids:
        return {}
    return {row.submission_id: row for row in
            model.Session.query(SubmissionState).filter(SubmissionState.submission_id.in_(ids))}


def with_status(statuses: Iterable[str], submission_ids: Iterable[str] | None = None) -> list[str]:
    """Ids of the submissions in one of these states (of these, if given)."""
    q = model.Session.query(SubmissionState.submission_id).filter(SubmissionState.status.in_(list(statuses)))
    if submission_ids is not None:
        q = q.filter(SubmissionState.submission_id.in_(list(submission_ids)))
    return [sid for (sid,) in q]


def with_accepted_upload() -> list[str]:
    """Ids of the submissions that have an accepted file (accepted now, or
    returned after acceptance and not accepted again yet)."""
    return [sid for (sid,) in model.Session.query(SubmissionState.submission_id)
            .filter(SubmissionState.accepted_upload.isnot(None), SubmissionState.accepted_upload != "")]


# ---------------------------------------------------------------- search documents


def mark_for_search(package_ids: Iterable[str]) -> None:
    """Note in the current transaction that these datasets' search documents
    are stale (committed, or rolled back, with the change that made them so)."""
    ids = sorted({i for i in package_ids if i})
    if not ids:
        return
    stmt = insert(SearchPending.__table__).values([{"package_id": i, "marked_at": _now()} for i in ids])
    model.Session.execute(stmt.on_conflict_do_update(index_elements=["package_id"],
                                                     set_={"marked_at": stmt.excluded.marked_at}))


def pending_search(limit: int | None = None) -> list[tuple[str, datetime.datetime]]:
    """(package id, marked at) of the stale search documents, oldest first."""
    q = model.Session.query(SearchPending.package_id, SearchPending.marked_at).order_by(SearchPending.marked_at)
    if limit:
        q = q.limit(limit)
    return [(pid, at) for pid, at in q]


def pending_search_ids() -> list[str]:
    return [pid for (pid,) in model.Session.query(SearchPending.package_id)]


def clear_search_marks(marks: Iterable[tuple[str, datetime.datetime]]) -> int:
    """Forget the marks of documents refreshed since they were made: a mark
    made again meanwhile (a later step) stays for the next batch."""
    done = 0
    for pid, at in marks:
        done += model.Session.query(SearchPending).filter(
            SearchPending.package_id == pid, SearchPending.marked_at <= at).delete(synchronize_session=False)
    return done


def search_backlog() -> tuple[int, datetime.datetime | None]:
    """How many search documents are stale, and since when the oldest."""
    count, oldest = model.Session.query(sa.func.count(SearchPending.package_id),
                                        sa.func.min(SearchPending.marked_at)).one()
    return int(count or 0), oldest
