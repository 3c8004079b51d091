"""The platform runs on its real services: CKAN's API writes to PostgreSQL,
indexes in Solr (found again with a facet), and validation jobs run in a real
RQ worker process."""
from __future__ import annotations

import configparser
import json

import pytest
import sqlalchemy as sa

from ckan import model
from ckan.tests import factories, helpers

from tests.conftest import CTAS_HEADER as HEADER
from tests.conftest import CTAS_VALID_ROW, ROOT, api, upload_return_file

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def test_dataset_created_through_the_api_is_found_with_a_facet(app, agency_admin):
    created = api(
        app,
        "package_create",
        headers=agency_admin["headers"],
        type="data-return",
        name="hl1-homelessness",
        title="Homelessness applications (HL1)",
        notes="Quarterly homelessness applications and temporary accommodation.",
        owner_org=agency_admin["org"]["id"],
        frequency="quarterly",
        statutory="yes",
    )["result"]

    found = api(
        app,
        "package_search",
        q="homelessness",
        **{"facet.field": ["organization", "frequency"]},
        include_private=True,
    )["result"]
    assert [d["id"] for d in found["results"]] == [created["id"]]
    orgs = found["search_facets"]["organization"]["items"]
    assert [(o["name"], o["count"]) for o in orgs] == [(agency_admin["org"]["name"], 1)]
    assert found["search_facets"]["frequency"]["items"][0]["name"] == "quarterly"

    # the dataset row really is in PostgreSQL
    row = model.Session.execute(
        sa.text("SELECT name, type FROM package WHERE id = :id"), {"id": created["id"]}
    ).one()
    assert tuple(row) == ("hl1-homelessness", "data-return")


def test_an_invalid_upload_is_validated_by_the_real_worker_and_kept(app, agency_admin, run_worker):
    rows = [
        HEADER,
        CTAS_VALID_ROW,
        ["S12000049", "2023-24", "lots", "463880000", "435120000", "93.8"],
        ["S12000036", "2023-24", "254190", "442770000", "429900000", "107.0"],
    ]
    dataset, created = upload_return_file(app, agency_admin["headers"], agency_admin["org"]["id"], rows)
    resource = created["result"]

    queued = api(app, "resource_validation_show", headers=agency_admin["headers"], resource_id=resource["id"])
    assert queued["result"]["status"] == "created"

    run_worker("default")

    shown = api(app, "resource_validation_show", headers=agency_admin["headers"], resource_id=resource["id"])["result"]
    assert shown["status"] == "failure"
    report = json.loads(shown["report"]) if isinstance(shown["report"], str) else shown["report"]
    errors = [(e["type"], e["rowNumber"], e["fieldName"]) for e in report["tasks"][0]["errors"]]
    assert errors == [("type-error", 3, "chargeable_dwellings"), ("constraint-error", 4, "in_year_collection_rate_pct")]

    # the worker's result is in PostgreSQL, and the invalid file is still there
    status = model.Session.execute(
        sa.text("SELECT status FROM validation WHERE resource_id = :id"),
        {"id": resource["id"]},
    ).scalar_one()
    assert status == "failure"
    res = api(app, "resource_show", headers=agency_admin["headers"], id=resource["id"])["result"]
    assert res["validation_status"] == "failure"
    download = app.get(res["url"].replace("http://test.ckan.net", ""), headers=agency_admin["headers"])
    assert download.data.decode("utf-8").splitlines()[2].startswith("S12000049,2023-24,lots")


def test_a_valid_upload_passes(app, agency_admin, run_worker):
    _, created = upload_return_file(app, agency_admin["headers"], agency_admin["org"]["id"], [HEADER, CTAS_VALID_ROW])
    resource = created["result"]
    run_worker("default")
    shown = api(app, "resource_validation_show", headers=agency_admin["headers"], resource_id=resource["id"])["result"]
    assert shown["status"] == "success"


def test_status_show_reports_the_services(app):
    result = api(app, "lgdp_status_show")["result"]
    for name in ("database", "search", "jobs"):
        assert result["services"][name] == {"ok": True}, name
    # anonymous callers see no internals
    assert all(set(s) == {"ok"} for s in result["services"].values())


def test_status_show_gives_sysadmins_the_reason():
    sysadmin = factories.Sysadmin()
    result = helpers.call_action("lgdp_status_show", {"user": sysadmin["name"], "ignore_auth": False})
    worker = result["services"]["worker"]
    # the suite runs workers in burst mode only, so none is listening now
    assert worker["ok"] is False and "no worker listens" in worker["error"]


def test_test_ini_and_platform_ini_enable_the_same_plugins():
    def plugins(path):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(path)
        return parser["app:main"]["ckan.plugins"].split()

    assert plugins(ROOT / "test.ini") == plugins(ROOT / "config" / "platform.ini")


def test_the_header_links_the_dashboard_without_counting_activities(app, agency_admin):
    """A signed-in page's header has the Dashboard, profile, settings and
    log-out links, but not the activity plugin's count of new activities
    (dashboard_activity_list on every page, about 50 ms of each)."""
    user = agency_admin["user"]
    page = app.get("/data-return/", headers=agency_admin["headers"]).get_data(as_text=True)
    header = page[page.index("account-masthead"):page.index("</header>")]
    assert 'href="/dashboard/"' in header
    assert f'href="/user/{user["name"]}"' in header and f'href="/user/edit/{user["name"]}"' in header
    assert 'action="/user/_logout"' in header
    assert "badge" not in header and "notifications" not in header
    # the dashboard itself still answers
    assert app.get("/dashboard/", headers=agency_admin["headers"]).status_code == 200
