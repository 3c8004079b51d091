"""Actions of the dashboards: the indicators a user may read, the figures of
one indicator, and saved (named) dashboards of a user or an organisation."""
from __future__ import annotations

from typing import Any

from flask import g, has_request_context

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.dashboards import data, schema
from ckanext.lgdp.model import SavedDashboard
from ckanext.lgdp.model import dashboards as saved_dashboards
from ckanext.lgdp.model.audit import _now
from ckanext.lgdp.params import validate
from ckanext.lgdp.repository import reference

__all__ = [
    "lgdp_indicator_list",
    "lgdp_dashboard_figures",
    "lgdp_dashboard_create",
    "lgdp_dashboard_update",
    "lgdp_dashboard_delete",
    "lgdp_dashboard_show",
    "lgdp_dashboard_list",
]

MAX_INDICATORS = 12
MAX_TITLE = 200


def reader_for(context: Context) -> data.Reader:
    """The caller's read decisions, worked out once per web request (a page
    with several panels asks for several indicators)."""
    user = context.get("user") or ""
    if not has_request_context():
        return data.Reader(access.actor(user))
    readers = g.setdefault("_lgdp_readers", {})
    if user not in readers:
        readers[user] = data.Reader(access.actor(user))
    return readers[user]


def council_code(value: str | None) -> str | None:
    """A council given by GSS code, organisation name or id -> GSS code."""
    if not value:
        return None
    names = reference.council_names()
    if value in names:
        return value
    group = model.Group.get(value)
    if group is not None and group.extras.get("gss_code") in names:
        return group.extras["gss_code"]
    raise tk.ValidationError({"council": [tk._("No council {value}").format(value=value)]})


@tk.side_effect_free
@validate(schema.indicator_list)
def lgdp_indicator_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """The indicators the caller may read: numeric fields of the
    consolidated tables of the returns open to them.

    :param data_return: only this return's (name or id; optional)
    """
    tk.check_access("lgdp_indicator_list", context, data_dict)
    found = data.indicators(reader_for(context))
    wanted = data_dict.get("data_return")
    if wanted:
        found = [i for i in found if wanted in (i.return_name, i.return_id)]
    return [i.as_dict() for i in found]


@tk.side_effect_free
@validate(schema.dashboard_figures)
def lgdp_dashboard_figures(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """The figures of one indicator: a council against Scotland and its
    family group, the trend over periods, the ranking of all councils, and
    the open quality flags the caller may read.

    :param indicator: ``<return name>:<field>``
    :param council: GSS code or organisation name (optional: sector view)
    :param period: the period ranked (optional: the latest)
    :param period_from: first period of the trend (optional)
    :param period_to: last period of the trend (optional)
    """
    tk.check_access("lgdp_dashboard_figures", context, data_dict)
    reader = reader_for(context)
    ident = data_dict["indicator"]
    ind = data.find(reader, ident)
    if ind is None:
        raise tk.ObjectNotFound(tk._("No indicator {ident} that you may read").format(ident=ident))
    return data.figures(reader, ind, council=council_code(data_dict.get("council")),
                        period=data_dict.get("period") or None, period_from=data_dict.get("period_from") or None,
                        period_to=data_dict.get("period_to") or None)


# ---------------------------------------------------------------- saved dashboards

def _get(ident: str | None) -> SavedDashboard:
    obj = model.Session.get(SavedDashboard, ident or "")
    if obj is None:
        raise tk.ObjectNotFound(tk._("Dashboard not found"))
    return obj


def _clean(context: Context, data_dict: DataDict, current: SavedDashboard | None) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    out: dict[str, Any] = {}
    title = (data_dict.get("title") if "title" in data_dict or current is None else current.title) or ""
    title = str(title).strip()
    if not title:
        errors["title"] = [tk._("Give the dashboard a name")]
    elif len(title) > MAX_TITLE:
        errors["title"] = [tk._("At most {n} characters").format(n=MAX_TITLE)]
    out["title"] = title
    if "indicators" in data_dict or current is None:
        raw = data_dict.get("indicators") or []
        if isinstance(raw, str):
            raw = [p.strip() for p in raw.replace("\n", ",").split(",") if p.strip()]
        if not isinstance(raw, list) or not raw:
            errors["indicators"] = [tk._("Choose at least one indicator")]
        else:
            raw = list(dict.fromkeys(str(i) for i in raw))
            if len(raw) > MAX_INDICATORS:
                errors["indicators"] = [tk._("At most {n} indicators").format(n=MAX_INDICATORS)]
            reader = reader_for(context)
            unknown = [i for i in raw if data.find(reader, i) is None]
            if unknown:
                errors["indicators"] = [tk._("Not an indicator you may read: {ids}").format(ids=", ".join(unknown))]
            out["indicators"] = raw
    if "council" in data_dict:
        try:
            out["council_gss"] = council_code(data_dict.get("council"))
        except tk.ValidationError as e:
            errors.update(e.error_dict)
    for key in ("period_from", "period_to"):
        if key in data_dict:
            out[key] = str(data_dict.get(key) or "").strip() or None
    if out.get("period_from") and out.get("period_to") and out["period_from"] > out["period_to"]:
        errors["period_to"] = [tk._("The last period comes before the first")]
    if errors:
        raise tk.ValidationError(errors)
    return out


@validate(schema.dashboard_create)
def lgdp_dashboard_create(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Save a named dashboard.

    :param title: its name
    :param indicators: list of indicator ids (or comma-separated)
    :param council: GSS code or organisation name (optional)
    :param period_from, period_to: the periods shown (optional)
    :param organization: share it with this organisation (its editors
        and admins may save for it; optional: a personal dashboard)
    """
    org_id = None
    if data_dict.get("organization"):
        group = model.Group.get(data_dict["organization"])
        if group is None or not group.is_organization or group.state != "active":
            raise tk.ObjectNotFound(tk._("No organisation {o}").format(o=data_dict["organization"]))
        org_id = group.id
    tk.check_access("lgdp_dashboard_create", context, data_dict)
    who = access.context_actor(context)
    values = _clean(context, data_dict, None)
    obj = SavedDashboard(owner_user_id=None if org_id else who.user_id, owner_org_id=org_id,
                         created_by=who.user_id, **values)
    model.Session.add(obj)
    model.Session.commit()
    return obj.dictize()


@validate(schema.dashboard_update)
def lgdp_dashboard_update(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Change a saved dashboard (only the fields given).

    :param id: the dashboard
    :param title, indicators, council, period_from, period_to: as for
        lgdp_dashboard_create (optional: those not given are kept)
    """
    obj = _get(data_dict.get("id"))
    tk.check_access("lgdp_dashboard_update", context, data_dict)
    for key, value in _clean(context, data_dict, obj).items():
        setattr(obj, key, value)
    obj.modified = _now()
    model.Session.commit()
    return obj.dictize()


@validate(schema.dashboard_id)
def lgdp_dashboard_delete(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Delete a saved dashboard.

    :param id: the dashboard
    """
    obj = _get(data_dict.get("id"))
    tk.check_access("lgdp_dashboard_delete", context, data_dict)
    out = obj.dictize()
    model.Session.delete(obj)
    model.Session.commit()
    return out


@tk.side_effect_free
@validate(schema.dashboard_id)
def lgdp_dashboard_show(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """A saved dashboard, with each indicator marked readable or not for the
    caller (a shared dashboard may name returns a member cannot read).

    :param id: the dashboard
    """
    obj = _get(data_dict.get("id"))
    tk.check_access("lgdp_dashboard_show", context, data_dict)
    reader = reader_for(context)
    out = obj.dictize()
    out["panels"] = [{"indicator": i, "readable": data.find(reader, i) is not None} for i in obj.indicators or []]
    return out


@tk.side_effect_free
@validate(schema.dashboard_list)
def lgdp_dashboard_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """The caller's own dashboards and those of their organisations. It takes
    no parameters."""
    tk.check_access("lgdp_dashboard_list", context, data_dict)
    who = access.context_actor(context)
    if who.anonymous:
        return []
    org_ids = [m.org_id for m in who.memberships]
    names = {m.org_id: m.org_name for m in who.memberships}
    out = []
    for obj in saved_dashboards.saved_for(who.user_id, org_ids):
        row = obj.dictize()
        row["organization"] = names.get(obj.owner_org_id) if obj.owner_org_id else None
        out.append(row)
    return out
