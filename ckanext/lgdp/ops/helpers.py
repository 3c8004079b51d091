"""Template helpers about the platform itself."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk

from ckanext.lgdp.ops.actions import may_see_details

__all__ = ["lgdp_platform_health"]


def lgdp_platform_health() -> dict[str, Any] | None:
    """lgdp_status_show with its details for the signed-in sysadmin or
    member of the coordinating body (the home page's panel); None for
    anybody else."""
    user = tk.current_user.name if tk.current_user and tk.current_user.is_authenticated else None
    if not user or not may_see_details(user):
        return None
    return tk.get_action("lgdp_status_show")({"user": user}, {})
