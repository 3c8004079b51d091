"""Who may run, publish and act on the central repository."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import AuthResult, Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.repository import checks

__all__ = [
    "lgdp_consolidate",
    "lgdp_consolidation_retry",
    "lgdp_consolidation_sweep",
    "lgdp_attention_list",
    "lgdp_qa_run",
    "lgdp_table_publish",
    "lgdp_qa_flag_list",
    "lgdp_qa_flag_explain",
    "lgdp_qa_flag_close",
]


def _governor(context: Context, msg: str) -> AuthResult:
    if access.context_actor(context).is_governor():
        return {"success": True}
    return {"success": False, "msg": msg}


def lgdp_consolidate(context: Context, data_dict: DataDict) -> AuthResult:
    return _governor(context, tk._("Only the coordinating body rebuilds the consolidated tables"))


def lgdp_consolidation_retry(context: Context, data_dict: DataDict) -> AuthResult:
    """The coordinating body's editors, or the editors of the agency that owns
    the submission's return."""
    who = access.context_actor(context)
    if who.is_governor():
        return {"success": True}
    pkg = model.Package.get(data_dict.get("id") or "")
    return_pkg = model.Package.get(pkg.extras.get("data_return") or "") if pkg is not None else None
    if return_pkg is not None and return_pkg.owner_org and who.in_org(return_pkg.owner_org, "editor"):
        return {"success": True}
    return {"success": False, "msg": tk._("Only the owner agency or the coordinating body retries a consolidation")}


def lgdp_consolidation_sweep(context: Context, data_dict: DataDict) -> AuthResult:
    return _governor(context, tk._("Only the coordinating body sweeps the consolidations"))


def lgdp_attention_list(context: Context, data_dict: DataDict) -> AuthResult:
    # the action lists only what the caller may read
    if access.context_actor(context).anonymous:
        return {"success": False, "msg": tk._("Sign in to see the work that needs attention")}
    return {"success": True}


def lgdp_qa_run(context: Context, data_dict: DataDict) -> AuthResult:
    return _governor(context, tk._("Only the coordinating body runs the quality checks"))


def lgdp_table_publish(context: Context, data_dict: DataDict) -> AuthResult:
    """The coordinating body's editors, or the owner agency's editors."""
    who = access.context_actor(context)
    if who.is_governor():
        return {"success": True}
    pkg = model.Package.get(data_dict.get("data_return") or "")
    if pkg is not None and pkg.owner_org and who.in_org(pkg.owner_org, "editor"):
        return {"success": True}
    return {"success": False, "msg": tk._("Only the owner agency or the coordinating body publishes a return's table")}


def lgdp_qa_flag_list(context: Context, data_dict: DataDict) -> AuthResult:
    # the action lists only the flags the caller may read
    if access.context_actor(context).anonymous:
        return {"success": False, "msg": tk._("Sign in to read quality flags")}
    return {"success": True}


def lgdp_qa_flag_explain(context: Context, data_dict: DataDict) -> AuthResult:
    who = access.context_actor(context)
    council = checks.flag_council(data_dict.get("id") or "")
    if who.sysadmin or (council is not None and who.in_org(council.id, "editor")):
        return {"success": True}
    return {"success": False, "msg": tk._("Only the council's editors explain a flag about its figures")}


def lgdp_qa_flag_close(context: Context, data_dict: DataDict) -> AuthResult:
    who = access.context_actor(context)
    if who.is_governor() or any(who.in_org(a, "editor") for a in checks.flag_receivers(data_dict.get("id") or "")):
        return {"success": True}
    return {"success": False, "msg": tk._("Only the requesting agencies and the coordinating body close flags")}
