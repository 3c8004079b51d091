"""Pull connectors against a council system on loopback: a scheduled pull
creates and validates a submission, an unchanged source creates nothing, a
failing source is retried with a growing delay and reported."""
from __future__ import annotations

import datetime

import pytest

from ckan import model

from ckanext.lgdp.model import Connector
from tests.conftest import api, ckan_cli, csv_bytes, ctas_rows, make_world

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def test_a_scheduled_pull_creates_validates_skips_unchanged_and_retries_failures(app, file_server, run_worker):
    world = make_world()
    people = world["people"]
    # the latest ended period today (the connector fills it)
    today = datetime.date.today()
    first_year = today.year - 1 if today.month >= 4 else today.year - 2
    period = f"{first_year}-{(first_year + 1) % 100:02d}"
    file_server["files"]["/finance/ctas.csv"] = csv_bytes(ctas_rows(period=period))
    url = file_server["url"] + "/finance/ctas.csv"

    api(app, "lgdp_connector_create", headers=people["b_editor"]["headers"], status=403,
        council="aberdeen-city", data_return="council-tax-collection", url=url)
    bad = api(app, "lgdp_connector_create", headers=people["a_editor"]["headers"], status=409,
              council="aberdeen-city", data_return="council-tax-collection", url="ftp://x", interval_minutes=1)["error"]
    assert "https://" in bad["url"][0] and "interval_minutes" in bad
    conn = api(app, "lgdp_connector_create", headers=people["a_editor"]["headers"], council="aberdeen-city",
               data_return="council-tax-collection", url=url, auth_secret="Bearer council-system-token")["result"]
    assert conn["has_secret"] and "council-system-token" not in str(conn)
    stored = model.Session.get(Connector, conn["id"]).auth_secret
    assert stored and "council-system-token" not in stored  # encrypted at rest

    pulled = ckan_cli("lgdp", "pull")
    assert pulled.returncode == 0 and "1 created" in pulled.stdout, pulled.stdout + pulled.stderr
    assert file_server["headers"][-1]["authorization"] == "Bearer council-system-token"
    run_worker("lgdp:validation")
    name = f"council-tax-collection--aberdeen-city--{period}"
    uploads = api(app, "lgdp_upload_list", headers=people["a_member"]["headers"], id=name)["result"]
    assert [(u["channel"], u["status"]) for u in uploads] == [("pull", "valid")]

    # not due again until tomorrow; run now by hand: unchanged, nothing new
    assert "no connector was due" in ckan_cli("lgdp", "pull").stdout
    again = api(app, "lgdp_connector_run", headers=people["a_editor"]["headers"], id=conn["id"])["result"]
    assert again["outcome"] == "unchanged"
    assert len(api(app, "lgdp_upload_list", headers=people["a_member"]["headers"], id=name)["result"]) == 1

    # the council system fails: recorded, retried after 5 then 10 minutes
    file_server["status"]["/finance/ctas.csv"] = 500
    for failures, minutes in ((1, 5), (2, 10)):
        failed = api(app, "lgdp_connector_run", headers=people["a_editor"]["headers"], id=conn["id"])["result"]
        assert failed["outcome"] == "failed" and failed["http_status"] == 500 and "answered 500" in failed["error"]
        shown = api(app, "lgdp_connector_list", headers=people["a_member"]["headers"])["result"][0]
        assert shown["failures"] == failures
        wait = datetime.datetime.fromisoformat(shown["next_run_at"]) - datetime.datetime.utcnow()
        assert datetime.timedelta(minutes=minutes - 1) < wait <= datetime.timedelta(minutes=minutes)
    runs = api(app, "lgdp_connector_run_list", headers=people["a_member"]["headers"], id=conn["id"])["result"]
    assert [r["outcome"] for r in runs] == ["failed", "failed", "unchanged", "created"]
    api(app, "lgdp_connector_run_list", headers=people["b_editor"]["headers"], id=conn["id"], status=404)

    # a source that is not there at all
    file_server["status"].pop("/finance/ctas.csv")
    file_server["files"].pop("/finance/ctas.csv")
    gone = api(app, "lgdp_connector_run", headers=people["a_editor"]["headers"], id=conn["id"])["result"]
    assert gone["outcome"] == "failed" and gone["http_status"] == 404
