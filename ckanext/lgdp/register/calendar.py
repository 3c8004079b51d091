"""The collection calendar: which instances each council must provide, when.

Every council is asked for every active return, so one return gives the same
instances to each of them. An *instance* is one reporting period of a return:
its label ("2024-25 Q1"), its first and last day, and its due date, the period
end plus the return's ``due_days_after_period_end`` (30 when not set).

The period logic is pure (no CKAN calls) so that it can be tested on its own;
the two actions at the end read the public register through package_search.

Periods by frequency and ``period_basis``:

=========  ===========  ================================  ==============
frequency  basis        period                            label
=========  ===========  ================================  ==============
annual     financial    1 April to 31 March               ``2024-25``
annual     calendar     1 January to 31 December          ``2024``
annual     academic     1 August to 31 July               ``2024-25``
quarterly  calendar     Jan-Mar, Apr-Jun, Jul-Sep, ...    ``2024-Q3``
quarterly  financial    Apr-Jun (Q1) ... Jan-Mar (Q4)     ``2024-25 Q1``
quarterly  academic     Aug-Oct (Q1) ... May-Jul (Q4)     ``2024-25 Q1``
monthly    (any)        a calendar month                  ``2024-07``
weekly     (any)        an ISO week, Monday to Sunday     ``2024-W07``
daily      (any)        a day                             ``2024-07-15``
ad_hoc     (any)        none: requested when needed
=========  ===========  ================================  ==============

A return without a ``period_basis`` follows the financial year, the year
councils work to.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import ckan.plugins.toolkit as tk
from ckan.types import Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.params import validate
from ckanext.lgdp.register import lifecycle, schema
from ckanext.lgdp.register.search import iter_returns

__all__ = ["lgdp_calendar_show", "lgdp_burden_show"]

DEFAULT_DUE_DAYS = 30
MAX_DUE_DAYS = 100 * 366
DEFAULT_BASIS = "financial"
# The first month of the year of each period basis.
YEAR_STARTS = {"calendar": 1, "financial": 4, "academic": 8}
FREQUENCIES = ("annual", "quarterly", "monthly", "weekly", "daily", "ad_hoc")
# The window lgdp_calendar_show answers for when none is given, and the
# longest it accepts (daily returns give one instance a day).
DEFAULT_WINDOW_DAYS = 365
MAX_WINDOW_DAYS = 5 * 366


# -- Periods -----------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    label: str
    start: dt.date
    end: dt.date


@dataclass(frozen=True)
class Instance:
    """One period of one return, as every council must provide it."""

    return_id: str
    return_name: str
    return_title: str
    owner_org: str
    owner_org_name: str
    owner_org_title: str
    frequency: str
    period: Period
    due_date: dt.date
    burden_hours: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "return_id": self.return_id,
            "return_name": self.return_name,
            "return_title": self.return_title,
            "owner_org": self.owner_org,
            "owner_org_name": self.owner_org_name,
            "owner_org_title": self.owner_org_title,
            "frequency": self.frequency,
            "period": self.period.label,
            "period_start": self.period.start.isoformat(),
            "period_end": self.period.end.isoformat(),
            "due_date": self.due_date.isoformat(),
            "burden_hours": self.burden_hours,
        }


def _add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month `months` after the month of `day`."""
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _year_label(first_year: int, start_month: int) -> str:
    if start_month == 1:
        return str(first_year)
    return f"{first_year}-{(first_year + 1) % 100:02d}"


def iso_week(day: dt.date) -> str:
    """The ISO week of a day, e.g. '2025-W05' (ISO years start on a Monday)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def period_containing(frequency: str, basis: str | None, day: dt.date) -> Period | None:
    """The reporting period of a return's frequency and basis that contains
    `day`; None for ad hoc (or unknown) frequencies."""
    if frequency == "daily":
        return Period(day.isoformat(), day, day)
    if frequency == "weekly":
        start = day - dt.timedelta(days=day.weekday())
        return Period(iso_week(start), start, start + dt.timedelta(days=6))
    if frequency == "monthly":
        start = day.replace(day=1)
        return Period(
            f"{start.year:04d}-{start.month:02d}",
            start,
            _add_months(start, 1) - dt.timedelta(days=1),
        )
    if frequency not in ("annual", "quarterly"):
        return None
    start_month = YEAR_STARTS.get(basis or DEFAULT_BASIS, YEAR_STARTS[DEFAULT_BASIS])
    first_year = day.year if day.month >= start_month else day.year - 1
    year_start = dt.date(first_year, start_month, 1)
    year_label = _year_label(first_year, start_month)
    if frequency == "annual":
        return Period(
            year_label, year_start, _add_months(year_start, 12) - dt.timedelta(days=1)
        )
    quarter = (day.month - start_month) % 12 // 3 + 1
    start = _add_months(year_start, 3 * (quarter - 1))
    label = (
        f"{year_label}-Q{quarter}" if start_month == 1 else f"{year_label} Q{quarter}"
    )
    return Period(label, start, _add_months(start, 3) - dt.timedelta(days=1))


def periods_from(frequency: str, basis: str | None, day: dt.date) -> Iterator[Period]:
    """The periods of a frequency in order, from the one containing `day`."""
    period = period_containing(frequency, basis, day)
    while period is not None:
        yield period
        try:
            period = period_containing(
                frequency, basis, period.end + dt.timedelta(days=1)
            )
        except (OverflowError, ValueError):  # the end of the calendar, year 9999
            return


# -- A return's fields ---------------------------------------------------------


def period_by_label(frequency: str, basis: str | None, label: str) -> Period | None:
    """The period of a frequency and basis with this label (e.g. '2024-25'),
    or None when no period has it."""
    label = (label or "").strip()
    try:
        year = int(label[:4])
    except ValueError:
        return None
    if not 1900 <= year <= 2200:
        return None
    day = dt.date(year - 1, 1, 1)
    for period in periods_from(frequency, basis, day):
        if period.label == label:
            return period
        if period.start.year > year + 1:
            return None
    return None


def period_in_data(period: Period, frequency: str, pattern: str | None) -> str:
    """How a period is written in the period column of a return's data: its
    label, unless the column's pattern wants another spelling (a quarter of a
    financial year, "2024-25 Q1", is written as its calendar quarter "2024-Q2")."""
    if not pattern or re.fullmatch(pattern, period.label):
        return period.label
    if frequency == "quarterly":
        start = period.start
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return period.label


def first_period(return_dict: dict[str, Any]) -> Period | None:
    """The return's first period: the first to start on or after its
    ``collection_start`` (as the calendar counts them); None without one."""
    start = _date(return_dict.get("collection_start"))
    if start is None:
        return None
    for period in periods_from(return_dict.get("frequency") or "", return_dict.get("period_basis") or None, start):
        if period.start >= start:
            return period
    return None


def last_open_period(return_dict: dict[str, Any], today: dt.date) -> Period | None:
    """The latest period councils may submit on ``today``: the last one that
    has ended, or, when the return allows early submission, the one under way."""
    frequency, basis = return_dict.get("frequency") or "", return_dict.get("period_basis") or None
    current = period_containing(frequency, basis, today)
    if current is None:
        return None
    if return_dict.get("early_submission") == "yes":
        return current
    return period_containing(frequency, basis, current.start - dt.timedelta(days=1))


def period_refusal(return_dict: dict[str, Any], period: Period, today: dt.date) -> str | None:
    """Why a submission of ``period`` cannot exist on ``today`` (None: it can).
    A submission exists only for a period of the return's calendar from its
    first period to the last open one (``last_open_period``)."""
    first, last = first_period(return_dict), last_open_period(return_dict, today)
    name = return_dict.get("title") or return_dict.get("name") or ""
    if first is not None and last is not None and last.start < first.start:
        last = None  # nothing has opened yet
    if first is not None and last is not None:
        open_now = tk._("submissions of {name} are open for {first} to {last}").format(
            name=name, first=first.label, last=last.label)
    elif last is not None:
        open_now = tk._("submissions of {name} are open for periods up to {last}").format(name=name, last=last.label)
    else:
        open_now = tk._("no period of {name} is open for submission yet").format(name=name)
    if first is not None and period.start < first.start:
        return tk._("{period} is before {name} began (its first period is {first}): {open}").format(
            period=period.label, name=name, first=first.label, open=open_now)
    if last is None or period.start > last.start:
        return tk._("{period} has not ended yet (it ends on {end}): {open}").format(
            period=period.label, end=period.end.isoformat(), open=open_now)
    return None


def _int(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _hours(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        hours = float(value)
    except (TypeError, ValueError):
        return None
    return hours if hours >= 0 else None


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def due_days(return_dict: dict[str, Any]) -> int:
    return _int(return_dict.get("due_days_after_period_end"), DEFAULT_DUE_DAYS)


def is_collecting(return_dict: dict[str, Any]) -> bool:
    """Councils are asked for a return while it is active or under review."""
    return return_dict.get("lifecycle_status") in lifecycle.COLLECTING


def return_periods(
    return_dict: dict[str, Any], start: dt.date, end: dt.date
) -> Iterator[tuple[Period, dt.date]]:
    """(period, due date) of every period of the return due in [start, end]."""
    if not is_collecting(return_dict) or start > end:
        return
    frequency = return_dict.get("frequency") or ""
    basis = return_dict.get("period_basis") or None
    lag_days = due_days(return_dict)
    if abs(lag_days) > MAX_DUE_DAYS:  # a due rule no calendar reaches
        return
    lag = dt.timedelta(days=lag_days)
    first = start - lag  # the earliest period end due in the window
    collection_start = _date(return_dict.get("collection_start"))
    if collection_start and collection_start > first:
        first = collection_start
    for period in periods_from(frequency, basis, first):
        try:
            due = period.end + lag
        except OverflowError:
            return
        if due > end:
            break
        if collection_start and period.start < collection_start:
            continue
        if due >= start:
            yield period, due


def instances(
    return_dict: dict[str, Any], start: dt.date, end: dt.date
) -> list[Instance]:
    """The instances of one return (a package_show dict) due in [start, end]."""
    org = return_dict.get("organization") or {}
    hours = _hours(return_dict.get("burden_hours"))
    return [
        Instance(
            return_id=return_dict.get("id", ""),
            return_name=return_dict.get("name", ""),
            return_title=return_dict.get("title") or return_dict.get("name", ""),
            owner_org=return_dict.get("owner_org") or org.get("id", ""),
            owner_org_name=org.get("name", ""),
            owner_org_title=org.get("title") or org.get("name", ""),
            frequency=return_dict.get("frequency", ""),
            period=period,
            due_date=due,
            burden_hours=hours,
        )
        for period, due in return_periods(return_dict, start, end)
    ]


def calendar(
    returns: Iterable[dict[str, Any]], start: dt.date, end: dt.date
) -> list[Instance]:
    """The instances of many returns due in [start, end], by due date."""
    found = [i for r in returns for i in instances(r, start, end)]
    found.sort(
        key=lambda i: (
            i.due_date,
            i.return_title.lower(),
            i.return_name,
            i.period.start,
        )
    )
    return found


def clusters(found: Iterable[Instance]) -> list[dict[str, Any]]:
    """How many instances fall due in each ISO week (the weeks with any)."""
    counts = Counter(iso_week(i.due_date) for i in found)
    mondays = {
        iso_week(i.due_date): i.due_date - dt.timedelta(days=i.due_date.weekday())
        for i in found
    }
    return [
        {"week": week, "week_start": mondays[week].isoformat(), "due": counts[week]}
        for week in sorted(counts, key=lambda w: mondays[w])
    ]


def burden(found: Iterable[Instance]) -> float:
    """Hours one council spends on the instances (returns without an
    estimate count as none)."""
    return round(sum(i.burden_hours or 0.0 for i in found), 2)


# -- Actions -------------------------------------------------------------------


def _council(context: Context, ident: str | None) -> dict[str, Any] | None:
    """The council an answer is for, as {id, name, title, gss_code}."""
    if not ident:
        return None
    try:
        org = tk.get_action("organization_show")(
            {"user": context.get("user")},
            {
                "id": ident,
                "include_datasets": False,
                "include_users": False,
                "include_groups": False,
                "include_tags": False,
                "include_followers": False,
            },
        )
    except tk.ObjectNotFound:
        message = tk._("Council not found: {name}").format(name=ident)
        raise tk.ObjectNotFound(message) from None
    if org.get("org_type") != access.COUNCIL:
        raise tk.ValidationError(
            {
                "organization": [
                    tk._("{name} is not a council").format(
                        name=org.get("title") or ident
                    )
                ]
            }
        )
    return {
        "id": org["id"],
        "name": org["name"],
        "title": org.get("title") or org["name"],
        "gss_code": org.get("gss_code"),
    }


def collecting_returns(context: Context) -> list[dict[str, Any]]:
    """Every public data return councils are asked for (active or under review)."""
    return list(iter_returns(context, states=lifecycle.COLLECTING, include_private=False))


@tk.side_effect_free
@validate(schema.calendar_show)
def lgdp_calendar_show(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """The collection calendar: the instances of the register's active returns
    that fall due in a window, with the weeks deadlines cluster in and the
    burden they bring.

    Every council is asked for every active return, so the instances are the
    same for each; naming a council gives its calendar (its name in the answer
    and on the .ics feed).

    :param organization: a council's name or id (optional)
    :type organization: string
    :param start: the first due date of the window, YYYY-MM-DD (default: today)
    :type start: string
    :param end: the last due date of the window, YYYY-MM-DD (default: a year
        after start); at most five years after start
    :type end: string

    :returns: ``{"organization": {id, name, title, gss_code} or None,
        "start", "end", "instances": [{return_id, return_name, return_title,
        owner_org, owner_org_name, owner_org_title, frequency, period,
        period_start, period_end, due_date, burden_hours}, ...] (by due date),
        "clusters": [{"week": "2025-W05", "week_start": "2025-01-27",
        "due": 3}, ...] (the ISO weeks with deadlines, in order),
        "burden_hours": hours one council spends on the window's instances}``
    """
    tk.check_access("lgdp_calendar_show", context, data_dict)
    data = data_dict
    start = data.get("start") or dt.date.today()
    end = data.get("end") or start + dt.timedelta(days=DEFAULT_WINDOW_DAYS)
    if end < start:
        raise tk.ValidationError(
            {"end": [tk._("The end of the window is before its start")]}
        )
    if (end - start).days > MAX_WINDOW_DAYS:
        raise tk.ValidationError({"end": [tk._("A window is at most five years long")]})
    council = _council(context, data.get("organization"))

    found = calendar(collecting_returns(context), start, end)
    return {
        "organization": council,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "instances": [i.as_dict() for i in found],
        "clusters": clusters(found),
        "burden_hours": burden(found),
    }


@tk.side_effect_free
@validate(schema.burden_show)
def lgdp_burden_show(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """The burden of the register on a council in a calendar year: for each
    active return, the instances due that year and the hours they take.

    Every council is asked for every active return, so the figures are those
    of each council; naming one puts its name in the answer.

    :param year: the calendar year of the due dates (default: this year)
    :type year: int
    :param organization: a council's name or id (optional)
    :type organization: string

    :returns: ``{"year": 2025, "organization": {...} or None,
        "returns": [{return_id, return_name, return_title, owner_org,
        owner_org_name, owner_org_title, frequency, instances,
        burden_hours_per_instance, burden_hours}, ...] (the returns with an
        instance due that year, heaviest first), "instances": total,
        "burden_hours": total hours per council that year}``
    """
    tk.check_access("lgdp_burden_show", context, data_dict)
    data = data_dict
    year = data.get("year") or dt.date.today().year
    council = _council(context, data.get("organization"))
    start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)

    rows: list[dict[str, Any]] = []
    for ret in collecting_returns(context):
        due = instances(ret, start, end)
        if not due:
            continue
        first = due[0]
        rows.append(
            {
                "return_id": first.return_id,
                "return_name": first.return_name,
                "return_title": first.return_title,
                "owner_org": first.owner_org,
                "owner_org_name": first.owner_org_name,
                "owner_org_title": first.owner_org_title,
                "frequency": first.frequency,
                "instances": len(due),
                "burden_hours_per_instance": first.burden_hours,
                "burden_hours": burden(due),
            }
        )
    rows.sort(
        key=lambda r: (-r["burden_hours"], r["return_title"].lower(), r["return_name"])
    )
    return {
        "year": year,
        "organization": council,
        "returns": rows,
        "instances": sum(r["instances"] for r in rows),
        "burden_hours": round(sum(r["burden_hours"] for r in rows), 2),
    }
