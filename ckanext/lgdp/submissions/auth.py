"""Who may do what with submissions. Reading follows the access policy
(ckanext.lgdp.access, through package_show); acting follows the roles named
in states.TRANSITIONS."""
from __future__ import annotations

from typing import Any, Callable

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import AuthResult, Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.submissions import SUBMISSION_TYPE, states

__all__ = [
    "lgdp_submission_create",
    "lgdp_submission_upload",
    "lgdp_submission_explain",
    "lgdp_submission_transition",
    "lgdp_submission_expect",
    "lgdp_upload_list",
    "lgdp_upload_show",
    "lgdp_validation_sweep",
    "lgdp_search_refresh",
    "package_create",
    "package_delete",
    "resource_delete",
]


# Who each role named in states.TRANSITIONS is: a test of an actor against
# the submission. A role not here is nobody (sysadmins aside).
ROLES: dict[str, Callable[[access.Actor, model.Package], bool]] = {
    states.COUNCIL_EDITOR: lambda actor, sub: actor.in_org(sub.owner_org, "editor"),
    states.COUNCIL_ADMIN: lambda actor, sub: actor.in_org(sub.owner_org, "admin"),
    states.RECEIVER: lambda actor, sub: actor.is_coordinator("editor") or any(
        actor.in_org(agency, "editor") for agency in access.return_agency_ids(sub.extras.get("data_return"))),
}

# How a refusal names each role.
ROLE_NAMES: dict[str, Callable[[], str]] = {
    states.COUNCIL_EDITOR: lambda: tk._("the council's editors"),
    states.COUNCIL_ADMIN: lambda: tk._("the council's admins (its certifiers)"),
    states.RECEIVER: lambda: tk._("the requesting agencies and the coordinating body"),
}


def may_act(actor: access.Actor, who: str, submission: model.Package) -> bool:
    """Whether the actor is ``who`` (a role of states.TRANSITIONS) for the submission."""
    if actor.sysadmin:
        return True
    test = ROLES.get(who)
    return test is not None and test(actor, submission)


def _submission(data_dict: DataDict) -> model.Package | None:
    ident = data_dict.get("id") or data_dict.get("submission_id")
    pkg = model.Package.get(ident) if ident else None
    return pkg if pkg is not None and pkg.type == SUBMISSION_TYPE else None


def _deny(msg: str) -> AuthResult:
    return {"success": False, "msg": msg}


def lgdp_submission_create(context: Context, data_dict: DataDict) -> AuthResult:
    """A council's editors start their council's submissions; the coordinating
    body's editors create expected ones for any council."""
    actor = access.context_actor(context)
    if actor.is_governor():
        return {"success": True}
    council = model.Group.get(data_dict.get("council") or data_dict.get("owner_org") or "")
    if council is not None and actor.in_org(council.id, "editor"):
        return {"success": True}
    return _deny(tk._("Only the council's editors can start its submissions"))


def lgdp_submission_upload(context: Context, data_dict: DataDict) -> AuthResult:
    """The council's editors upload its files (a push may name the return,
    council and period instead of the submission)."""
    actor = access.context_actor(context)
    # the action asks about the object it writes: {"id": submission} or
    # {"council": council}, never a mixture
    pkg = model.Package.get(data_dict.get("id") or "") if data_dict.get("id") else None
    if data_dict.get("id"):
        allowed = pkg is not None and pkg.type == SUBMISSION_TYPE and may_act(actor, states.COUNCIL_EDITOR, pkg)
    else:
        council = model.Group.get(data_dict.get("council") or "")
        allowed = actor.sysadmin or (council is not None and actor.in_org(council.id, "editor"))
    if allowed:
        return {"success": True}
    return _deny(tk._("Only the council's editors can upload its submissions"))


def lgdp_submission_explain(context: Context, data_dict: DataDict) -> AuthResult:
    pkg = _submission(data_dict)
    if pkg is not None and may_act(access.context_actor(context), states.COUNCIL_EDITOR, pkg):
        return {"success": True}
    return _deny(tk._("Only the council's editors can explain its queries"))


def lgdp_submission_transition(context: Context, data_dict: DataDict) -> AuthResult:
    pkg = _submission(data_dict)
    transition = states.TRANSITIONS.get(data_dict.get("action") or "")
    if pkg is None or transition is None:
        return {"success": True}  # the action answers 404 / 409
    if may_act(access.context_actor(context), transition.who, pkg):
        return {"success": True}
    who = ROLE_NAMES[transition.who]()
    return _deny(tk._("Only {who} can {action} this submission").format(who=who, action=transition.action.replace("_", " ")))


def lgdp_submission_expect(context: Context, data_dict: DataDict) -> AuthResult:
    if access.context_actor(context).is_governor():
        return {"success": True}
    return _deny(tk._("Only the coordinating body can create expected submissions"))


lgdp_validation_sweep = lgdp_submission_expect
lgdp_search_refresh = lgdp_submission_expect


def _readable(context: Context, ident: str | None) -> AuthResult:
    try:
        tk.check_access("package_show", context, {"id": ident})
    except tk.NotAuthorized:
        return _deny(tk._("Not authorised to read this submission"))
    except tk.ObjectNotFound:
        pass
    return {"success": True}


def lgdp_upload_list(context: Context, data_dict: DataDict) -> AuthResult:
    return _readable(context, data_dict.get("id"))


def lgdp_upload_show(context: Context, data_dict: DataDict) -> AuthResult:
    res = model.Resource.get(data_dict.get("id") or data_dict.get("resource_id") or "")
    return _readable(context, res.package_id if res is not None else None)


@tk.chained_auth_function
def package_create(next_auth: Any, context: Context, data_dict: DataDict | None) -> AuthResult:
    """Submissions are made by lgdp_submission_create, which checks the
    council, the return and the period."""
    data_dict = data_dict or {}
    if data_dict.get("type") == SUBMISSION_TYPE and not context.get(states.PLATFORM_FLAG):
        return _deny(tk._("Start a submission with lgdp_submission_create (or push a file with lgdp_submission_upload)"))
    return next_auth(context, data_dict)


@tk.chained_auth_function
def package_delete(next_auth: Any, context: Context, data_dict: DataDict | None) -> AuthResult:
    """A submission is a record of what a council sent: it is never deleted
    (but by a sysadmin)."""
    data_dict = data_dict or {}
    pkg = model.Package.get(data_dict.get("id") or "")
    if pkg is not None and pkg.type == SUBMISSION_TYPE and not access.context_actor(context).sysadmin:
        return _deny(tk._("Submissions are kept as a record and cannot be deleted"))
    return next_auth(context, data_dict)


@tk.chained_auth_function
def resource_delete(next_auth: Any, context: Context, data_dict: DataDict | None) -> AuthResult:
    """Every upload of a submission is kept (the last accepted file above all)."""
    data_dict = data_dict or {}
    res = model.Resource.get(data_dict.get("id") or "")
    pkg = model.Package.get(res.package_id) if res is not None else None
    if pkg is not None and pkg.type == SUBMISSION_TYPE and not access.context_actor(context).sysadmin:
        return _deny(tk._("Uploads of a submission are kept as its history and cannot be deleted; upload a new version instead"))
    return next_auth(context, data_dict)
