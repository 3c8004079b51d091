"""The collection calendar: the periods and due dates of each frequency (pure
functions), then the actions, pages and iCalendar feed through HTTP against
the real services."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from icalendar import Calendar

from ckan.tests import factories

from ckanext.lgdp.register import calendar as cal
from ckanext.lgdp.register.calendar_views import ics_fold, ics_text

D = dt.date


def a_return(**fields):
    """A package_show dict of an active data return."""
    return {
        "id": "r1",
        "name": "a-return",
        "title": "A return",
        "lifecycle_status": "active",
        "organization": {"id": "o1", "name": "an-agency", "title": "An Agency"},
        "owner_org": "o1",
        **fields,
    }


def due(return_dict, start, end):
    return [
        (i.period.label, i.period.start, i.period.end, i.due_date)
        for i in cal.instances(return_dict, start, end)
    ]


# -- Periods ---------------------------------------------------------------------


def test_monthly_periods_and_due_dates():
    monthly = a_return(frequency="monthly", due_days_after_period_end=15)
    assert due(monthly, D(2024, 8, 1), D(2024, 10, 31)) == [
        ("2024-07", D(2024, 7, 1), D(2024, 7, 31), D(2024, 8, 15)),
        ("2024-08", D(2024, 8, 1), D(2024, 8, 31), D(2024, 9, 15)),
        ("2024-09", D(2024, 9, 1), D(2024, 9, 30), D(2024, 10, 15)),
    ]


def test_due_days_default_to_30():
    monthly = a_return(frequency="monthly")
    assert due(monthly, D(2024, 3, 1), D(2024, 3, 31)) == [
        ("2024-01", D(2024, 1, 1), D(2024, 1, 31), D(2024, 3, 1)),
        ("2024-02", D(2024, 2, 1), D(2024, 2, 29), D(2024, 3, 30)),
    ]
    # 0 is a due rule of its own, not a missing one
    same_day = a_return(frequency="monthly", due_days_after_period_end="0")
    assert due(same_day, D(2024, 3, 1), D(2024, 3, 31)) == [
        ("2024-03", D(2024, 3, 1), D(2024, 3, 31), D(2024, 3, 31))
    ]


def test_quarterly_calendar_quarters():
    assert cal.period_containing("quarterly", "calendar", D(2024, 8, 20)) == cal.Period(
        "2024-Q3", D(2024, 7, 1), D(2024, 9, 30)
    )
    quarterly = a_return(frequency="quarterly", period_basis="calendar")
    assert due(quarterly, D(2024, 1, 1), D(2024, 12, 31)) == [
        ("2023-Q4", D(2023, 10, 1), D(2023, 12, 31), D(2024, 1, 30)),
        ("2024-Q1", D(2024, 1, 1), D(2024, 3, 31), D(2024, 4, 30)),
        ("2024-Q2", D(2024, 4, 1), D(2024, 6, 30), D(2024, 7, 30)),
        ("2024-Q3", D(2024, 7, 1), D(2024, 9, 30), D(2024, 10, 30)),
    ]


def test_quarterly_financial_quarters():
    quarterly = a_return(
        frequency="quarterly", period_basis="financial", due_days_after_period_end=45
    )
    assert due(quarterly, D(2024, 4, 1), D(2025, 3, 31)) == [
        ("2023-24 Q4", D(2024, 1, 1), D(2024, 3, 31), D(2024, 5, 15)),
        ("2024-25 Q1", D(2024, 4, 1), D(2024, 6, 30), D(2024, 8, 14)),
        ("2024-25 Q2", D(2024, 7, 1), D(2024, 9, 30), D(2024, 11, 14)),
        ("2024-25 Q3", D(2024, 10, 1), D(2024, 12, 31), D(2025, 2, 14)),
    ]


def test_annual_financial_calendar_and_academic_years():
    assert cal.period_containing("annual", "financial", D(2025, 2, 1)) == cal.Period(
        "2024-25", D(2024, 4, 1), D(2025, 3, 31)
    )
    assert (
        cal.period_containing("annual", "financial", D(2024, 4, 1)).label == "2024-25"
    )
    assert (
        cal.period_containing("annual", "financial", D(2024, 3, 31)).label == "2023-24"
    )
    assert (
        cal.period_containing("annual", "financial", D(1999, 6, 1)).label == "1999-00"
    )
    assert cal.period_containing("annual", "calendar", D(2024, 7, 15)) == cal.Period(
        "2024", D(2024, 1, 1), D(2024, 12, 31)
    )
    assert cal.period_containing("annual", "academic", D(2025, 7, 31)) == cal.Period(
        "2024-25", D(2024, 8, 1), D(2025, 7, 31)
    )
    annual = a_return(
        frequency="annual", period_basis="financial", due_days_after_period_end=92
    )
    assert due(annual, D(2025, 1, 1), D(2025, 12, 31)) == [
        ("2024-25", D(2024, 4, 1), D(2025, 3, 31), D(2025, 7, 1))
    ]


def test_a_return_without_a_basis_follows_the_financial_year():
    assert due(a_return(frequency="annual"), D(2025, 1, 1), D(2025, 12, 31)) == [
        ("2024-25", D(2024, 4, 1), D(2025, 3, 31), D(2025, 4, 30))
    ]
    assert cal.period_containing("quarterly", None, D(2024, 4, 1)).label == "2024-25 Q1"


def test_weekly_iso_weeks_and_daily():
    assert cal.period_containing("weekly", None, D(2024, 2, 14)) == cal.Period(
        "2024-W07", D(2024, 2, 12), D(2024, 2, 18)
    )
    # the ISO year of the week, not the calendar year of the day
    assert cal.period_containing("weekly", None, D(2024, 12, 31)) == cal.Period(
        "2025-W01", D(2024, 12, 30), D(2025, 1, 5)
    )
    weekly = a_return(frequency="weekly", due_days_after_period_end=3)
    assert due(weekly, D(2025, 1, 6), D(2025, 1, 12)) == [
        ("2025-W01", D(2024, 12, 30), D(2025, 1, 5), D(2025, 1, 8))
    ]
    daily = a_return(frequency="daily", due_days_after_period_end=1)
    assert due(daily, D(2024, 12, 31), D(2025, 1, 1)) == [
        ("2024-12-30", D(2024, 12, 30), D(2024, 12, 30), D(2024, 12, 31)),
        ("2024-12-31", D(2024, 12, 31), D(2024, 12, 31), D(2025, 1, 1)),
    ]


def test_across_a_year_boundary():
    # Q4 of calendar 2024 is due in January 2025; financial Q4 runs January to March
    quarterly = a_return(frequency="quarterly", period_basis="calendar")
    assert due(quarterly, D(2025, 1, 1), D(2025, 1, 31)) == [
        ("2024-Q4", D(2024, 10, 1), D(2024, 12, 31), D(2025, 1, 30))
    ]
    financial = a_return(frequency="quarterly", period_basis="financial")
    assert due(financial, D(2025, 4, 1), D(2025, 4, 30)) == [
        ("2024-25 Q4", D(2025, 1, 1), D(2025, 3, 31), D(2025, 4, 30))
    ]
    monthly = a_return(frequency="monthly", due_days_after_period_end=10)
    assert [d[0] for d in due(monthly, D(2024, 12, 1), D(2025, 1, 31))] == [
        "2024-11",
        "2024-12",
    ]


@pytest.mark.parametrize(
    "frequency,basis",
    [("annual", b) for b in ("financial", "calendar", "academic")]
    + [("quarterly", b) for b in ("financial", "calendar", "academic")]
    + [("monthly", None), ("weekly", None), ("daily", None)],
)
def test_periods_follow_each_other_without_gaps(frequency, basis):
    day = D(2023, 1, 1)
    periods = list(
        itertools.takewhile(
            lambda p: p.start < D(2027, 1, 1), cal.periods_from(frequency, basis, day)
        )
    )
    assert periods[0].start <= day <= periods[0].end
    for before, after in zip(periods, periods[1:], strict=False):
        assert after.start == before.end + dt.timedelta(days=1)
        assert after.label != before.label
    for probe in (D(2024, 2, 29), D(2025, 12, 31), D(2026, 1, 1)):
        period = cal.period_containing(frequency, basis, probe)
        assert period.start <= probe <= period.end and period in periods


def test_collection_start_is_honoured():
    monthly = a_return(frequency="monthly", collection_start="2024-08-15")
    # July and August start before the first period collected
    assert [d[0] for d in due(monthly, D(2024, 8, 1), D(2024, 11, 30))] == [
        "2024-09",
        "2024-10",
    ]
    # a period starting on the day is collected
    on_the_day = a_return(
        frequency="quarterly", period_basis="financial", collection_start="2025-04-01"
    )
    assert [d[0] for d in due(on_the_day, D(2025, 1, 1), D(2025, 12, 31))] == [
        "2025-26 Q1",
        "2025-26 Q2",
    ]
    # a first period in the future: nothing due yet
    later = a_return(frequency="annual", collection_start="2030-04-01")
    assert due(later, D(2025, 1, 1), D(2029, 12, 31)) == []


def test_ad_hoc_returns_have_no_instances():
    assert cal.period_containing("ad_hoc", None, D(2025, 1, 1)) is None
    assert due(a_return(frequency="ad_hoc"), D(2020, 1, 1), D(2030, 1, 1)) == []


@pytest.mark.parametrize(
    "status", ["proposed", "approved", "retired", "rejected", None]
)
def test_only_active_returns_and_those_under_review_have_instances(status):
    assert (
        due(
            a_return(frequency="monthly", lifecycle_status=status),
            D(2025, 1, 1),
            D(2025, 12, 31),
        )
        == []
    )
    assert (
        len(
            due(
                a_return(frequency="monthly", lifecycle_status="under_review"),
                D(2025, 1, 1),
                D(2025, 12, 31),
            )
        )
        == 12
    )


def test_a_window_is_inclusive_at_both_ends():
    monthly = a_return(frequency="monthly")  # January is due on 2 March 2025
    assert [d[0] for d in due(monthly, D(2025, 3, 2), D(2025, 3, 2))] == ["2025-01"]
    assert due(monthly, D(2025, 3, 3), D(2025, 3, 29)) == []


def test_clusters_and_burden():
    returns = [
        a_return(
            name="waste",
            frequency="monthly",
            due_days_after_period_end=15,
            burden_hours="2.5",
        ),
        a_return(
            name="hl1", frequency="quarterly", period_basis="calendar", burden_hours=4
        ),
        a_return(name="ctas", frequency="annual", period_basis="calendar"),
    ]
    found = cal.calendar(returns, D(2024, 12, 1), D(2025, 2, 28))
    assert [(i.return_name, i.period.label, i.due_date) for i in found] == [
        ("waste", "2024-11", D(2024, 12, 15)),
        ("waste", "2024-12", D(2025, 1, 15)),
        ("ctas", "2024", D(2025, 1, 30)),
        ("hl1", "2024-Q4", D(2025, 1, 30)),
        ("waste", "2025-01", D(2025, 2, 15)),
    ]
    assert cal.clusters(found) == [
        {"week": "2024-W50", "week_start": "2024-12-09", "due": 1},
        {"week": "2025-W03", "week_start": "2025-01-13", "due": 1},
        {"week": "2025-W05", "week_start": "2025-01-27", "due": 2},
        {"week": "2025-W07", "week_start": "2025-02-10", "due": 1},
    ]
    assert cal.burden(found) == 3 * 2.5 + 4


def test_ics_text_escapes_and_lines_fold_at_75_octets():
    assert (
        ics_text("Waste, recycling; and\nmore \\ less")
        == "Waste\\, recycling\\; and\\nmore \\\\ less"
    )
    line = "SUMMARY:" + "Gàidhlig " * 20
    folded = ics_fold(line)
    parts = folded.split("\r\n")
    assert len(parts) > 1
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join([parts[0], *(p[1:] for p in parts[1:])]) == line
    assert ics_fold("SHORT:x") == "SHORT:x"


# -- Through HTTP ------------------------------------------------------------------

integration = pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")

WINDOW = {"start": "2024-12-01", "end": "2025-02-28"}
LONG_TITLE = (
    "Waste, recycling; and composting tonnages: "
    "the monthly WasteDataFlow return of every local authority"
)


@pytest.fixture
def register():
    """An agency's returns, a council and one of its staff with an API token."""
    agency = factories.Organization(
        org_type="agency", title="Scottish Government Statistics"
    )
    staff = factories.UserWithToken()
    council = factories.Organization(
        org_type="council",
        gss_code="S12000047",
        title="Fife Council",
        users=[{"name": staff["name"], "capacity": "member"}],
    )

    def data_return(name, title, frequency, lifecycle_status="active", **fields):
        return factories.Dataset(
            type="data-return",
            name=name,
            title=title,
            owner_org=agency["id"],
            frequency=frequency,
            statutory="no",
            notes=f"Purpose of {title}",
            lifecycle_status=lifecycle_status,
            **fields,
        )

    returns = {
        "waste": data_return(
            "cal-waste-monthly",
            LONG_TITLE,
            "monthly",
            due_days_after_period_end=15,
            burden_hours=2.5,
        ),
        "hl1": data_return(
            "cal-hl1-homelessness",
            "Homelessness (HL1)",
            "quarterly",
            period_basis="calendar",
            burden_hours=4,
        ),
        "fin": data_return(
            "cal-revenue-outturn-quarterly",
            "Revenue outturn",
            "quarterly",
            period_basis="financial",
            due_days_after_period_end=45,
        ),
        "ctas": data_return(
            "cal-ctas-annual",
            "Council tax collection",
            "annual",
            period_basis="calendar",
        ),
    }
    # none of these is asked of councils
    data_return(
        "proposed-return", "A proposed return", "monthly", lifecycle_status="proposed"
    )
    data_return(
        "retired-return", "A retired return", "monthly", lifecycle_status="retired"
    )
    data_return("ad-hoc-return", "An ad hoc return", "ad_hoc")
    data_return("private-return", "A private return", "monthly", private=True)
    return {
        "agency": agency,
        "council": council,
        "staff": staff,
        "returns": returns,
        "headers": {"Authorization": staff["token"]},
    }


def calendar_show(app, status=200, headers=None, **params):
    return app.get(
        "/api/3/action/lgdp_calendar_show",
        query_string=params,
        headers=headers or {},
        status=status,
    ).json


# The test database and search index are shared with other suites that may run
# at the same time: assertions look at this register's returns (its agency),
# and totals are checked as ours plus whatever else is in the index.


def ours(rows, register):
    return [r for r in rows if r["owner_org"] == register["agency"]["id"]]


def others(rows, register):
    return [r for r in rows if r["owner_org"] != register["agency"]["id"]]


@integration
def test_calendar_show_lists_the_instances_due_in_a_window(app, register):
    council = register["council"]
    result = calendar_show(
        app, headers=register["headers"], organization=council["name"], **WINDOW
    )["result"]

    assert result["organization"] == {
        "id": council["id"],
        "name": council["name"],
        "title": "Fife Council",
        "gss_code": "S12000047",
    }
    assert (result["start"], result["end"]) == ("2024-12-01", "2025-02-28")
    instances = result["instances"]
    assert [i["due_date"] for i in instances] == sorted(
        i["due_date"] for i in instances
    )
    got = [
        (
            i["return_name"],
            i["period"],
            i["period_start"],
            i["period_end"],
            i["due_date"],
        )
        for i in ours(instances, register)
    ]
    assert got == [
        ("cal-waste-monthly", "2024-11", "2024-11-01", "2024-11-30", "2024-12-15"),
        ("cal-waste-monthly", "2024-12", "2024-12-01", "2024-12-31", "2025-01-15"),
        ("cal-ctas-annual", "2024", "2024-01-01", "2024-12-31", "2025-01-30"),
        ("cal-hl1-homelessness", "2024-Q4", "2024-10-01", "2024-12-31", "2025-01-30"),
        (
            "cal-revenue-outturn-quarterly",
            "2024-25 Q3",
            "2024-10-01",
            "2024-12-31",
            "2025-02-14",
        ),
        ("cal-waste-monthly", "2025-01", "2025-01-01", "2025-01-31", "2025-02-15"),
    ]
    first = ours(instances, register)[0]
    assert first["return_title"] == LONG_TITLE
    assert first["owner_org_title"] == "Scottish Government Statistics"
    assert first["frequency"] == "monthly"

    expected = {"2024-W50": 1, "2025-W03": 1, "2025-W05": 2, "2025-W07": 2}
    for other in others(instances, register):
        week = cal.iso_week(D.fromisoformat(other["due_date"]))
        expected[week] = expected.get(week, 0) + 1
    assert {c["week"]: c["due"] for c in result["clusters"]} == expected
    assert [c["week_start"] for c in result["clusters"]] == sorted(
        c["week_start"] for c in result["clusters"]
    )
    assert {
        "week": "2025-W05",
        "week_start": "2025-01-27",
        "due": expected["2025-W05"],
    } in result["clusters"]
    assert result["burden_hours"] == pytest.approx(
        3 * 2.5 + 4 + sum(i["burden_hours"] or 0 for i in others(instances, register))
    )


@integration
def test_the_calendar_is_public_and_the_same_for_the_sector(app, register):
    mine = calendar_show(
        app,
        headers=register["headers"],
        organization=register["council"]["name"],
        **WINDOW,
    )
    anonymous = calendar_show(app, **WINDOW)["result"]
    assert anonymous["organization"] is None
    assert len(ours(anonymous["instances"], register)) == 6
    assert ours(anonymous["instances"], register) == ours(
        mine["result"]["instances"], register
    )
    # none of the proposed, retired, ad hoc or private returns
    assert {i["return_name"] for i in ours(anonymous["instances"], register)} == {
        "cal-waste-monthly",
        "cal-hl1-homelessness",
        "cal-revenue-outturn-quarterly",
        "cal-ctas-annual",
    }
    # the default window is the next year
    today = dt.date.today()
    default = calendar_show(app)["result"]
    assert (default["start"], default["end"]) == (
        today.isoformat(),
        (today + dt.timedelta(days=365)).isoformat(),
    )
    assert {i["return_name"] for i in ours(default["instances"], register)} == {
        "cal-waste-monthly",
        "cal-hl1-homelessness",
        "cal-revenue-outturn-quarterly",
        "cal-ctas-annual",
    }
    assert all(
        today.isoformat() <= i["due_date"] <= default["end"]
        for i in default["instances"]
    )


@integration
def test_calendar_show_refuses_bad_input(app, register):
    bad = calendar_show(app, status=409, start="31/01/2025")["error"]
    assert "YYYY-MM-DD" in bad["start"][0]
    assert (
        "end"
        in calendar_show(app, status=409, start="2025-02-01", end="2025-01-01")["error"]
    )
    assert (
        "end"
        in calendar_show(app, status=409, start="2025-01-01", end="2035-01-01")["error"]
    )
    assert (
        calendar_show(app, status=404, organization="no-such-council")["success"]
        is False
    )
    not_council = calendar_show(
        app, status=409, organization=register["agency"]["name"]
    )["error"]
    assert "not a council" in not_council["organization"][0]


@integration
def test_burden_show_counts_a_year_per_council(app, register):
    result = app.get(
        "/api/3/action/lgdp_burden_show",
        query_string={"year": 2025, "organization": register["council"]["name"]},
        headers=register["headers"],
    ).json["result"]
    assert result["year"] == 2025
    assert result["organization"]["name"] == register["council"]["name"]
    rows = {
        r["return_name"]: (
            r["instances"],
            r["burden_hours_per_instance"],
            r["burden_hours"],
        )
        for r in ours(result["returns"], register)
    }
    assert rows == {
        "cal-waste-monthly": (12, 2.5, 30.0),  # December 2024 to November 2025
        "cal-hl1-homelessness": (4, 4.0, 16.0),  # 2024-Q4 to 2025-Q3
        "cal-revenue-outturn-quarterly": (4, None, 0),  # 2024-25 Q3 to 2025-26 Q2
        "cal-ctas-annual": (1, None, 0),  # 2024
    }
    hours = [r["burden_hours"] for r in result["returns"]]
    assert hours == sorted(hours, reverse=True)
    rest = others(result["returns"], register)
    assert result["instances"] == 21 + sum(r["instances"] for r in rest)
    assert result["burden_hours"] == pytest.approx(
        46.0 + sum(r["burden_hours"] for r in rest)
    )
    assert app.get(
        "/api/3/action/lgdp_burden_show", query_string={"year": "next"}, status=409
    ).json["error"]["year"]


@integration
def test_the_ics_feed_has_one_all_day_event_per_instance(app, register):
    council = register["council"]
    resp = app.get(f"/calendar/{council['name']}.ics", query_string=WINDOW, status=200)
    assert resp.headers["Content-Type"].startswith("text/calendar")
    body = resp.data
    lines = body.split(b"\r\n")
    assert lines[-1] == b"" and b"\n" not in body.replace(b"\r\n", b"")
    assert all(len(line) <= 75 for line in lines)
    assert any(line.startswith(b" ") for line in lines)  # the long title was folded

    parsed = Calendar.from_ical(body)
    assert str(parsed["VERSION"]) == "2.0" and parsed["PRODID"]
    every = parsed.walk("VEVENT")
    assert len(every) == len(
        calendar_show(app, organization=council["name"], **WINDOW)["result"][
            "instances"
        ]
    )
    events = [e for e in every if "/data-return/cal-" in str(e["URL"])]
    assert [e.decoded("DTSTART") for e in events] == [
        D(2024, 12, 15),
        D(2025, 1, 15),
        D(2025, 1, 30),
        D(2025, 1, 30),
        D(2025, 2, 14),
        D(2025, 2, 15),
    ]
    assert all(
        e.decoded("DTEND") == e.decoded("DTSTART") + dt.timedelta(days=1)
        for e in events
    )
    assert all(e.get("DTSTAMP") for e in events)
    first = events[0]
    assert str(first["SUMMARY"]) == f"Due: {LONG_TITLE} 2024-11"
    assert "2024-11" in str(
        first["DESCRIPTION"]
    ) and "/data-return/cal-waste-monthly" in str(first["DESCRIPTION"])
    uids = [str(e["UID"]) for e in events]
    assert len(set(uids)) == 6

    # the same return, period and council keep their UID when the window moves
    later = Calendar.from_ical(
        app.get(
            f"/calendar/{council['name']}.ics",
            query_string={"start": "2025-01-15", "end": "2025-01-31"},
            status=200,
        ).data
    )
    assert [
        str(e["UID"])
        for e in later.walk("VEVENT")
        if "/data-return/cal-" in str(e["URL"])
    ] == uids[1:4]
    # another council gets other UIDs for the same instances
    other = factories.Organization(org_type="council", gss_code="S12000049")
    theirs = Calendar.from_ical(
        app.get(f"/calendar/{other['name']}.ics", query_string=WINDOW, status=200).data
    )
    assert not {str(e["UID"]) for e in theirs.walk("VEVENT")} & set(uids)


@integration
def test_calendar_pages_render(app, register):
    council = register["council"]
    page = app.get("/calendar", query_string=WINDOW, status=200).body
    assert "Collection calendar" in page
    assert "Homelessness (HL1)" in page and "2024-25 Q3" in page
    assert "2025-W05" in page  # a deadline cluster
    assert "A proposed return" not in page
    assert f'href="/calendar/{council["name"]}"' in page  # each council's calendar

    mine = app.get(
        f"/calendar/{council['name']}", headers=register["headers"], status=200
    ).body
    assert "Fife Council" in mine
    assert f"/calendar/{council['name']}.ics" in mine
    assert "Revenue outturn" in mine  # the default window: the next twelve months


@integration
def test_calendar_pages_answer_bad_requests(app, register):
    assert (
        "YYYY-MM-DD"
        in app.get("/calendar", query_string={"start": "tomorrow"}, status=400).body
    )
    app.get("/calendar/no-such-council", status=404)
    app.get("/calendar/no-such-council.ics", status=404)
    app.get(f"/calendar/{register['agency']['name']}.ics", status=400)
