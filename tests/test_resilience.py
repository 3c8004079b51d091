"""Files attached by URL, and a worker killed in the middle of a validation:
the upload is retried, then shown as interrupted, never left "running"."""
from __future__ import annotations

import os
import signal
import time

import pytest

from ckan import model

from ckanext.lgdp.model import Upload
from tests.conftest import api, csv_bytes, ctas_rows, make_world

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def _attach(app, who, url, status=200, **extra):
    resp = app.post("/api/3/action/lgdp_submission_upload", headers=who["headers"], status=status,
                    data={"data_return": "council-tax-collection", "council": "aberdeen-city", "period": "2023-24",
                          "url": url, **extra})
    return resp.json


def _row(upload_id):
    model.Session.expire_all()
    return model.Session.get(Upload, upload_id)


def test_a_file_attached_by_url_is_fetched_and_validated(app, file_server, live_worker):
    world = make_world()
    editor = world["people"]["a_editor"]
    file_server["files"]["/exports/ctas.csv"] = csv_bytes(ctas_rows())
    answer = _attach(app, editor, file_server["url"] + "/exports/ctas.csv", wait="true")["result"]
    assert answer["upload"]["status"] == "valid" and answer["upload"]["rows"] == 1
    assert answer["upload"]["channel"] == "url"

    # a source that is not there: kept as an upload, with the reason
    failed = _attach(app, editor, file_server["url"] + "/exports/gone.csv", wait="true", status=409)["error"]
    assert failed["status"] == "rejected" or "404" in " ".join(failed["upload"])
    upload = api(app, "lgdp_upload_show", headers=editor["headers"], id=failed["upload_id"])["result"]
    assert upload["status"] == "rejected" and upload["problem_code"] == "download-failed"
    assert "answered 404" in upload["problem"]


def test_a_worker_killed_mid_job_is_retried_then_interrupted(app, file_server, live_worker, run_worker):
    world = make_world()
    editor = world["people"]["a_editor"]
    file_server["files"]["/slow.csv"] = csv_bytes(ctas_rows())
    file_server["delay"]["/slow.csv"] = 30  # the first fetch hangs
    answer = _attach(app, editor, file_server["url"] + "/slow.csv")["result"]
    upload_id = answer["upload"]["id"]

    deadline = time.monotonic() + 30
    # killed only once its fetch is hanging on the server: a worker killed
    # before it connects would leave the slow answer for the retry
    while _row(upload_id).status != "running" or "/slow.csv" not in file_server["hits"]:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)
    # the process doing the job: the worker itself (it runs jobs without a
    # work horse), killed the hard way
    doer = int(_row(upload_id).worker.rsplit(":", 1)[1])
    assert doer == live_worker.pid
    os.kill(doer, signal.SIGKILL)
    live_worker.wait(timeout=10)
    assert live_worker.returncode == -signal.SIGKILL
    time.sleep(0.5)
    assert _row(upload_id).status == "running"

    # the next read of the submission finds the dead job and queues it again
    listed = api(app, "lgdp_upload_list", headers=editor["headers"], id=answer["submission"]["name"])["result"]
    assert listed[0]["status"] == "pending" and listed[0]["attempts"] == 1
    run_worker("lgdp:validation")
    assert _row(upload_id).status == "valid" and _row(upload_id).attempts == 2, (_row(upload_id).problem_code, _row(upload_id).problem)

    # after the last attempt it is shown as interrupted, with a message
    row = _row(upload_id)
    row.status, row.attempts, row.worker = "running", 3, "nowhere-host:1"
    row.started_at = row.started_at.replace(year=2020)
    model.repo.commit()
    swept = api(app, "lgdp_validation_sweep", headers=world["people"]["coordinator"]["headers"])["result"]
    assert swept == {"retried": 0, "interrupted": 1}
    shown = api(app, "lgdp_upload_show", headers=editor["headers"], id=upload_id)["result"]
    assert shown["status"] == "interrupted" and "interrupted 3 times" in shown["problem"]
