"""Pages of the benchmarking dashboards.

    /benchmarking                      choose an indicator and a council; saved dashboards
    /benchmarking/indicator            one indicator: a council (or Scotland) against
                                    Scotland and its family group, trend, ranking, map
    /benchmarking/indicator.csv        the same figures as CSV (``table=trend|ranking``)
    /benchmarking/saved                POST: save a named dashboard
    /benchmarking/saved/<id>           a saved dashboard (every indicator as a panel)
    /benchmarking/saved/<id>/delete    POST: delete it

Query string: ``indicator`` (``<return>:<field>``), ``council`` (GSS code or
organisation name; empty for the sector view), ``period``, ``from``, ``to``.
Every figure is in a table in the page; the charts are drawn from the same
figures by JavaScript, so the page works without it.
"""
from __future__ import annotations

import csv
import io
import json
from typing import Any

from flask import Blueprint, Response
from markupsafe import Markup

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp import access, pages
from ckanext.lgdp.dashboards import maps
from ckanext.lgdp.repository import reference

dashboards = Blueprint("lgdp_dashboards", __name__)


def get_blueprints() -> list[Blueprint]:
    return [dashboards]


# ---------------------------------------------------------------- formatting

def fmt(value: float | None, decimals: int = 1) -> str:
    if value is None:
        return tk._("no data")
    if abs(value - round(value)) < 1e-9 and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def _measure_label(ind: dict[str, Any]) -> str:
    if ind["countable"]:
        return tk._("{title} per 1,000 population").format(title=ind["title"])
    return ind["title"]


def my_council() -> str | None:
    """The GSS code of the signed-in user's (first) council."""
    who = access.actor(tk.current_user.name if tk.current_user.is_authenticated else None)
    for m in who.orgs(access.COUNCIL):
        group = model.Group.get(m.org_id)
        if group is not None and group.extras.get("gss_code"):
            return group.extras["gss_code"]
    return None


def council_choices() -> list[dict[str, str]]:
    return sorted(({"gss": c["gss_code"], "name": c["name"]} for c in reference.councils()),
                  key=lambda c: c["name"])


# ---------------------------------------------------------------- panels

def _chart_data(fig: dict[str, Any]) -> dict[str, Any]:
    """What the charts draw: the same figures as the tables."""
    ind = fig["indicator"]
    council = fig["council"]
    series = []
    if council:
        series.append({"name": council["name"], "role": "council",
                       "data": [t["council"] for t in fig["trend"]], "flagged": [t["flagged"] for t in fig["trend"]]})
        series.append({"name": tk._("Family group average"), "role": "family",
                       "data": [t["family"] for t in fig["trend"]]})
    series.append({"name": tk._("Scotland"), "role": "scotland", "data": [t["scotland"] for t in fig["trend"]]})
    ranked = [r for r in fig["ranking"] if r["rank"] is not None]
    headline = fig["headline"] or {}
    return {
        "measure": _measure_label(ind),
        "trend": {"title": tk._("Trend: {m}").format(m=_measure_label(ind)),
                  "periods": [t["period"] for t in fig["trend"]], "series": series},
        "ranking": {"title": tk._("All councils, {period}").format(period=fig["period"] or ""),
                    "names": [r["name"] for r in ranked], "codes": [r["gss"] for r in ranked],
                    "values": [r["measure"] for r in ranked],
                    "highlight": [r["highlight"] for r in ranked], "flagged": [r["flagged"] for r in ranked],
                    "from_zero": bool(ind["countable"]),
                    "scotland": (headline.get("scotland") or {}).get("measure"),
                    "family": (headline.get("family") or {}).get("measure"),
                    "labels": {"scotland": tk._("Scotland"), "family": tk._("Family group average"),
                               "flagged": tk._("quality flag open")}},
    }


def _map(fig: dict[str, Any]) -> Markup | None:
    values = {r["gss"]: r["measure"] for r in fig["ranking"]}
    names = {r["gss"]: r["name"] for r in fig["ranking"]}
    flagged = {r["gss"] for r in fig["ranking"] if r["flagged"]}
    return maps.svg_map(values, names, title=tk._("Map: {m}, {period}").format(
        m=_measure_label(fig["indicator"]), period=fig["period"] or ""),
        highlight=(fig["council"] or {}).get("gss"), fmt=fmt, flagged=flagged, no_data_label=tk._("no data"))


def panel(indicator: str, council: str | None, period: str | None, period_from: str | None,
          period_to: str | None, with_map: bool = True) -> dict[str, Any]:
    fig = tk.get_action("lgdp_dashboard_figures")(pages.context(), {
        "indicator": indicator, "council": council or "", "period": period or "",
        "period_from": period_from or "", "period_to": period_to or ""})
    chart = _chart_data(fig)
    return {"fig": fig, "chart": chart, "chart_json": Markup(json.dumps(chart).replace("</", "<\\/")),
            "measure_label": _measure_label(fig["indicator"]), "map": _map(fig) if with_map else None}


def _args() -> dict[str, str | None]:
    a = tk.request.args
    council = a.get("council")
    if council is None:  # not chosen yet: the user's own council
        council = my_council() or ""
    return {"indicator": a.get("indicator") or None, "council": council or None, "period": a.get("period") or None,
            "period_from": a.get("from") or None, "period_to": a.get("to") or None}


def _query(args: dict[str, str | None], **changes: Any) -> dict[str, str]:
    merged = {**args, **changes}
    return {k2: v for k, k2 in (("indicator", "indicator"), ("council", "council"), ("period", "period"),
                                 ("period_from", "from"), ("period_to", "to"))
            if (v := merged.get(k))}


# ---------------------------------------------------------------- pages

def index() -> Any:
    indicators = pages.call("lgdp_indicator_list", {})
    saved = pages.call("lgdp_dashboard_list", {})
    who = access.actor(tk.current_user.name if tk.current_user.is_authenticated else None)
    orgs = []
    for m in who.memberships:
        group = model.Group.get(m.org_id) if m.at_least("editor") else None
        if group is not None:
            orgs.append({"id": m.org_id, "name": m.org_name, "title": group.title or m.org_name})
    return tk.render("lgdp/dashboards/index.html", {
        "indicators": indicators, "saved": saved, "councils": council_choices(), "council": _args()["council"],
        "orgs": orgs, "signed_in": not who.anonymous})


def indicator() -> Any:
    args = _args()
    if not args["indicator"]:
        return tk.redirect_to("lgdp_dashboards.index")
    try:
        shown = panel(args["indicator"], args["council"], args["period"], args["period_from"], args["period_to"])
    except tk.ObjectNotFound as e:
        return tk.abort(404, str(e))
    except tk.ValidationError as e:
        return tk.abort(400, pages.messages(e, with_fields=True))
    indicators = pages.call("lgdp_indicator_list", {})
    return tk.render("lgdp/dashboards/indicator.html", {
        **shown, "args": args, "indicators": indicators, "councils": council_choices(),
        "csv_trend": tk.h.url_for("lgdp_dashboards.indicator_csv", table="trend", **_query(args)),
        "csv_ranking": tk.h.url_for("lgdp_dashboards.indicator_csv", table="ranking", **_query(args))})


TREND_COLUMNS = ("period", "council", "council_value", "family", "scotland", "flagged")
RANKING_COLUMNS = ("rank", "gss", "name", "value", "rate", "measure", "population", "in_family", "flagged")


def indicator_csv() -> Any:
    args = _args()
    table = tk.request.args.get("table", "ranking")
    if table not in ("trend", "ranking"):
        return tk.abort(400, tk._("table must be trend or ranking"))
    fig = pages.call("lgdp_dashboard_figures", {
        "indicator": args["indicator"] or "", "council": args["council"] or "", "period": args["period"] or "",
        "period_from": args["period_from"] or "", "period_to": args["period_to"] or ""})
    buf = io.StringIO()
    columns = TREND_COLUMNS if table == "trend" else RANKING_COLUMNS
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in fig[table]:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    ind = fig["indicator"]
    name = f"{ind['return_name']}-{ind['field']}-{table}"
    if fig["council"]:
        name += f"-{fig['council']['gss']}"
    return Response(buf.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


def saved_create() -> Any:
    form = tk.request.form
    data = {"title": form.get("title", ""), "indicators": form.getlist("indicators"),
            "council": form.get("council", ""), "period_from": form.get("from", ""), "period_to": form.get("to", "")}
    if form.get("organization"):
        data["organization"] = form["organization"]
    try:
        saved = tk.get_action("lgdp_dashboard_create")(pages.context(), data)
    except tk.NotAuthorized as e:
        return tk.abort(403, str(e) or tk._("Not authorised"))
    except tk.ValidationError as e:
        tk.h.flash_error(pages.messages(e, with_fields=True))
        return tk.redirect_to("lgdp_dashboards.index")
    tk.h.flash_success(tk._("Dashboard saved."))
    return tk.redirect_to("lgdp_dashboards.saved", id=saved["id"])


def saved(id: str) -> Any:
    board = pages.call("lgdp_dashboard_show", {"id": id})
    a = tk.request.args
    council = a.get("council") if "council" in a else board["council_gss"]
    period_from = a.get("from") or board["period_from"]
    period_to = a.get("to") or board["period_to"]
    panels = []
    for item in board["panels"]:
        if not item["readable"]:
            panels.append({"indicator": item["indicator"], "readable": False})
            continue
        try:
            shown = panel(item["indicator"], council, a.get("period"), period_from, period_to, with_map=False)
        except (tk.ObjectNotFound, tk.ValidationError):
            panels.append({"indicator": item["indicator"], "readable": False})
            continue
        panels.append({"indicator": item["indicator"], "readable": True, **shown})
    return tk.render("lgdp/dashboards/saved.html", {
        "board": board, "panels": panels, "councils": council_choices(), "council": council,
        "period_from": period_from, "period_to": period_to})


def saved_delete(id: str) -> Any:
    pages.call("lgdp_dashboard_delete", {"id": id})
    tk.h.flash_success(tk._("Dashboard deleted."))
    return tk.redirect_to("lgdp_dashboards.index")


dashboards.add_url_rule("/benchmarking", view_func=index)
dashboards.add_url_rule("/benchmarking/indicator", view_func=indicator)
dashboards.add_url_rule("/benchmarking/indicator.csv", view_func=indicator_csv)
dashboards.add_url_rule("/benchmarking/saved", view_func=saved_create, methods=["POST"])
dashboards.add_url_rule("/benchmarking/saved/<id>", view_func=saved)
dashboards.add_url_rule("/benchmarking/saved/<id>/delete", view_func=saved_delete, methods=["POST"])
