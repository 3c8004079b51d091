"""Template helpers of the dashboards."""
from __future__ import annotations

from ckanext.lgdp.dashboards.views import fmt

__all__ = ["lgdp_fmt"]


def lgdp_fmt(value: float | None, decimals: int = 1) -> str:
    """A figure as shown in the dashboards' tables ("no data" when missing)."""
    return fmt(value, decimals)
