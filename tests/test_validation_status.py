"""An upload's status is recorded once (the upload row); what
ckanext-validation shows (its `validation` table, written from it, and the
resource's validation_status, worked out from it when the resource is shown)
always agrees with it."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from ckan import model

from ckanext.lgdp.model import Upload
from ckanext.lgdp.model.uploads import UPLOAD_STATES, VALIDATION_STATUS
from ckanext.lgdp.submissions import jobs
from tests.conftest import api, csv_bytes, ctas_rows, make_world, push

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def _copies(app, who, upload_id: str) -> tuple[str, str, str]:
    row = model.Session.get(Upload, upload_id)
    model.Session.refresh(row)
    table = model.Session.execute(sa.text("SELECT status FROM validation WHERE resource_id = :id"),
                                  {"id": upload_id}).scalar()
    resource = api(app, "resource_show", headers=who["headers"], id=upload_id)["result"]
    return row.status, table, resource.get("validation_status")


def test_every_status_has_a_name_in_ckanext_validation():
    assert set(VALIDATION_STATUS) == set(UPLOAD_STATES)
    assert set(VALIDATION_STATUS.values()) <= {"running", "success", "failure", "error"}


def test_the_copies_follow_the_upload(app, run_worker):
    world = make_world()
    editor = world["people"]["a_editor"]
    bad = ctas_rows(period="2022-23")
    bad[1][2] = "lots"
    cases = {
        "valid": (csv_bytes(ctas_rows(period="2021-22")), "2021-22", "ctas.csv"),
        "invalid": (csv_bytes(bad), "2022-23", "ctas.csv"),
        "rejected": (b"\x00\x01\x02 not a table \xff\xfe" * 40, "2023-24", "ctas.csv"),
    }
    uploads = {}
    for outcome, (content, period, name) in cases.items():
        if outcome == "rejected":  # refused at once (409), and kept
            uploads[outcome] = push(app, editor, content, filename=name, period=period, status=409)["error"]["upload_id"]
        else:
            uploads[outcome] = push(app, editor, content, filename=name, period=period)["result"]["upload"]["id"]
    model.Session.remove()
    run_worker(jobs.QUEUE)
    for outcome, upload_id in uploads.items():
        status, table, resource = _copies(app, editor, upload_id)
        assert status == outcome, (outcome, status)
        assert table == resource == VALIDATION_STATUS[outcome], (outcome, table, resource)
