"""Reading a governed dataset directly (package_show, and through it
resource_show, file downloads, the DataStore, activity streams and DCAT)
answers the access policy's question, the same one search answers with
permission labels."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import AuthResult, Context, DataDict

from ckanext.lgdp import access

__all__ = ["package_show", "activity_show"]


def _package(context: Context, data_dict: DataDict) -> model.Package | None:
    pkg = context.get("package")
    if isinstance(pkg, model.Package):
        return pkg
    ident = data_dict.get("id") or data_dict.get("name")
    return model.Package.get(ident) if ident else None


@tk.chained_auth_function
@tk.auth_allow_anonymous_access
def package_show(next_auth: Any, context: Context, data_dict: DataDict | None) -> AuthResult:
    data_dict = data_dict or {}
    pkg = _package(context, data_dict)
    decision = access.package_read_decision(context.get("user"), pkg) if pkg is not None else None
    if decision is None:
        return next_auth(context, data_dict)
    if decision:
        return {"success": True}
    return {"success": False, "msg": tk._("Not authorised to read this dataset")}


@tk.chained_auth_function
@tk.auth_allow_anonymous_access
def activity_show(next_auth: Any, context: Context, data_dict: DataDict | None) -> AuthResult:
    """CKAN's own rule reads ``include_data`` without a default (a KeyError,
    HTTP 500, for a call without it): without it, no data is included."""
    data_dict = data_dict if data_dict is not None else {}
    data_dict.setdefault("include_data", False)
    return next_auth(context, data_dict)
