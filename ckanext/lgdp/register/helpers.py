"""Template helpers of the register."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from babel import Locale

import ckan.plugins.toolkit as tk
from ckan.common import request

from ckanext.lgdp import access
from ckanext.lgdp.register import lifecycle, search, standards

__all__ = [
    "lgdp_agency_choices",
    "lgdp_lifecycle_next",
    "lgdp_is_governor",
    "lgdp_is_reviewer",
    "lgdp_standard_fields",
    "lgdp_return_overlaps",
    "lgdp_facet_labeller",
    "lgdp_return_due",
    "lgdp_languages",
    "lgdp_language_url",
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


def lgdp_return_due(return_id: str, limit: int = 4) -> list[dict[str, Any]]:
    """The next instances of a return from the collection calendar (period
    and due date), for its page."""
    today = dt.date.today()
    try:
        found = tk.get_action("lgdp_calendar_show")({"user": _user()}, {
            "start": today.isoformat(), "end": (today + dt.timedelta(days=2 * 366)).isoformat()})
    except (tk.NotAuthorized, tk.ValidationError):
        return []
    return [i for i in found["instances"] if i["return_id"] == return_id][:limit]


def lgdp_languages() -> list[dict[str, str]]:
    """The languages the site offers (``ckan.locales_offered``, the default
    first), each named in itself. CKAN's own selector lists only languages
    CKAN has a catalogue for, which leaves out Scottish Gaelic: our
    catalogue gives it for every page of ours."""
    default = tk.config.get("ckan.locale_default") or "en"
    offered = list(tk.config.get("ckan.locales_offered") or []) or [default]
    ordered = [default] + [code for code in offered if code != default]
    out = []
    for code in ordered:
        try:
            name = Locale.parse(code).display_name or code
        except (ValueError, TypeError):
            name = code
        out.append({"code": code, "name": name[:1].upper() + name[1:], "bcp47": code.replace("_", "-")})
    return out


def lgdp_language_url(code: str) -> str:
    """This page in another language: its path with the language prefix
    (none for the default language)."""
    path = request.environ.get("CKAN_CURRENT_URL") or "/"
    root = (tk.config.get("ckan.root_path") or "").replace("/{{LANG}}", "").rstrip("/")
    if code == (tk.config.get("ckan.locale_default") or "en"):
        return f"{root}{path}"
    return f"{root}/{code}{path}"


def _user() -> str:
    return tk.current_user.name if tk.current_user.is_authenticated else ""


# Facets whose values are codes of a select field of the data-return schema.
_CHOICE_FACETS = ("frequency", "statutory", "lifecycle_status", "topic", "period_basis")

# The words behind the values of facets another domain indexes (a
# submission's status, its timeliness), by facet: filled by the plugin from
# that domain (``submissions.helpers.facet_labels``), so that the catalogue
# labels them without importing upward.
FACET_LABELS: dict[str, Callable[[str], str]] = {}


def lgdp_facet_labeller(facet: str) -> Callable[[dict[str, Any]], str] | None:
    """A label function for one facet of the catalogue: full organisation
    titles (not cut at 22 characters) and the words behind choice codes."""
    if facet in ("organization", search.REQUESTING_FIELD):
        titles = {o["name"]: o["title"] for o in access.orgs_of_type(access.AGENCY)}
        titles.update({o["name"]: o["title"] for o in access.orgs_of_type(access.COORDINATOR)})
        titles.update({o["name"]: o["title"] for o in access.orgs_of_type(access.COUNCIL)})
        return lambda item: titles.get(item["name"], item.get("display_name") or item["name"])
    if facet in _CHOICE_FACETS:
        schema = tk.h.scheming_get_dataset_schema(search.RETURN_TYPE) or {}
        field = tk.h.scheming_field_by_name(schema.get("dataset_fields", []), facet) or {}
        labels = {c["value"]: tk.h.scheming_language_text(c["label"]) for c in field.get("choices", [])}
        return lambda item: labels.get(item["name"], item.get("display_name") or item["name"])
    if facet in FACET_LABELS:
        label = FACET_LABELS[facet]
        return lambda item: label(item["name"])
    return None
