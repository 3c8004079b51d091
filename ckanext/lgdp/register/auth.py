"""Auth functions of the register of data returns. Decisions about who a user
is come from ckanext.lgdp.access."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import AuthResult, Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.register import RETURN_TYPE

__all__ = [
    "lgdp_return_transition",
    "lgdp_audit_list",
    "lgdp_standard_version_list",
    "lgdp_reviews_list",
    "lgdp_return_overlap",
    "lgdp_calendar_show",
    "lgdp_burden_show",
    "package_create",
    "package_update",
]


def _return(data_dict: DataDict) -> dict[str, Any] | None:
    ident = data_dict.get("id") or data_dict.get("name")
    if not ident:
        return None
    try:
        return tk.get_action("package_show")({"ignore_auth": True}, {"id": ident})
    except tk.ObjectNotFound:
        return None


def lgdp_return_transition(context: Context, data_dict: DataDict) -> AuthResult:
    """Only the coordinating body's editors and admins (and sysadmins) move a
    return through its lifecycle."""
    if access.context_actor(context).is_governor():
        return {"success": True}
    return {"success": False, "msg": tk._("Only the coordinating body can change the lifecycle of a return")}


def lgdp_audit_list(context: Context, data_dict: DataDict) -> AuthResult:
    """Governance reviewers (every member of the coordinating body) read every
    audit trail; an agency's members read the trail of the returns it owns."""
    actor = access.context_actor(context)
    if actor.is_reviewer():
        return {"success": True}
    pkg = _return(data_dict)
    if pkg and pkg.get("owner_org") and actor.in_org(pkg["owner_org"]):
        return {"success": True}
    if pkg and pkg.get("type") == "submission" and _may_see_return(context, {"id": pkg["id"]})["success"]:
        return {"success": True}  # whoever may read a submission reads its trail
    return {"success": False, "msg": tk._("Only governance reviewers can read this audit trail")}


def lgdp_reviews_list(context: Context, data_dict: DataDict) -> AuthResult:
    if access.context_actor(context).is_reviewer():
        return {"success": True}
    return {"success": False, "msg": tk._("Only governance reviewers can list reviews")}


def _may_see_return(context: Context, data_dict: DataDict) -> AuthResult:
    ident = data_dict.get("id") or data_dict.get("name")
    if not ident:
        return {"success": True}
    try:
        tk.check_access("package_show", context, {"id": ident})
    except tk.NotAuthorized:
        return {"success": False, "msg": tk._("Not authorised to see this return")}
    except tk.ObjectNotFound:
        pass  # the action answers 404
    return {"success": True}


@tk.auth_allow_anonymous_access
def lgdp_standard_version_list(context: Context, data_dict: DataDict) -> AuthResult:
    return _may_see_return(context, data_dict)


@tk.auth_allow_anonymous_access
def lgdp_return_overlap(context: Context, data_dict: DataDict) -> AuthResult:
    return _may_see_return(context, data_dict)


@tk.auth_allow_anonymous_access
def lgdp_calendar_show(context: Context, data_dict: DataDict) -> AuthResult:
    return {"success": True}


@tk.auth_allow_anonymous_access
def lgdp_burden_show(context: Context, data_dict: DataDict) -> AuthResult:
    return {"success": True}


def _owner_org_type(data_dict: DataDict) -> str:
    owner = data_dict.get("owner_org")
    group = model.Group.get(owner) if owner else None
    return access.org_type(group.id) if group else ""


@tk.chained_auth_function
def package_create(next_auth: Any, context: Context, data_dict: DataDict | None) -> AuthResult:
    """A data return is owned by an agency (or the coordinating body)."""
    data_dict = data_dict or {}
    if data_dict.get("type") == RETURN_TYPE and data_dict.get("owner_org"):
        owner_type = _owner_org_type(data_dict)
        if owner_type not in (access.AGENCY, access.COORDINATOR):
            return {"success": False, "msg": tk._("A data return is owned by an agency or the coordinating body")}
    return next_auth(context, data_dict)


EDITABLE_BY_OWNER = ("proposed", "approved", "active", "under_review")


@tk.chained_auth_function
def package_update(next_auth: Any, context: Context, data_dict: DataDict | None) -> AuthResult:
    """Data returns: the coordinating body's editors edit any return that is
    not retired or rejected; the owner agency's editors edit theirs while it
    is live (CKAN's own rule); nobody but a sysadmin edits a closed one."""
    data_dict = data_dict or {}
    pkg = context.get("package")
    ident = data_dict.get("id") or data_dict.get("name")
    current = model.Package.get(ident) if ident else pkg
    if current is not None and current.type == RETURN_TYPE:
        actor = access.context_actor(context)
        if actor.sysadmin:
            return {"success": True}
        if current.extras.get("lifecycle_status") not in EDITABLE_BY_OWNER:
            return {"success": False, "msg": tk._("A retired or rejected return can no longer be changed")}
        if actor.is_governor():
            return {"success": True}
    return next_auth(context, data_dict)
