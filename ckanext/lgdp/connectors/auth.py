"""Who may subscribe, read deliveries and run them, and manage connectors."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import AuthResult, Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.model import Connector

__all__ = [
    "lgdp_subscription_create", "lgdp_subscription_list", "lgdp_delivery_run", "lgdp_event_list",
    "lgdp_reminder_run", "lgdp_connector_create", "lgdp_connector_list", "lgdp_connector_run",
    "lgdp_connector_run_list", "lgdp_connector_disable", "lgdp_connector_enable", "lgdp_connector_delete",
]


def council_editor(context: Context, council_id: str) -> bool:
    """Who sets up, runs, stops and removes a council's connectors: its
    editors and admins (and sysadmins)."""
    who = access.context_actor(context)
    return who.sysadmin or who.in_org(council_id, "editor")


def lgdp_subscription_create(context: Context, data_dict: DataDict) -> AuthResult:
    if access.context_actor(context).anonymous:
        return {"success": False, "msg": tk._("Sign in to subscribe")}
    return {"success": True}


lgdp_subscription_list = lgdp_subscription_create


def lgdp_delivery_run(context: Context, data_dict: DataDict) -> AuthResult:
    if access.context_actor(context).is_governor():
        return {"success": True}
    return {"success": False, "msg": tk._("Only the coordinating body runs deliveries")}


@tk.auth_allow_anonymous_access
def lgdp_event_list(context: Context, data_dict: DataDict) -> AuthResult:
    return {"success": True}  # the action lists only the events the caller may see


lgdp_reminder_run = lgdp_delivery_run
# Connectors: signed-in users; the actions check the council (its editors
# set up and run its connectors, its members and the coordinating body read).
lgdp_connector_create = lgdp_connector_list = lgdp_connector_run = lgdp_connector_run_list = lgdp_subscription_create


def lgdp_connector_disable(context: Context, data_dict: DataDict) -> AuthResult:
    """The council's editors, as for creating its connectors (CKAN itself
    refuses anonymous callers). An unknown id passes here so that the action
    answers 404."""
    conn = model.Session.get(Connector, data_dict.get("id") or "")
    if conn is None or council_editor(context, conn.council_id):
        return {"success": True}
    return {"success": False, "msg": tk._("Only the council's editors manage its connectors")}


lgdp_connector_enable = lgdp_connector_delete = lgdp_connector_disable
