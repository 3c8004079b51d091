"""How submissions are indexed and faceted (for those allowed to see them)."""
from __future__ import annotations

import datetime
import logging
from collections import OrderedDict
from typing import Any

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.lib.search.common import SearchIndexError

from ckanext.lgdp.model import catalogue, submission_state
from ckanext.lgdp.submissions import SUBMISSION_TYPE, indexing

log = logging.getLogger(__name__)

OPEN_STATES = ("expected", "draft", "signed_off", "returned")


def is_overdue(pkg_dict: dict[str, Any], today: datetime.date | None = None) -> bool:
    """Due date passed and not submitted."""
    due = pkg_dict.get("due_date")
    today = today or datetime.date.today()
    return bool(due) and pkg_dict.get("submission_status") in OPEN_STATES and due < today.isoformat()


def before_index(pkg_dict: dict[str, Any]) -> dict[str, Any]:
    if pkg_dict.get("dataset_type") != SUBMISSION_TYPE:
        return pkg_dict
    return_pkg = model.Package.get(pkg_dict.get("data_return") or "")
    if return_pkg is not None:
        pkg_dict["return_name"] = return_pkg.name
        pkg_dict["return_title"] = return_pkg.title
    if is_overdue(pkg_dict):
        pkg_dict["timeliness"] = "overdue"
    elif pkg_dict.get("late") == "yes":
        pkg_dict["timeliness"] = "late"
    elif pkg_dict.get("submitted_at"):
        pkg_dict["timeliness"] = "on_time"
    else:
        pkg_dict["timeliness"] = "not_due"
    return pkg_dict


def facets(facets_dict: "OrderedDict[str, Any]", package_type: str) -> "OrderedDict[str, Any]":
    if package_type != SUBMISSION_TYPE:
        return facets_dict
    out: OrderedDict[str, Any] = OrderedDict()
    out["organization"] = tk._("Council")
    out["return_title"] = tk._("Data return")
    out["submission_status"] = tk._("Status")
    out["period"] = tk._("Period")
    out["timeliness"] = tk._("Timeliness")
    return out


def refresh_overdue(today: datetime.date | None = None) -> int:
    """Reindex the open submissions whose due date has passed, so that the
    "overdue" facet is right (it is computed when a submission is indexed).
    Run daily (`ckan lgdp expect` does it): they are marked stale and
    refreshed at once, here (with Solr down, the marks wait for the next
    batch, submissions/indexing.py)."""
    today = today or datetime.date.today()
    due = catalogue.past_due(SUBMISSION_TYPE, today.isoformat())
    open_ids = submission_state.with_status(OPEN_STATES, due) if due else []
    indexing.mark(open_ids)
    model.Session.commit()
    try:
        indexing.refresh()
    except SearchIndexError as e:
        model.Session.rollback()
        log.warning("overdue submissions not reindexed now (%s): the next search refresh does it", e)
    return len(open_ids)
