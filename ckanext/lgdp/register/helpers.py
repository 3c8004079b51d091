"""Template helpers of the register."""
from __future__ import annotations

from typing import Any

import ckan.plugins.toolkit as tk

from ckanext.lgdp import access
from ckanext.lgdp.register import lifecycle, standards

__all__ = [
    "lgdp_agency_choices",
    "lgdp_lifecycle_next",
    "lgdp_is_governor",
    "lgdp_is_reviewer",
    "lgdp_standard_fields",
    "lgdp_return_overlaps",
]


def lgdp_agency_choices(field: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Scheming choices: every agency organisation."""
    return [{"value": o["name"], "label": o["title"]} for o in access.orgs_of_type(access.AGENCY)]


def lgdp_lifecycle_next(status: str | None) -> tuple[str, ...]:
    return lifecycle.TRANSITIONS.get(status or lifecycle.INITIAL, ())


def lgdp_is_governor() -> bool:
    return access.actor(_user()).is_governor()


def lgdp_is_reviewer() -> bool:
    return access.actor(_user()).is_reviewer()


def lgdp_standard_fields(value: Any) -> list[dict[str, Any]]:
    """The fields of a data standard, for a readable table."""
    schema = standards.load(value) or {}
    return list(schema.get("fields") or [])


def lgdp_return_overlaps(name: str) -> list[dict[str, Any]]:
    """Returns whose standards overlap this one's (for a proposal's page)."""
    try:
        result = tk.get_action("lgdp_return_overlap")({"user": _user()}, {"id": name})
    except (tk.NotAuthorized, tk.ObjectNotFound, tk.ValidationError):
        return []
    return result.get("overlaps", [])


def _user() -> str:
    return tk.current_user.name if tk.current_user.is_authenticated else ""
