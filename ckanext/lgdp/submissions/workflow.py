"""A submission's state, written and shown: the one place that changes a
row of lgdp_submission_state (model/submission_state.py), marking the
submission's search document stale in the same transaction, and the one
place that puts the state on a submission's dict (package_show, search
results, the document indexed)."""
from __future__ import annotations

from typing import Any

from ckan import model

from ckanext.lgdp.model import uploads
from ckanext.lgdp.model.submission_state import (
    FIELDS,
    INITIAL,
    SearchPending,
    SubmissionState,
    state_of,
    states_of,
)
from ckanext.lgdp.submissions import SUBMISSION_TYPE, indexing

__all__ = ["begin", "change", "current", "forget", "overlay", "overlay_uploads"]


def begin(submission_id: str, status: str = INITIAL, standard_version: int | None = None) -> SubmissionState:
    """The state of a submission about to be created (in the creating
    transaction). No search mark: CKAN's package_create indexes the new
    dataset when the transaction commits, with this state on it."""
    row = SubmissionState(submission_id=submission_id, status=status, round=1, standard_version=standard_version)
    model.Session.add(row)
    return row


def current(submission_id: str) -> SubmissionState:
    """The submission's state; a submission made without the platform's
    actions (a sysadmin's package_create) starts as expected."""
    row = state_of(submission_id)
    if row is None:
        row = SubmissionState(submission_id=submission_id, status=INITIAL, round=1)
        model.Session.add(row)
        model.Session.flush()
    return row


def change(row: SubmissionState, indexed_at_commit: bool = False, **fields: Any) -> SubmissionState:
    """Record a step's changes (in the step's transaction) and mark the
    search document stale. ``indexed_at_commit``: the step goes on to
    change the dataset through CKAN (an upload's resource_create), which
    indexes it, with this state, when its commit runs: no mark is needed
    (tests/test_access.py: a returned submission made a draft again by an
    upload is out of the agency's search at once)."""
    for name, value in fields.items():
        if not hasattr(SubmissionState, name):
            raise AttributeError(f"a submission's state has no field {name}")
        setattr(row, name, value)
    if not indexed_at_commit:
        indexing.mark([row.submission_id])
    return row


def forget(submission_id: str) -> None:
    """A purged submission's state and search mark (in the current transaction)."""
    model.Session.query(SubmissionState).filter(SubmissionState.submission_id == submission_id).delete(
        synchronize_session=False)
    model.Session.query(SearchPending).filter(SearchPending.package_id == submission_id).delete(
        synchronize_session=False)


def overlay(pkg_dicts: list[dict[str, Any]]) -> None:
    """Put each submission's state on its dict, as the fields it shows."""
    subs = [d for d in pkg_dicts if d.get("type") == SUBMISSION_TYPE and d.get("id")]
    if not subs:
        return
    found = states_of(d["id"] for d in subs)
    for pkg_dict in subs:
        row = found.get(pkg_dict["id"])
        if row is not None:
            pkg_dict.update(row.shown())
        else:
            pkg_dict.update({name: "" for name in FIELDS})
            pkg_dict["submission_status"] = INITIAL


def overlay_uploads(pkg_dicts: list[dict[str, Any]]) -> None:
    """Put each upload's validation status on the submissions' resources, in
    one query: for search results, whose resources come from the index
    (package_show and resource_show get it per resource, from
    before_resource_show in validation_compat)."""
    subs = [d for d in pkg_dicts if d.get("type") == SUBMISSION_TYPE]
    shown = uploads.validation_shown([r.get("id") for d in subs for r in d.get("resources") or []])
    for pkg_dict in subs:
        for resource in pkg_dict.get("resources") or []:
            resource.update(shown.get(resource.get("id"), {}))
