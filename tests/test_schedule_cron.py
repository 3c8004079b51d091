"""The scheduler's cron strings, read as crontab reads them (pure Python:
`.venv/bin/python -m pytest -p no:ckan -o addopts="" tests/test_schedule_cron.py`)."""
from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from ckanext.lgdp.ops.scheduler import CronError, parse_cron

LONDON = ZoneInfo("Europe/London")
# a Wednesday
NOW = datetime.datetime(2026, 12, 2, 5, 0, 1, tzinfo=LONDON)


def _fires(expr: str, n: int, now: datetime.datetime = NOW) -> list[str]:
    trigger = parse_cron(expr, LONDON)
    out = []
    for _ in range(n):
        when = trigger.get_next_fire_time(None, now)
        out.append(when.strftime("%a %d %H:%M:%S"))
        now = when + datetime.timedelta(seconds=1)
    return out


def test_five_fields_are_minute_hour_day_month_weekday():
    assert _fires("0 7 * * *", 2) == ["Wed 02 07:00:00", "Thu 03 07:00:00"]
    assert _fires("*/5 * * * *", 2) == ["Wed 02 05:05:00", "Wed 02 05:10:00"]


def test_six_fields_start_with_the_seconds():
    assert _fires("*/2 * * * * *", 3) == ["Wed 02 05:00:02", "Wed 02 05:00:04", "Wed 02 05:00:06"]


@pytest.mark.parametrize(("weekday", "expected"), [
    ("1", ["Mon 07 09:00:00", "Mon 14 09:00:00"]),  # crontab's 1 is Monday, not APScheduler's Tuesday
    ("0", ["Sun 06 09:00:00", "Sun 13 09:00:00"]),
    ("7", ["Sun 06 09:00:00", "Sun 13 09:00:00"]),
    ("1-5", ["Wed 02 09:00:00", "Thu 03 09:00:00", "Fri 04 09:00:00", "Mon 07 09:00:00"]),
    ("5-7", ["Fri 04 09:00:00", "Sat 05 09:00:00", "Sun 06 09:00:00", "Fri 11 09:00:00"]),
    ("*/2", ["Thu 03 09:00:00", "Sat 05 09:00:00", "Sun 06 09:00:00", "Tue 08 09:00:00"]),  # Sun, Tue, Thu, Sat
    ("mon,fri", ["Fri 04 09:00:00", "Mon 07 09:00:00"]),
])
def test_weekdays_are_counted_from_sunday_as_in_crontab(weekday, expected):
    assert _fires(f"0 9 * * {weekday}", len(expected)) == expected


@pytest.mark.parametrize(("expr", "says"), [
    ("* * * *", "has 4 fields"),
    ("* * * * * * *", "has 7 fields"),
    ("61 * * * *", "61"),
    ("0 7 * * 8", "is not a weekday"),
    ("0 7 * * 5-1", "runs forwards"),
    ("0 7 * * */0", "a step"),
    ("every day", "has 2 fields"),
])
def test_a_cron_string_that_cannot_be_read_says_why(expr, says):
    with pytest.raises(CronError) as e:
        parse_cron(expr, LONDON)
    assert says in str(e.value)
