"""The demo that `./platform.sh run` loads: every state of a submission is
there for a newcomer to see, with invalid files, queries, late and overdue
returns, a return for correction, and quality flags on planted outliers."""
from __future__ import annotations

import pytest

from tests.conftest import api, ckan_cli, make_user

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def test_the_demo_shows_every_state(app):
    result = ckan_cli("lgdp", "demo", timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    admin = make_user(sysadmin=True)
    found = api(app, "package_search", headers=admin["headers"], fq="dataset_type:submission",
                include_private=True, rows=0,
                **{"facet.field": '["submission_status", "timeliness", "period"]', "facet.limit": 50})["result"]
    statuses = found["facets"]["submission_status"]
    assert set(statuses) == {"expected", "draft", "signed_off", "submitted", "accepted"}, statuses
    assert found["facets"]["timeliness"].get("late", 0) >= 4
    assert found["facets"]["timeliness"].get("overdue", 0) >= 3
    assert set(found["facets"]["period"]) == {"2022-23", "2023-24", "2024-25", "2025-26"}

    # a returned and resubmitted one keeps both versions
    glasgow = "council-tax-collection--glasgow-city--2024-25"
    uploads = api(app, "lgdp_upload_list", headers=admin["headers"], id=glasgow)["result"]
    assert len(uploads) == 2
    trail = [r["action"] for r in api(app, "lgdp_audit_list", headers=admin["headers"], id=glasgow)["result"]]
    assert "return" in trail
    # invalid files and unexplained queries are there
    argyll = api(app, "lgdp_upload_list", headers=admin["headers"], id="council-tax-collection--argyll-and-bute--2025-26")["result"]
    assert argyll[0]["status"] == "invalid"
    ayr = api(app, "lgdp_upload_list", headers=admin["headers"], id="council-tax-collection--south-ayrshire--2025-26")["result"]
    assert ayr[0]["unexplained_queries"] == 1

    # the consolidated table is published, with rates per 1,000
    table = api(app, "package_show", id="council-tax-collection--all-councils")["result"]
    rows = api(app, "datastore_search", resource_id=table["resources"][0]["id"],
               filters={"council_name": "Inverclyde", "period": "2024-25"})["result"]["records"]
    assert rows and rows[0]["in_year_collection_rate_pct"] == 81.0 and rows[0]["chargeable_dwellings_per_1000"]

    # the reference data is in the catalogue, versioned, with its table
    pops = api(app, "package_show", id="nrs-mid-year-population-estimates")["result"]
    assert pops["version"] == "1" and "National Records of Scotland" in pops["source_citation"]
    found = api(app, "datastore_search", resource_id=pops["resources"][0]["id"],
                filters={"council": "Fife", "year": 2022})["result"]["records"]
    assert found and found[0]["population"] > 300000
    again = ckan_cli("lgdp", "reference")
    assert "unchanged (version 1)" in again.stdout

    # the planted outliers are flagged, with reasons
    flags = api(app, "lgdp_qa_flag_list", headers=admin["headers"], data_return="council-tax-collection")["result"]
    inverclyde = [f for f in flags if f["council_name"] == "Inverclyde" and f["period"] == "2024-25" and f["check"] == "outlier"]
    assert any(f["field"] == "in_year_collection_rate_pct" and "81.0" in f["reason"] for f in inverclyde), inverclyde
    renfrewshire = [f for f in flags if f["council_name"] == "Renfrewshire" and f["period"] == "2025-26"]
    assert {"jump", "outlier"} <= {f["check"] for f in renfrewshire}, renfrewshire
    missing = {f["council_name"] for f in flags if f["check"] == "missing" and f["period"] == "2025-26"}
    assert {"Orkney Islands", "Shetland Islands", "Argyll and Bute"} <= missing
