"""Demo submissions: a few years of Council Tax Collection returns from every
council, through the real actions (upload, validation, queries, sign-off,
submission, acceptance or return), with planted problems so a newcomer sees
every state: files with errors, queries explained and not, late and overdue
submissions, a return for correction and its resubmission, and outliers for
the cross-council checks.

History is recorded with the dates it happened (``effective_date``, a
sysadmin's option for history migrated from before the platform).
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import io
from typing import Any, Callable

from werkzeug.datastructures import FileStorage

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.model import Upload
from ckanext.lgdp.register import calendar as cal
from ckanext.lgdp.repository import reference, tracking
from ckanext.lgdp.repository.checks import run_qa
from ckanext.lgdp.submissions import jobs
from ckanext.lgdp.submissions.actions import CHANNEL_KEY, DEFER_KEY

RETURN = "council-tax-collection"
YEARS = ("2022-23", "2023-24", "2024-25", "2025-26")
HEADER = [
    "gss_code", "financial_year", "chargeable_dwellings", "net_collectable_gbp",
    "collected_by_year_end_gbp", "in_year_collection_rate_pct",
]


def _unit(*parts: str) -> float:
    """A stable pseudo-random number in [0, 1) for these parts."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def figures(gss: str, year_index: int) -> list[str]:
    """One council's plausible figures for a year: about 440-520 chargeable
    dwellings per 1,000 people (NRS mid-2022), growing 0.7% a year."""
    found = reference.population_for(gss, 2022)
    people = found[0] if found else 100_000
    dwellings0 = int(people * (0.44 + 0.08 * _unit(gss, "size")))
    dwellings = int(dwellings0 * (1.007 ** year_index))
    band_d = 1_300 + 250 * _unit(gss, "band")
    net = int(dwellings * band_d * (1.045 ** year_index))
    rate = 94.0 + 3.5 * _unit(gss, "rate", str(year_index))
    collected = int(net * rate / 100)
    return [gss, YEARS[year_index], str(dwellings), str(net), str(collected), f"{collected / net * 100:.1f}"]


def _file(rows: list[list[str]], name: str) -> FileStorage:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return FileStorage(io.BytesIO(buf.getvalue().encode("utf-8")), filename=name, content_type="text/csv")


# What happens to some councils (by slug); everyone else submits on time and
# is accepted. Per year index.
PLAN: dict[int, dict[str, str]] = {
    0: {"fife": "late"},
    1: {"highland": "query-explained", "angus": "invalid-then-valid", "moray": "late"},
    2: {"glasgow-city": "returned-resubmitted", "falkirk": "late", "inverclyde": "outlier-rate",
        "east-lothian": "invalid-then-valid", "stirling": "query-explained"},
    3: {"orkney-islands": "expected", "shetland-islands": "expected", "na-h-eileanan-siar": "expected",
        "argyll-and-bute": "invalid", "west-dunbartonshire": "invalid",
        "south-ayrshire": "query-unexplained", "midlothian": "signed-off", "perth-and-kinross": "submitted",
        "dundee-city": "late", "renfrewshire": "outlier-jump-explained"},
}


def _upload(context: dict[str, Any], sub_id: str, rows: list[list[str]], name: str) -> Upload:
    inner = {**context, DEFER_KEY: True, CHANNEL_KEY: "api"}
    resource = tk.get_action("resource_create")(inner, {"package_id": sub_id, "upload": _file(rows, name)})
    model.repo.commit()
    jobs.validate_upload(resource["id"])  # here and now, not in the worker
    model.Session.expire_all()
    return model.Session.get(Upload, resource["id"])


def _step(context: dict[str, Any], sub_id: str, action: str, day: datetime.date, reason: str = "") -> None:
    tk.get_action("lgdp_submission_transition")(
        dict(context), {"id": sub_id, "action": action, "reason": reason, "effective_date": day.isoformat()}
    )


def load(site_user: str, councils: list[dict[str, str]], echo: Callable[[str], None] = print,
         years: int = len(YEARS)) -> dict[str, int]:
    context = {"user": site_user, "ignore_auth": True}
    counts: dict[str, int] = {}
    try:
        ret = tk.get_action("package_show")(dict(context), {"id": RETURN})
    except tk.ObjectNotFound:
        return counts
    due_days = int(ret.get("due_days_after_period_end") or 30)
    for index, year in enumerate(YEARS[:years]):
        period = cal.period_by_label(ret.get("frequency") or "", ret.get("period_basis"), year)
        refused = cal.period_refusal(ret, period, datetime.date.today()) if period is not None else year
        if refused:  # a year still under way (or before the return began): not submitted yet
            echo(f"submissions {year}: skipped ({refused})")
            continue
        period_end = datetime.date(int(year[:4]) + 1, 3, 31)
        due = period_end + datetime.timedelta(days=due_days)
        for council in councils:
            slug, gss = council["slug"], council["gss_code"]
            name = f"{RETURN}--{slug}--{year}"
            if model.Package.get(name) is not None:
                continue
            fate = PLAN.get(index, {}).get(slug, "accepted")
            sub = tk.get_action("lgdp_submission_create")(
                dict(context), {"data_return": RETURN, "council": slug, "period": year})
            counts[fate] = counts.get(fate, 0) + 1
            if fate == "expected":
                continue
            rows = [HEADER, figures(gss, index)]
            filename = f"ctas-{slug}-{year}.csv"
            if fate.startswith("invalid"):
                bad = [HEADER, [*rows[1]]]
                bad[1][0] = "S12000099"  # another council's code
                bad[1][2] = "12,5OO"  # letters in a number
                _upload(context, sub["id"], bad, filename)
                if fate == "invalid":
                    continue
            if fate == "outlier-rate":
                rows[1][4] = str(int(int(rows[1][3]) * 0.81))
                rows[1][5] = "81.0"
            if fate.startswith("query") or fate == "outlier-jump-explained":
                rows[1][2] = str(int(int(rows[1][2]) * 1.9))
            upload = _upload(context, sub["id"], rows, filename)
            if upload.status != "valid":
                echo(f"  {name}: the demo file was {upload.status}: {upload.problem or upload.error_count}")
                continue
            if upload.queries and fate != "query-unexplained":
                for query in upload.queries:
                    tk.get_action("lgdp_submission_explain")(dict(context), {
                        "id": sub["id"], "query_id": query["id"],
                        "explanation": "A revaluation added new dwellings to the list this year; confirmed with the assessor."})
            if fate == "query-unexplained":
                continue
            late = fate == "late"
            offset = 5 + int(_unit(slug, year, "late") * 40) if late else -int(_unit(slug, year, "early") * 20)
            day = due + datetime.timedelta(days=offset)
            _step(context, sub["id"], "sign_off", day - datetime.timedelta(days=1))
            if fate == "signed-off":
                continue
            _step(context, sub["id"], "submit", day)
            if fate == "submitted":
                continue
            if fate == "returned-resubmitted":
                _step(context, sub["id"], "return", day + datetime.timedelta(days=10),
                      reason="Collected by year end includes water charges; resubmit council tax only")
                rows[1][4] = str(int(int(rows[1][4]) * 0.99))
                rows[1][5] = f"{int(rows[1][4]) / int(rows[1][3]) * 100:.1f}"
                upload = _upload(context, sub["id"], rows, f"ctas-{slug}-{year}-corrected.csv")
                for query in upload.queries:
                    tk.get_action("lgdp_submission_explain")(dict(context), {
                        "id": sub["id"], "query_id": query["id"], "explanation": "Corrected as asked."})
                _step(context, sub["id"], "sign_off", day + datetime.timedelta(days=14))
                _step(context, sub["id"], "submit", day + datetime.timedelta(days=15))
            _step(context, sub["id"], "accept", day + datetime.timedelta(days=20))
        echo(f"submissions {year}: done")
    # the central table and its quality flags, and publish it (the demo's open data)

    built = tracking.rebuild(ret["id"])
    flags = run_qa(ret["id"])
    echo(f"consolidated {built['rows']} rows; quality flags: {flags['raised']} new, "
         f"{flags['seen']} found again (raised while loading), {flags['resolved']} resolved")
    if built["rows"]:
        tk.get_action("lgdp_table_publish")(dict(context), {"data_return": RETURN, "published": True})
    return counts
