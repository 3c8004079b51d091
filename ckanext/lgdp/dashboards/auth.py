"""Who may use the dashboards. Figures are open to everyone, and the actions
serve only the indicators the access policy lets the caller read; a saved
dashboard belongs to its user, or to an organisation whose members read it
and whose editors change it."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import AuthResult, Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.model import SavedDashboard

__all__ = [
    "lgdp_indicator_list",
    "lgdp_dashboard_figures",
    "lgdp_dashboard_create",
    "lgdp_dashboard_update",
    "lgdp_dashboard_delete",
    "lgdp_dashboard_show",
    "lgdp_dashboard_list",
]


@tk.auth_allow_anonymous_access
def lgdp_indicator_list(context: Context, data_dict: DataDict) -> AuthResult:
    return {"success": True}


@tk.auth_allow_anonymous_access
def lgdp_dashboard_figures(context: Context, data_dict: DataDict) -> AuthResult:
    return {"success": True}


@tk.auth_allow_anonymous_access
def lgdp_dashboard_list(context: Context, data_dict: DataDict) -> AuthResult:
    return {"success": True}


def lgdp_dashboard_create(context: Context, data_dict: DataDict) -> AuthResult:
    who = access.context_actor(context)
    if who.anonymous:
        return {"success": False, "msg": tk._("Sign in to save a dashboard")}
    org = data_dict.get("organization")
    if org:
        group = model.Group.get(org)
        if group is None or not (who.sysadmin or who.in_org(group.id, "editor")):
            return {"success": False, "msg": tk._("Only an organisation's editors save dashboards for it")}
    return {"success": True}


def _owner_check(context: Context, data_dict: DataDict, capacity: str, msg: str) -> AuthResult:
    who = access.context_actor(context)
    obj = model.Session.get(SavedDashboard, data_dict.get("id") or "")
    if obj is not None and not who.anonymous and (
            who.sysadmin or obj.owner_user_id == who.user_id
            or (obj.owner_org_id and who.in_org(obj.owner_org_id, capacity))):
        return {"success": True}
    return {"success": False, "msg": msg}


@tk.auth_allow_anonymous_access
def lgdp_dashboard_show(context: Context, data_dict: DataDict) -> AuthResult:
    return _owner_check(context, data_dict, "member", tk._("This dashboard belongs to another user or organisation"))


def lgdp_dashboard_update(context: Context, data_dict: DataDict) -> AuthResult:
    return _owner_check(context, data_dict, "editor", tk._("Only its owner or the organisation's editors change a dashboard"))


def lgdp_dashboard_delete(context: Context, data_dict: DataDict) -> AuthResult:
    return _owner_check(context, data_dict, "editor", tk._("Only its owner or the organisation's editors delete a dashboard"))
