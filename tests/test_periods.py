"""A submission exists only for a period of its return's calendar, from the
return's first period to the last open one (the last that has ended, or the
one under way when the return allows early submission); anything else is
refused with a message naming the open periods, and creates nothing."""
from __future__ import annotations

import datetime as dt

import pytest

from ckan.tests.helpers import call_action

from ckanext.lgdp.register import calendar as cal
from tests.conftest import RETURN_NAME, api, csv_bytes, ctas_rows, make_world, push, transition

TODAY = dt.date(2026, 12, 2)


def a_return(**fields):
    return {"id": "r1", "name": "a-return", "title": "A return", "lifecycle_status": "active",
            "frequency": "annual", "period_basis": "financial", **fields}


def period(frequency: str, label: str, basis: str | None = "financial") -> cal.Period:
    found = cal.period_by_label(frequency, basis, label)
    assert found is not None
    return found


def test_the_open_periods_run_from_the_first_to_the_last_ended():
    ret = a_return(collection_start="2022-04-01")
    assert cal.first_period(ret).label == "2022-23"
    assert cal.last_open_period(ret, TODAY).label == "2025-26"
    for label in ("2022-23", "2024-25", "2025-26"):
        assert cal.period_refusal(ret, period("annual", label), TODAY) is None
    assert cal.period_refusal(ret, period("annual", "2021-22"), TODAY) == (
        "2021-22 is before A return began (its first period is 2022-23): "
        "submissions of A return are open for 2022-23 to 2025-26")
    assert cal.period_refusal(ret, period("annual", "2026-27"), TODAY) == (
        "2026-27 has not ended yet (it ends on 2027-03-31): submissions of A return are open for 2022-23 to 2025-26")
    # a period ends at the end of its last day
    assert cal.period_refusal(ret, period("annual", "2025-26"), dt.date(2026, 3, 31)) is not None
    assert cal.period_refusal(ret, period("annual", "2025-26"), dt.date(2026, 4, 1)) is None


def test_early_submission_opens_the_period_under_way_only():
    ret = a_return(collection_start="2022-04-01", early_submission="yes")
    assert cal.period_refusal(ret, period("annual", "2026-27"), TODAY) is None
    assert "2027-28 has not ended yet" in cal.period_refusal(ret, period("annual", "2027-28"), TODAY)
    assert "open for 2022-23 to 2026-27" in cal.period_refusal(ret, period("annual", "2027-28"), TODAY)


def test_other_frequencies_and_a_return_not_yet_begun():
    monthly = a_return(frequency="monthly", collection_start="2024-08-15")  # the first whole month
    assert cal.first_period(monthly).label == "2024-09"
    assert cal.period_refusal(monthly, period("monthly", "2024-08"), TODAY).startswith("2024-08 is before")
    assert cal.period_refusal(monthly, period("monthly", "2026-11"), TODAY) is None
    assert cal.period_refusal(monthly, period("monthly", "2026-12"), TODAY).startswith("2026-12 has not ended yet")
    quarterly = a_return(frequency="quarterly", period_basis="calendar")  # no first period: any ended one
    assert cal.period_refusal(quarterly, period("quarterly", "1999-Q1", "calendar"), TODAY) is None
    assert "open for periods up to 2026-Q3" in cal.period_refusal(quarterly, period("quarterly", "2026-Q4", "calendar"), TODAY)
    later = a_return(collection_start="2030-04-01")
    assert cal.period_refusal(later, period("annual", "2026-27"), TODAY) == (
        "2026-27 is before A return began (its first period is 2030-31): "
        "no period of A return is open for submission yet")


# ---------------------------------------------------------------- through the API


def _labels(today: dt.date) -> tuple[str, str, str]:
    """The last ended, the current and the next financial year."""
    current = cal.period_containing("annual", "financial", today)
    last = cal.period_containing("annual", "financial", current.start - dt.timedelta(days=1))
    following = cal.period_containing("annual", "financial", current.end + dt.timedelta(days=1))
    return last.label, current.label, following.label


def _table(app, who):
    res = api(app, "package_show", headers=who["headers"], id=f"{RETURN_NAME}--all-councils")["result"]["resources"][0]
    return api(app, "datastore_search", headers=who["headers"], resource_id=res["id"], sort="period")["result"]["records"]


def _submissions(who) -> list[str]:
    found = call_action("package_search", context={"user": who["name"], "ignore_auth": False},
                        fq="dataset_type:submission", include_private=True, rows=100)
    return sorted(p["period"] for p in found["results"])


@pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")
def test_periods_outside_the_calendar_are_refused_and_create_nothing(app, live_worker, run_worker):
    world = make_world()
    people = world["people"]
    sysadmin = people["sysadmin"]
    api(app, "package_patch", headers=sysadmin["headers"], id=RETURN_NAME, collection_start="2022-04-01")
    assert api(app, "package_show", id=RETURN_NAME)["result"]["early_submission"] == "no"
    last, current, following = _labels(dt.date.today())
    open_now = f"submissions of Council Tax Collection are open for 2022-23 to {last}"

    # an accepted year, to show that nothing refused touches it
    sub = push(app, people["a_editor"], csv_bytes(ctas_rows(period="2022-23")), period="2022-23", wait="true")["result"]["submission"]
    transition(app, people["a_admin"], sub["name"], "sign_off")
    transition(app, people["a_editor"], sub["name"], "submit")
    transition(app, people["x_editor"], sub["name"], "accept")
    run_worker("default")
    accepted = _table(app, people["x_editor"])
    assert [r["period"] for r in accepted] == ["2022-23"]

    cases = [
        (current, f"{current} has not ended yet"),
        (following, f"{following} has not ended yet"),
        ("2021-22", "2021-22 is before Council Tax Collection began (its first period is 2022-23)"),
        ("2003-04", "2003-04 is before Council Tax Collection began"),
    ]
    for label, message in cases:
        refused = api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"], status=409,
                      data_return=RETURN_NAME, council="aberdeen-city", period=label)["error"]
        assert refused["period"][0].startswith(message) and refused["period"][0].endswith(open_now), refused
        pushed = push(app, people["a_editor"], csv_bytes(ctas_rows(period=label)), period=label, status=409)["error"]
        assert pushed["period"][0] == refused["period"][0]
        assert _submissions(people["a_editor"]) == ["2022-23"]
        assert _table(app, people["x_editor"]) == accepted

    # an open year is fine, by either action
    api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"], data_return=RETURN_NAME,
        council="aberdeen-city", period=last)
    assert _submissions(people["a_editor"]) == sorted(["2022-23", last])

    # the return allows early submission: the year under way opens, not the next
    api(app, "package_patch", headers=people["x_editor"]["headers"], id=RETURN_NAME, early_submission="yes")
    api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"], data_return=RETURN_NAME,
        council="aberdeen-city", period=current)
    refused = api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"], status=409,
                  data_return=RETURN_NAME, council="aberdeen-city", period=following)["error"]
    assert refused["period"] == [f"{following} has not ended yet (it ends on "
                                 f"{cal.period_by_label('annual', 'financial', following).end.isoformat()}): "
                                 f"submissions of Council Tax Collection are open for 2022-23 to {current}"]
    assert _table(app, people["x_editor"]) == accepted

    # the collection calendar's expected submissions stop at the last open period too
    until = (dt.date.today() + dt.timedelta(days=3 * 366)).isoformat()
    api(app, "lgdp_submission_expect", headers=people["coordinator"]["headers"], since="2019-01-01", until=until)
    periods = _submissions(people["a_editor"])
    assert periods[0] == "2022-23" and periods[-1] == current and following not in periods
