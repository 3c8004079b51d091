"""Pages and feeds of the collection calendar.

    /calendar             the whole sector: the next twelve months
    /calendar/<org>       one council's calendar, with a link to its feed
    /calendar/<org>.ics   the council's calendar as an iCalendar feed

Each page takes ``start`` and ``end`` (YYYY-MM-DD) in the query string.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlparse

from flask import Blueprint, Response
from flask_babel import format_date

import ckan.plugins.toolkit as tk
from ckan.types import Context

from ckanext.lgdp import access

calendar = Blueprint("lgdp_calendar", __name__)

PRODID = "-//Local Government Data Platform//Collection calendar//EN"


def get_blueprints() -> list[Blueprint]:
    return [calendar]


def _context() -> Context:
    user = tk.current_user
    return cast(Context, {"user": user.name, "auth_user_obj": user})


def _errors(error: tk.ValidationError) -> str:
    summary = error.error_summary or {}
    if not summary:
        return str(error)
    return "; ".join(f"{field}: {message}" for field, message in summary.items())


def _calendar_show(org: str | None) -> dict[str, Any]:
    """lgdp_calendar_show for the window in the query string."""
    data = {k: v for k in ("start", "end") if (v := tk.request.args.get(k, "").strip())}
    if org:
        data["organization"] = org
    try:
        return tk.get_action("lgdp_calendar_show")(_context(), data)
    except tk.NotAuthorized:
        return tk.abort(403, tk._("Not authorised to see the collection calendar"))
    except tk.ObjectNotFound as e:
        return tk.abort(404, str(e) or tk._("Council not found"))
    except tk.ValidationError as e:
        return tk.abort(400, _errors(e))


def _councils() -> list[dict[str, Any]]:
    """Every council, by title, for the links to their calendars."""
    action = tk.get_action("organization_list")
    found: list[dict[str, Any]] = []
    while True:
        try:
            page = action(
                _context(),
                {
                    "all_fields": True,
                    "include_extras": True,
                    "sort": "title asc",
                    "limit": 25,
                    "offset": len(found),
                },
            )
        except tk.NotAuthorized:
            return []
        found.extend(page)
        if len(page) < 25:
            break

    def org_type(org: dict[str, Any]) -> str:
        if org.get("org_type"):
            return org["org_type"]
        extras = {e.get("key"): e.get("value") for e in org.get("extras") or []}
        return extras.get("org_type", "")

    return [org for org in found if org_type(org) == access.COUNCIL]


def frequency_labels() -> dict[str, str]:
    return {
        "annual": tk._("Annual"),
        "quarterly": tk._("Quarterly"),
        "monthly": tk._("Monthly"),
        "weekly": tk._("Weekly"),
        "daily": tk._("Daily"),
        "ad_hoc": tk._("Ad hoc"),
    }


def _day(value: str) -> str:
    """A date as the reader's locale writes it, e.g. '31 Jan 2025'."""
    return format_date(dt.date.fromisoformat(value), "medium")


def _page(result: dict[str, Any]) -> str:
    return tk.render(
        "lgdp/calendar/index.html",
        {
            "calendar": result,
            "councils": [] if result["organization"] else _councils(),
            "frequency_labels": frequency_labels(),
            "format_day": _day,
            "max_due": max((c["due"] for c in result["clusters"]), default=0),
        },
    )


@calendar.route("/calendar")
def index() -> str:
    """The whole sector's calendar: every active return due in the window."""
    return _page(_calendar_show(None))


@calendar.route("/calendar/<org>.ics")
def ics(org: str) -> Response:
    """A council's calendar as an iCalendar feed, one all-day event per
    instance on its due date."""
    result = _calendar_show(org)
    body = ics_feed(
        result,
        link=lambda i: tk.url_for(
            "data-return.read", id=i["return_name"], qualified=True
        ),
        host=urlparse(tk.config.get("ckan.site_url") or "").hostname or "localhost",
    )
    response = Response(body.encode("utf-8"), mimetype="text/calendar")
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = (
        f'inline; filename="{result["organization"]["name"]}.ics"'
    )
    return response


@calendar.route("/calendar/<org>")
def council(org: str) -> str:
    """One council's calendar."""
    return _page(_calendar_show(org))


# -- iCalendar (RFC 5545) -------------------------------------------------------


def ics_text(value: str) -> str:
    """A TEXT value: backslashes, semicolons, commas and newlines escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\r", "\\n")
        .replace("\n", "\\n")
    )


def ics_fold(line: str) -> str:
    """Fold a content line into lines of at most 75 octets (RFC 5545 3.1),
    never inside a UTF-8 character; continuation lines start with a space."""
    if len(line.encode("utf-8")) <= 75:
        return line
    lines: list[str] = []
    current, size = "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > 75:
            lines.append(current)
            current, size = " ", 1
        current += char
        size += width
    lines.append(current)
    return "\r\n".join(lines)


def _ics_date(value: str) -> str:
    return value.replace("-", "")


def _uid_part(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in value)


def ics_feed(
    result: dict[str, Any],
    link: Callable[[dict[str, Any]], str],
    host: str,
    now: dt.datetime | None = None,
) -> str:
    """An lgdp_calendar_show answer for a council as an iCalendar object.

    Each instance is an all-day VEVENT on its due date; its UID is stable for
    the return, the period and the council, so a calendar that subscribes to
    the feed updates events rather than duplicating them.
    """
    council = result["organization"]
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = tk._("Data returns due: {council}").format(council=council["title"])
    lines: list[str] = [
        "BEGIN:VCALENDAR",
        f"PRODID:{PRODID}",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{ics_text(name)}",
    ]
    for instance in result["instances"]:
        due = dt.date.fromisoformat(instance["due_date"])
        url = link(instance)
        summary = tk._("Due: {title} {period}").format(
            title=instance["return_title"], period=instance["period"]
        )
        description = "\n".join(
            [
                tk._("Period: {period} ({start} to {end})").format(
                    period=instance["period"],
                    start=instance["period_start"],
                    end=instance["period_end"],
                ),
                tk._("Requested by: {agency}").format(
                    agency=instance["owner_org_title"]
                ),
                tk._("The return: {url}").format(url=url),
            ]
        )
        uid = "-".join(
            _uid_part(v)
            for v in (
                instance["return_id"] or instance["return_name"],
                instance["period"],
                council["id"],
            )
        )
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}@{host}",
            f"DTSTAMP:{stamp}",
            f"DTSTART;VALUE=DATE:{_ics_date(due.isoformat())}",
            f"DTEND;VALUE=DATE:{_ics_date((due + dt.timedelta(days=1)).isoformat())}",
            f"SUMMARY:{ics_text(summary)}",
            f"DESCRIPTION:{ics_text(description)}",
            f"URL:{url}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) + "\r\n" for line in lines)
