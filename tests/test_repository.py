"""The central repository: accepted submissions consolidated into one typed
DataStore table per return, replaced on resubmission, read per the access
policy; cross-council quality flags and their workflow."""
from __future__ import annotations

import pytest

from ckan.tests import factories
from ckan.tests.helpers import call_action

from ckanext.lgdp.repository import reference
from tests.conftest import (
    COUNCIL_A_GSS, COUNCIL_B_GSS, api, csv_bytes, ctas_rows, make_world, push, transition,
)

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

TABLE = "council-tax-collection--all-councils"


@pytest.fixture
def world():
    return make_world()


def _accept(app, world, council, period, live=True, **values):
    people = world["people"]
    c = "a" if council == "aberdeen-city" else "b"
    gss = COUNCIL_A_GSS if c == "a" else COUNCIL_B_GSS
    sub = push(app, people[f"{c}_editor"], csv_bytes(ctas_rows(gss, period, **values)), period=period,
               council=council, wait="true")["result"]["submission"]
    for q in api(app, "lgdp_upload_list", headers=people[f"{c}_editor"]["headers"], id=sub["name"])["result"][0]["queries"]:
        api(app, "lgdp_submission_explain", headers=people[f"{c}_editor"]["headers"], id=sub["name"],
            query_id=q["id"], explanation="Checked")
    transition(app, people[f"{c}_admin"], sub["name"], "sign_off")
    transition(app, people[f"{c}_editor"], sub["name"], "submit")
    transition(app, people["x_editor"], sub["name"], "accept")
    return sub["name"]


def _rows(app, who, **filters):
    res = api(app, "package_show", headers=who["headers"], id=TABLE)["result"]["resources"][0]
    return api(app, "datastore_search", headers=who["headers"], resource_id=res["id"], filters=filters,
               sort="council_gss, period")["result"]


def _found(app, who, q):
    res = api(app, "package_show", headers=who["headers"], id=TABLE)["result"]["resources"][0]
    records = api(app, "datastore_search", headers=who["headers"], resource_id=res["id"], q=q)["result"]["records"]
    return {(r["council_gss"], r["period"]) for r in records}


def test_accepted_rows_land_typed_with_rates_and_resubmission_replaces_them(app, world, live_worker, run_worker):
    people = world["people"]
    _accept(app, world, "aberdeen-city", "2022-23", dwellings=118000)
    _accept(app, world, "aberdeenshire", "2022-23", dwellings=121000)
    name = _accept(app, world, "aberdeen-city", "2023-24", dwellings=119000)
    run_worker("default")

    result = _rows(app, people["x_member"])
    assert result["total"] == 3
    types = {f["id"]: f["type"] for f in result["fields"]}
    assert types["chargeable_dwellings"] == "int8" and types["net_collectable_gbp"] == "numeric"
    assert types["council_gss"] == "text" and types["period_start"] == "date"
    row = next(r for r in result["records"] if r["council_gss"] == COUNCIL_A_GSS and r["period"] == "2023-24")
    assert row["council_name"] == "Aberdeen City" and row["chargeable_dwellings"] == 119000
    population, year = reference.population_for(COUNCIL_A_GSS, 2023)
    assert row["population"] == population and row["population_year"] == year
    assert float(row["chargeable_dwellings_per_1000"]) == pytest.approx(119000 * 1000 / population, rel=1e-4)
    # full-text search (q) finds rows by their text values; numbers are found with filters
    assert _found(app, people["x_member"], "Aberdeenshire") == {(COUNCIL_B_GSS, "2022-23")}
    assert _found(app, people["x_member"], "aberdeen city 2023-24") == {(COUNCIL_A_GSS, "2023-24")}
    assert _found(app, people["x_member"], COUNCIL_A_GSS) == {(COUNCIL_A_GSS, "2022-23"), (COUNCIL_A_GSS, "2023-24")}
    assert _found(app, people["x_member"], "119000") == set()

    # returned after acceptance, corrected, accepted again: the row is replaced, nothing else moves
    transition(app, people["r_editor"], name, "return", reason="Dwellings exclude second homes")
    push(app, people["a_editor"], csv_bytes(ctas_rows(period="2023-24", dwellings=119500)), wait="true")
    transition(app, people["a_admin"], name, "sign_off")
    transition(app, people["a_editor"], name, "submit")
    transition(app, people["x_editor"], name, "accept")
    run_worker("default")
    after = _rows(app, people["x_member"])
    assert after["total"] == 3
    values = {(r["council_gss"], r["period"]): r["chargeable_dwellings"] for r in after["records"]}
    assert values == {(COUNCIL_A_GSS, "2022-23"): 118000, (COUNCIL_A_GSS, "2023-24"): 119500,
                      (COUNCIL_B_GSS, "2022-23"): 121000}

    # rebuilding from scratch gives the same table (idempotent)
    api(app, "lgdp_consolidate", headers=people["coordinator"]["headers"], data_return="council-tax-collection")
    def strip(records):
        return [{k: v for k, v in r.items() if k != "_id"} for r in records]

    assert strip(_rows(app, people["x_member"])["records"]) == strip(after["records"])
    assert _found(app, people["x_member"], "Aberdeenshire") == {(COUNCIL_B_GSS, "2022-23")}


def test_the_table_is_read_per_the_policy_until_published(app, world, live_worker, run_worker):
    people = world["people"]
    _accept(app, world, "aberdeen-city", "2023-24")
    run_worker("default")
    res_id = api(app, "package_show", headers=people["sysadmin"]["headers"], id=TABLE)["result"]["resources"][0]["id"]

    def status(who):
        return app.get("/api/3/action/datastore_search", query_string={"resource_id": res_id},
                       headers=who["headers"]).status_code

    assert status(people["x_editor"]) == 200 and status(people["r_editor"]) == 200
    # until it is published the table does not exist for anyone else
    assert status(people["y_editor"]) == 404 and status(people["a_editor"]) == 404
    assert status(people["anonymous"]) == 404
    listed = app.get("/api/3/action/package_list").json["result"]
    assert TABLE not in listed
    api(app, "lgdp_table_publish", headers=people["y_editor"]["headers"], status=403,
        data_return="council-tax-collection", published=True)
    api(app, "lgdp_table_publish", headers=people["x_editor"]["headers"], data_return="council-tax-collection", published=True)
    assert status(people["anonymous"]) == 200 and status(people["y_editor"]) == 200
    assert TABLE in app.get("/api/3/action/package_list").json["result"]
    csv = app.get(f"/datastore/dump/{res_id}")
    assert csv.status_code == 200 and COUNCIL_A_GSS in csv.get_data(as_text=True)


def test_flags_are_explained_by_the_council_and_closed_by_the_agency(app, world, live_worker, run_worker):
    people = world["people"]
    _accept(app, world, "aberdeen-city", "2023-24")
    run_worker("default")
    # Aberdeenshire has sent nothing for 2023-24: a "missing" flag about it
    flags = api(app, "lgdp_qa_flag_list", headers=people["x_member"]["headers"], data_return="council-tax-collection")["result"]
    [missing] = [f for f in flags if f["check"] == "missing"]
    assert missing["council_gss"] == COUNCIL_B_GSS and missing["period"] == "2023-24" and missing["status"] == "open"
    assert "Aberdeenshire" in missing["reason"]

    # each council reads only the flags about itself; an agency that did not ask for the return, none
    assert api(app, "lgdp_qa_flag_list", headers=people["a_editor"]["headers"])["result"] == []
    assert [f["id"] for f in api(app, "lgdp_qa_flag_list", headers=people["b_editor"]["headers"])["result"]] == [missing["id"]]
    assert api(app, "lgdp_qa_flag_list", headers=people["y_editor"]["headers"])["result"] == []
    app.get("/api/3/action/lgdp_qa_flag_list", status=403)

    # a flag the caller may not read answers as one that does not exist
    api(app, "lgdp_qa_flag_explain", headers=people["a_editor"]["headers"], status=404, id=missing["id"], explanation="x")
    explained = api(app, "lgdp_qa_flag_explain", headers=people["b_editor"]["headers"], id=missing["id"],
                    explanation="Our return is with the finance director for sign-off")["result"]
    assert explained["status"] == "explained"
    api(app, "lgdp_qa_flag_close", headers=people["b_admin"]["headers"], status=403, id=missing["id"], note="x")
    api(app, "lgdp_qa_flag_close", headers=people["y_editor"]["headers"], status=404, id=missing["id"], note="x")
    api(app, "lgdp_qa_flag_close", headers=people["x_editor"]["headers"], status=409, id=missing["id"])
    closed = api(app, "lgdp_qa_flag_close", headers=people["x_editor"]["headers"], id=missing["id"],
                 note="Agreed extension to 30 June")["result"]
    assert closed["status"] == "closed" and closed["closed_by"] == people["x_editor"]["name"]

    # the QA pages list them for those who may read them
    page = app.get("/qa/return/council-tax-collection", headers=people["coordinator"]["headers"]).get_data(as_text=True)
    assert "Agreed extension to 30 June" in page
    page = app.get("/qa/council/aberdeenshire", headers=people["b_editor"]["headers"]).get_data(as_text=True)
    assert "Our return is with the finance director" in page


@pytest.mark.usefixtures("clean_queues")
def test_acceptances_of_one_period_share_one_run_of_the_checks(app, world, live_worker, run_worker):
    """On a busy day the checks of a return's period are queued once, not
    once per acceptance; the run that follows sees every acceptance."""
    _accept(app, world, "aberdeen-city", "2023-24")
    _accept(app, world, "aberdeenshire", "2023-24", dwellings=90000)
    titles = [j["title"] for j in call_action("job_list", queues=["default"])]
    assert sum(t.startswith("lgdp consolidate") for t in titles) == 2
    run_worker("default", max_jobs=2)  # the two consolidations
    titles = [j["title"] for j in call_action("job_list", queues=["default"])]
    assert len(titles) == 1 and titles[0].startswith("lgdp qa ") and titles[0].endswith(" 2023-24")
    run_worker("default")
    assert call_action("job_list", queues=["default"]) == []
    # the checks ran over both councils' rows: nobody is missing for 2023-24
    flags = call_action("lgdp_qa_flag_list", data_return="council-tax-collection", period="2023-24")
    assert not [f for f in flags if f["check"] == "missing"]
    assert len(_rows(app, world["people"]["x_member"], period="2023-24")["records"]) == 2
    # and a later acceptance queues them again
    _accept(app, world, "aberdeen-city", "2022-23")
    run_worker("default")
    assert call_action("job_list", queues=["default"]) == []


@pytest.mark.usefixtures("clean_queues")
def test_two_workers_consolidating_one_return_make_one_table(app, world, live_worker):
    """A worker that finds the table being made by another waits for it and
    uses it (no second table dataset or DataStore table)."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import sqlalchemy as sa
    from ckan import model

    from ckanext.lgdp.repository import consolidate
    from tests.conftest import ROOT, standard

    _accept(app, world, "aberdeen-city", "2023-24")
    with consolidate._creating(TABLE):  # another worker is making the table
        worker = subprocess.Popen(
            [str(Path(sys.executable).with_name("ckan")), "-c", str(ROOT / "test.ini"), "lgdp", "worker", "--burst",
             "default"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not model.Session.execute(sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).scalar():
            assert worker.poll() is None and time.monotonic() < deadline, "the worker never waited for the lock"
            model.Session.rollback()
            time.sleep(0.2)
        model.Session.rollback()
        made = consolidate._create_table(TABLE, call_action("package_show", id="council-tax-collection"))
        resource_id = consolidate._create_resource(made, 1, standard("council-tax-collection.v1"))
    assert worker.wait(timeout=120) == 0, worker.stderr.read()[-3000:]
    table = call_action("package_show", id=TABLE)
    assert [r["id"] for r in table["resources"]] == [resource_id]
    assert _rows(app, world["people"]["x_member"])["total"] == 1


def test_checks_over_the_table_folded_by_the_database_give_the_same_flags():
    """The checks after an acceptance read the table folded into one row per
    council-period by PostgreSQL (consolidate.read_council_periods, as
    qa.aggregation says): the same flags as over every row, for every
    period, with several rows per council-period, empty cells and ratios
    that agree or not."""
    import datetime

    import numpy as np
    import pandas as pd

    from ckanext.lgdp.register import standards
    from ckanext.lgdp.repository import consolidate, qa, reference
    from tests.test_qa import COUNCILS, council_tax_table, population_table, standard as std

    schema = std("council-tax-collection")
    pop = population_table()
    table = council_tax_table(pop)
    last = table.period == "2024-25"
    table.loc[last & (table.council_name == "Inverclyde"), "in_year_collection_rate_pct"] = 81.0
    table.loc[last & (table.council_name == "Falkirk"), "chargeable_dwellings"] *= 10
    table = table[~((table.council_name == "Orkney Islands") & (table.period == "2022-23"))].reset_index(drop=True)
    # each council-period in two or three rows: counts and amounts split,
    # the ratio repeated (or not: Fife's 2023-24 rows disagree), a few empty
    rows = []
    rng = np.random.default_rng(3)
    for i, r in table.iterrows():
        parts = 2 + i % 2
        for k in range(parts):
            row = r.to_dict()
            for name, kind in qa.field_kinds(schema).items():
                if name in row and kind["kind"] != "ratio" and row[name] is not None:
                    whole = int(row[name]) if kind["kind"] == "countable" else float(row[name])
                    share = whole // parts if isinstance(whole, int) else round(whole / parts, 2)
                    row[name] = share if k < parts - 1 else whole - share * (parts - 1)
            if r.council_name == "Fife" and r.period == "2023-24" and k == 1:
                row["in_year_collection_rate_pct"] = 40.0
            if k == 1 and rng.random() < 0.1:
                row["net_collectable_gbp"] = None
            rows.append(row)
    folding = qa.aggregation(schema)
    assert folding is not None and "in_year_collection_rate_pct" in folding[1]
    assert qa.aggregation(std("hl2-temporary-accommodation")) is None  # totals read every row

    dataset = factories.Dataset(owner_org=factories.Organization(org_type="agency")["id"])
    fields = consolidate.columns(schema)
    resource_id = call_action("datastore_create", context={"user": factories.Sysadmin()["name"]},
                              resource={"package_id": dataset["id"]}, fields=fields, force=True)["resource_id"]
    # each row with its population and rates, as consolidation stores them
    # (consolidate.enrich, here from the test's own estimates)
    estimates: dict[str, dict[int, int]] = {}
    for p in pop.itertuples():
        estimates.setdefault(p.gss_code, {})[int(p.year)] = int(p.population)
    for row in rows:
        row["period_start"] = datetime.date.fromisoformat(str(row["period_start"]))
        row["population"], row["population_year"] = reference.nearest_estimate(
            estimates[row["council_gss"]], row["period_start"].year)
        for name in standards.countable_fields(schema):
            row[reference.rate_column(name)] = reference.rate_per_1000(row.get(name), row["population"])
    consolidate.replace_all(resource_id, rows, fields)

    def rounded(value):  # the database adds numeric amounts exactly, pandas in floating point
        if isinstance(value, float):
            return float(f"{value:.9g}")
        if isinstance(value, dict):
            return {k: rounded(v) for k, v in value.items()}
        return value

    def checks(frame, period):
        frame["period_start"] = frame["period_start"].astype(str)
        return [rounded(f.as_dict())
                for f in qa.run_checks(frame, schema, period=period, councils=COUNCILS, population=pop)]

    whole = consolidate.read_council_periods(resource_id, *folding)
    fife = whole[(whole.council_name == "Fife") & (whole.period == "2023-24")].iloc[0]
    assert pd.isna(fife.in_year_collection_rate_pct)  # its rows disagree: not compared
    seen = set()
    for period in sorted(set(table.period)) + [None]:
        periods = None if period is None else consolidate.check_periods(resource_id, period)
        folded = consolidate.read_council_periods(resource_id, *folding, periods)
        assert len(folded) == len(folded[["council_gss", "period"]].drop_duplicates())
        flags = checks(folded, period)
        assert flags == checks(consolidate.read_table(resource_id, periods), period), period
        seen |= {(f["check"], f["council_name"], f["field"]) for f in flags}
    assert {("outlier", "Inverclyde", "in_year_collection_rate_pct"), ("outlier", "Falkirk", "chargeable_dwellings"),
            ("missing", "Orkney Islands", None)} <= seen
