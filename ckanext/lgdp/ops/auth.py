"""Auth functions of the platform's own actions."""
from __future__ import annotations

import ckan.plugins.toolkit as tk
from ckan.types import AuthResult, Context, DataDict

__all__ = ["lgdp_status_show"]


@tk.auth_allow_anonymous_access
def lgdp_status_show(context: Context, data_dict: DataDict) -> AuthResult:
    return {"success": True}
