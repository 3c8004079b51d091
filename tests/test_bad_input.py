"""Every file of the bad-input corpus (tests/corpus/MANIFEST.json) pushed to
a submission through the API: each gets its own message and a 4xx, the file
is kept and flagged, and nothing accepted changes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckan.tests.helpers import call_action

from tests.conftest import api, csv_bytes, ctas_rows, make_world, push, transition

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

CORPUS = Path(__file__).parent / "corpus"
MANIFEST = json.loads((CORPUS / "MANIFEST.json").read_text("utf-8"))


@pytest.fixture
def accepted(app, live_worker):
    """Council A's 2022-23 return accepted, and a valid 2023-24 draft."""
    world = make_world()
    people = world["people"]
    old = push(app, people["a_editor"], csv_bytes(ctas_rows(period="2022-23")), period="2022-23", wait="true")["result"]
    for who, step in (("a_admin", "sign_off"), ("a_editor", "submit"), ("x_editor", "accept")):
        done = transition(app, people[who], old["submission"]["name"], step, status=None)
        assert done["success"], (step, done, old["upload"])
    draft = push(app, people["a_editor"], csv_bytes(ctas_rows()), filename="good.csv", wait="true")["result"]
    return world, old["submission"]["name"], draft["submission"]["name"]


def _snapshot(app, world, name):
    sub = api(app, "package_show", headers=world["people"]["sysadmin"]["headers"], id=name)["result"]
    return {k: sub.get(k) for k in ("submission_status", "accepted_upload", "submitted_upload", "round")}


def _check(app, world, old_name, draft_name, case):
    editor = world["people"]["a_editor"]
    before_old = _snapshot(app, world, old_name)
    before_uploads = api(app, "lgdp_upload_list", headers=editor["headers"], id=draft_name)["result"]

    content = (CORPUS / case["file"]).read_bytes()
    expect_ok = case["stage"] == "valid" and case["file"] != "header-only.csv"
    answer = push(app, editor, content, filename=case["file"], status=200 if expect_ok else 409, wait="true")

    uploads = api(app, "lgdp_upload_list", headers=editor["headers"], id=draft_name)["result"]
    assert len(uploads) == len(before_uploads) + 1, "the file is kept as a new version"
    newest = uploads[0]
    if expect_ok:
        assert newest["status"] == "valid", newest
    else:
        error = answer["error"]
        text = json.dumps(error)
        if case["stage"] == "intake":
            assert error["code"] == case["code"]
            assert case["message_contains"] in " ".join(error["upload"]), error
            assert newest["status"] == "rejected" and newest["problem_code"] == case["code"]
        elif case["file"] == "header-only.csv":
            assert "no-data-rows" in text
        else:
            assert newest["status"] == "invalid", newest
            types = {e["type"] for e in error["errors"]}
            assert case["code"] in types, (types, error)
            assert case["message_contains"] in text
        # flagged, and still downloadable by its uploader
        got = app.get(f"/dataset/{newest['submission_id']}/resource/{newest['id']}/download", headers=editor["headers"])
        assert got.status_code == 200 and got.data == content
    # the earlier valid upload and the accepted year are untouched
    assert uploads[-1]["status"] == "valid"
    assert _snapshot(app, world, old_name) == before_old


def test_each_bad_file_gets_its_own_message_and_changes_nothing_accepted(app, accepted):
    world, old_name, draft_name = accepted
    cases = [c for c in MANIFEST if c.get("file")]
    failures = []
    for case in cases:
        try:
            _check(app, world, old_name, draft_name, case)
        except AssertionError as e:
            failures.append(f"{case['file']}: {str(e)[:600]}")
    print(f"\nbad-input corpus: {len(cases)} files, {len(failures)} failures")
    assert not failures, "\n".join(failures)


def test_a_file_over_the_limit_is_refused_before_it_is_read(app, accepted, ckan_config, monkeypatch):
    world, _old, draft_name = accepted
    monkeypatch.setitem(ckan_config, "ckanext.lgdp.max_upload_mb", 1)
    big = csv_bytes(ctas_rows()) + b"S12000033,2023-24,1,1,1,1\n" * 60000  # ~1.6 MB
    answer = push(app, world["people"]["a_editor"], big, status=413)
    assert "largest file accepted is 1 MB" in answer["error"]["message"]
    uploads = api(app, "lgdp_upload_list", headers=world["people"]["a_editor"]["headers"], id=draft_name)["result"]
    assert len(uploads) == 1, "nothing was stored"
