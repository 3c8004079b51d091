"""Template helpers of the dashboards."""
from __future__ import annotations

import ckan.plugins.toolkit as tk

from ckanext.lgdp.dashboards.views import fmt

__all__ = ["lgdp_fmt", "lgdp_return_indicators"]


def lgdp_fmt(value: float | None, decimals: int = 1) -> str:
    """A figure as shown in the dashboards' tables ("no data" when missing)."""
    return fmt(value, decimals)


def lgdp_return_indicators(return_name: str) -> list[dict]:
    """The indicators of a return the current user may read (for links from
    the return's page to its dashboards)."""
    try:
        return tk.get_action("lgdp_indicator_list")(
            {"user": tk.current_user.name if tk.current_user.is_authenticated else ""},
            {"data_return": return_name})
    except tk.NotAuthorized:
        return []
