"""Who may subscribe, read deliveries and run them."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan.types import AuthResult, Context, DataDict

from ckanext.lgdp import access

__all__ = [
    "lgdp_subscription_create", "lgdp_subscription_list", "lgdp_delivery_run", "lgdp_event_list",
    "lgdp_reminder_run", "lgdp_connector_create", "lgdp_connector_list", "lgdp_connector_run",
    "lgdp_connector_run_list",
]


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
