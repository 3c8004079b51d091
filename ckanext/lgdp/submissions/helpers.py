"""Template helpers of submissions."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp import access
from ckanext.lgdp.submissions import search, states
from ckanext.lgdp.submissions.auth import may_act

__all__ = ["lgdp_column_letter", "lgdp_submission_panel", "lgdp_submission_status_label"]

STATUS_LABELS = {
    "expected": "Not yet received",
    "draft": "Draft",
    "signed_off": "Signed off",
    "submitted": "Submitted",
    "accepted": "Accepted",
    "returned": "Returned for correction",
}
UPLOAD_LABELS = {
    "pending": "Waiting for validation",
    "running": "Being validated",
    "valid": "Valid",
    "invalid": "Invalid: errors to fix",
    "rejected": "Rejected: not a readable table",
    "interrupted": "Validation interrupted",
    "error": "Validation failed (platform error)",
}


def lgdp_column_letter(number: Any) -> str:
    """A column's number as a spreadsheet names it: 1 -> A, 27 -> AA."""
    try:
        n = int(number)
    except (TypeError, ValueError):
        return ""
    letters = ""
    while n > 0:
        n, rest = divmod(n - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def lgdp_submission_status_label(status: str | None, kind: str = "submission") -> str:
    labels = UPLOAD_LABELS if kind == "upload" else STATUS_LABELS
    return tk._(labels.get(status or "", status or ""))


def _timeliness_label(value: str) -> str:
    words = {"overdue": tk._("Overdue"), "late": tk._("Submitted late"), "on_time": tk._("On time"),
             "not_due": tk._("Not yet due")}
    return words.get(value, value)


def facet_labels() -> dict[str, Any]:
    """The words behind the values of the catalogue facets submissions
    index (``submissions.search``), for ``register.helpers.FACET_LABELS``."""
    return {"submission_status": lgdp_submission_status_label, "timeliness": _timeliness_label}


def lgdp_submission_panel(pkg: dict[str, Any]) -> dict[str, Any]:
    """What the submission page shows the current user: uploads, the latest
    upload's queries, and the actions they may take now."""
    user = tk.current_user.name if tk.current_user.is_authenticated else ""
    context = {"user": user}
    uploads = tk.get_action("lgdp_upload_list")(context, {"id": pkg["id"]})
    current = next((u for u in uploads if u["id"] == pkg.get("current_upload")), None)
    actor = access.actor(user)
    row = model.Package.get(pkg["id"])
    status = pkg.get("submission_status") or states.INITIAL
    actions = [
        name
        for name in states.actions_from(status)
        if may_act(actor, states.TRANSITIONS[name].who, row)
    ]
    return_pkg = model.Package.get(pkg.get("data_return") or "")
    return {
        "uploads": uploads,
        "current": current,
        "actions": actions,
        "can_upload": status in states.UPLOADABLE and may_act(actor, states.COUNCIL_EDITOR, row),
        "can_explain": status == "draft" and may_act(actor, states.COUNCIL_EDITOR, row),
        "overdue": search.is_overdue(pkg),
        "can_retry_consolidation": pkg.get("consolidation_status") in ("failed", "interrupted")
        and tk.h.check_access("lgdp_consolidation_retry", {"id": pkg["id"]}),
        "return_name": return_pkg.name if return_pkg is not None else None,
        "return_title": return_pkg.title if return_pkg is not None else None,
    }
