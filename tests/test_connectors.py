"""Pull connectors against a council system on loopback: a scheduled pull
creates and validates a submission, an unchanged source creates nothing, a
failing source is retried with a growing delay and reported."""
from __future__ import annotations

import datetime

import pytest

from ckan import model

from ckanext.lgdp.model import Connector, ConnectorRun
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


def _latest_ended_period() -> str:
    today = datetime.date.today()
    first_year = today.year - 1 if today.month >= 4 else today.year - 2
    return f"{first_year}-{(first_year + 1) % 100:02d}"


def test_the_councils_editors_disable_enable_and_delete_a_connector(app, file_server):
    world = make_world()
    people = world["people"]
    file_server["files"]["/finance/ctas.csv"] = csv_bytes(ctas_rows(period=_latest_ended_period()))
    conn = api(app, "lgdp_connector_create", headers=people["a_editor"]["headers"], council="aberdeen-city",
               data_return="council-tax-collection", url=file_server["url"] + "/finance/ctas.csv",
               auth_secret="Bearer council-system-token")["result"]

    # nobody else: the council's plain member reads it but may not (403);
    # for another council's editor, an agency's editor and anonymous, who may
    # not read it, it does not exist (404)
    for who, status in (("a_member", 403), ("b_editor", 404), ("x_editor", 404), ("anonymous", 404)):
        for action in ("lgdp_connector_disable", "lgdp_connector_enable", "lgdp_connector_delete"):
            api(app, action, headers=people[who]["headers"], status=status, id=conn["id"])
    api(app, "lgdp_connector_disable", headers=people["a_editor"]["headers"], status=404, id="no-such-connector")

    disabled = api(app, "lgdp_connector_disable", headers=people["a_editor"]["headers"], id=conn["id"],
                   reason="The finance system is being replaced")["result"]
    assert disabled["active"] is False
    listed = api(app, "lgdp_connector_list", headers=people["a_member"]["headers"])["result"]
    assert [(c["id"], c["active"]) for c in listed] == [(conn["id"], False)]
    # due, yet never run: not by the scheduler, not with --all, not by the
    # coordinating body's run of every due connector, not by hand
    assert "no connector was due" in ckan_cli("lgdp", "pull").stdout
    assert "no connector was due" in ckan_cli("lgdp", "pull", "--all").stdout
    assert api(app, "lgdp_connector_run", headers=people["coordinator"]["headers"], due=True)["result"]["runs"] == []
    error = api(app, "lgdp_connector_run", headers=people["a_editor"]["headers"], status=409, id=conn["id"])["error"]
    assert "disabled" in error["id"][0]
    assert file_server["hits"] == []
    assert api(app, "lgdp_connector_run_list", headers=people["a_member"]["headers"], id=conn["id"])["result"] == []

    enabled = api(app, "lgdp_connector_enable", headers=people["a_admin"]["headers"], id=conn["id"])["result"]
    assert enabled["active"] is True
    pulled = ckan_cli("lgdp", "pull")
    assert "1 created" in pulled.stdout, pulled.stdout + pulled.stderr
    assert file_server["hits"] == ["/finance/ctas.csv"]

    assert api(app, "lgdp_connector_delete", headers=people["a_editor"]["headers"], id=conn["id"],
               reason="Uploads by hand from now on")["result"] is None
    assert api(app, "lgdp_connector_list", headers=people["a_editor"]["headers"])["result"] == []
    api(app, "lgdp_connector_run_list", headers=people["a_editor"]["headers"], id=conn["id"], status=404)
    api(app, "lgdp_connector_delete", headers=people["a_editor"]["headers"], id=conn["id"], status=404)
    model.Session.expire_all()
    assert model.Session.get(Connector, conn["id"]) is None
    assert model.Session.query(ConnectorRun).filter(ConnectorRun.connector_id == conn["id"]).count() == 0
    # the upload it made stays on its submission
    name = f"council-tax-collection--aberdeen-city--{_latest_ended_period()}"
    uploads = api(app, "lgdp_upload_list", headers=people["a_member"]["headers"], id=name)["result"]
    assert [u["channel"] for u in uploads] == ["pull"]
    assert "no connector was due" in ckan_cli("lgdp", "pull", "--all").stdout

    # each change is in the audit trail, with who and why
    trail = [e for e in api(app, "lgdp_audit_list", headers=people["reviewer"]["headers"])["result"]
             if e["object_type"] == "connector"]
    assert [(e["action"], e["from_state"], e["to_state"], e["actor_name"], e["reason"]) for e in trail] == [
        ("delete", "active", "deleted", people["a_editor"]["name"], "Uploads by hand from now on"),
        ("enable", "disabled", "active", people["a_admin"]["name"], None),
        ("disable", "active", "disabled", people["a_editor"]["name"], "The finance system is being replaced"),
    ]
    assert {e["object_id"] for e in trail} == {conn["id"]}
    assert trail[0]["diff"]["runs"] == {"from": 1, "to": 0}
