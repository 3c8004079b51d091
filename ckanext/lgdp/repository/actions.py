"""Actions of the central repository: consolidation, publication of a
return's table, and the cross-council quality flags with their workflow
(the council explains, the agency or the coordinating body closes)."""
from __future__ import annotations

import logging
from typing import Any

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.model import QAFlag, submission_state
from ckanext.lgdp.model import qa as qa_flags
from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.params import validate
from ckanext.lgdp.register import audit, returns
from ckanext.lgdp.repository import (
    TABLE_TYPE,
    checks,
    consolidate,
    jobs,
    schema,
    tracking,
)
from ckanext.lgdp.submissions.actions import submission
from ckanext.lgdp.submissions.states import PLATFORM_FLAG

log = logging.getLogger(__name__)

__all__ = [
    "lgdp_consolidate",
    "lgdp_consolidation_retry",
    "lgdp_consolidation_sweep",
    "lgdp_attention_list",
    "lgdp_table_publish",
    "lgdp_qa_run",
    "lgdp_qa_flag_list",
    "lgdp_qa_flag_explain",
    "lgdp_qa_flag_close",
]


# ---------------------------------------------------------------- the outcome of consolidation
#
# An accepted submission's consolidation is recorded in lgdp_consolidation
# (repository/tracking.py): pending from its acceptance, running while a job
# has it, then consolidated, failed (with the sentence its page and
# package_show show as ``consolidation_problem``) or, after MAX_ATTEMPTS
# killed jobs, interrupted. A failure or an interruption is audited and
# announced (submission.consolidation_failed, .consolidation_interrupted) to
# those who may read the submission: its return's agencies and the
# coordinating body; it can be retried (lgdp_consolidation_retry), and the
# sweep's reconciler finds whatever the tables lack.

# ---------------------------------------------------------------- actions


@validate(schema.consolidation_retry)
def lgdp_consolidation_retry(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Add an accepted submission's file to its return's central table again,
    after consolidation failed or was interrupted (the owner agency or the
    coordinating body). Runs at once, in this request.

    :param id: the submission's id or name
    :returns: ``{"submission": ..., "rows": n}``; a failure again answers 409
        with the reason (and is recorded on the submission)
    """
    pkg = submission(data_dict.get("id"))
    tk.check_access("lgdp_consolidation_retry", context, {"id": pkg.id})
    if not submission_state.state_or_initial(pkg.id).accepted_upload:
        raise tk.ValidationError({"id": [tk._("This submission has no accepted file to add to the central table")]})
    rec = tracking.record_of(pkg, lock=True)
    if rec.status == "interrupted":
        rec.attempts = 0  # a person asked: a fresh set of attempts
    model.Session.commit()
    result = tracking.consolidate_recorded(pkg.id, context)
    if result.get("failed"):
        raise tk.ValidationError({"id": [result["failed"]]})

    if result.get("return_id"):
        jobs.enqueue_qa(result["return_id"], result.get("period"))
    return {"submission": tk.get_action("package_show")({"ignore_auth": True, "use_cache": False}, {"id": pkg.id}),
            "rows": result.get("rows", 0)}


@validate(schema.consolidation_sweep)
def lgdp_consolidation_sweep(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Reconcile the central tables with the accepted submissions: queue
    again every consolidation that is missing from its table or stale (the
    table holds an older file's rows, too few or too many), or whose job is
    no longer alive; mark interrupted one killed too often; try a failed
    one once more. Takes no parameters.

    :returns: ``{"consolidated": [names], "failed": [{"name", "problem"}],
        "queued": [{"name", "reason"}], "interrupted": [names]}``
    """
    tk.check_access("lgdp_consolidation_sweep", context, data_dict)
    return tracking.reconcile()


@tk.side_effect_free
@validate(schema.attention_list)
def lgdp_attention_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """Work that needs a person, among what the caller may read, oldest
    first: uploads whose validation was interrupted (the worker stopped
    MAX_ATTEMPTS times), accepted submissions whose consolidation failed or
    was interrupted. Takes no parameters.

    :returns: ``[{"kind": "validation" | "consolidation", "status",
        "problem", "attempts", "since", "submission", "submission_id",
        "title", "data_return", "period", "council", "upload_id"}]``
    """
    tk.check_access("lgdp_attention_list", context, data_dict)
    return tracking.needing_attention(access.context_actor(context))


@validate(schema.consolidate)
def lgdp_consolidate(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Rebuild the consolidated tables from accepted submissions (idempotent).

    :param data_return: only this return (optional)
    :param qa: also run the quality checks (default true)
    :returns: ``{"submissions": n, "rows": m}``
    """
    tk.check_access("lgdp_consolidate", context, data_dict)
    return_id = returns.package(data_dict["data_return"]).id if data_dict.get("data_return") else None
    result = tracking.rebuild(return_id, context=context)
    if data_dict["qa"]:
        ids = {return_id} if return_id else {p.extras.get("data_return") for p in consolidate.accepted_submissions()}
        for rid in sorted(i for i in ids if i):
            checks.run_qa(rid)
    return result


@validate(schema.qa_run)
def lgdp_qa_run(context: Context, data_dict: DataDict) -> dict[str, int]:
    """Run the cross-council checks of a return (optionally one period).

    :param data_return: the return's id or name
    :param period: only flags about this period (optional)
    """
    tk.check_access("lgdp_qa_run", context, data_dict)
    return checks.run_qa(returns.package(data_dict.get("data_return")).id, data_dict.get("period") or None)


@validate(schema.table_publish)
def lgdp_table_publish(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Publish a return's consolidated table (open to everyone) or withdraw it.

    :param data_return: the return's id or name
    :param published: true or false (default true)
    """
    return_pkg = returns.package(data_dict.get("data_return"))
    tk.check_access("lgdp_table_publish", context, {**data_dict, "data_return": return_pkg.id})
    name = consolidate.table_name(return_pkg.name)
    table = model.Package.get(name)
    if table is None:
        raise tk.ObjectNotFound(tk._("{name} has no consolidated table yet").format(name=return_pkg.name))
    published = "yes" if data_dict["published"] else "no"
    before = table.extras.get("published")

    updated = tk.get_action("package_patch")(
        {"user": context.get("user"), "ignore_auth": True, PLATFORM_FLAG: True}, {"id": table.id, "published": published, "private": published != "yes"})
    audit.record(context, object_type=TABLE_TYPE, object_id=table.id, object_name=table.name, action="publish",
                 from_state=before, to_state=published)
    model.repo.commit()
    return updated


def _reach(context: Context) -> tuple[list[str], list[str]] | None:
    """The flags the caller may read, as ``model.qa.flags(within=...)``
    takes them: their own council's; every flag of the returns their agency
    owns or requests; all (None) for the coordinating body."""
    scope = access.flag_scope(access.context_actor(context))
    return None if scope.everything else (list(scope.council_codes), list(scope.return_ids))


@tk.side_effect_free
@validate(schema.qa_flag_list)
def lgdp_qa_flag_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """Quality flags, newest first, that the caller may read.

    :param data_return: a return's id or name (optional)
    :param council: a council's id, name or GSS code (optional)
    :param period: a period label (optional)
    :param status: open, explained, closed or resolved (optional)
    """
    tk.check_access("lgdp_qa_flag_list", context, data_dict)
    code = None
    if data_dict.get("council"):
        group = model.Group.get(data_dict["council"])
        code = group.extras.get("gss_code") if group is not None else data_dict["council"]
    found = qa_flags.flags(
        within=_reach(context),
        return_id=returns.package(data_dict["data_return"]).id if data_dict.get("data_return") else None,
        council_gss=code, period=data_dict.get("period") or None, status=data_dict.get("status") or None)
    order = {"error": 0, "warning": 1, "info": 2}
    rows = [f.dictize() for f in found]
    return sorted(rows, key=lambda f: (f["period"] or "", order.get(f["severity"], 3), f["council_name"] or ""), reverse=False)


def _flag(context: Context, ident: str | None) -> QAFlag:
    """The flag, if the caller may read it: one they may not read answers
    as one that does not exist."""
    within = None if context.get("ignore_auth") else _reach(context)
    row = next(iter(qa_flags.flags(within=within, flag_id=ident or "")), None)
    if row is None:
        raise tk.ObjectNotFound(tk._("No quality flag {id}").format(id=ident))
    return row


@validate(schema.qa_flag_explain)
def lgdp_qa_flag_explain(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """The council explains a flag about its figures.

    :param id: the flag's id
    :param explanation: the explanation
    """
    row = _flag(context, data_dict.get("id"))
    tk.check_access("lgdp_qa_flag_explain", context, data_dict)
    text = (data_dict.get("explanation") or "").strip()
    if not text:
        raise tk.ValidationError({"explanation": [tk._("Missing value")]})
    if row.status == "closed":
        raise tk.ValidationError({"id": [tk._("This flag is closed")]})
    before = row.status
    row.status, row.explanation, row.explained_by = "explained", text, context.get("user")
    audit.record(context, object_type="qa-flag", object_id=row.id, object_name=row.key, action="explain",
                 from_state=before, to_state="explained", reason=text)
    model.repo.commit()
    return row.dictize()


@validate(schema.qa_flag_close)
def lgdp_qa_flag_close(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """The requesting agency or the coordinating body closes a flag.

    :param id: the flag's id
    :param note: why it is closed (required)
    """
    row = _flag(context, data_dict.get("id"))
    tk.check_access("lgdp_qa_flag_close", context, data_dict)
    note = (data_dict.get("note") or "").strip()
    if not note:
        raise tk.ValidationError({"note": [tk._("Say why the flag is closed")]})
    before = row.status
    row.status, row.close_note, row.closed_by, row.closed_at = "closed", note, context.get("user"), _now()
    audit.record(context, object_type="qa-flag", object_id=row.id, object_name=row.key, action="close",
                 from_state=before, to_state="closed", reason=note)
    model.repo.commit()
    return row.dictize()
