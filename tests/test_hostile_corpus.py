"""The hostile corpus (tests/corpus/hostile.py) pushed through the upload API
for three standards: each case gets the outcome and the words it must, never
a 500, and the rows accepted before it stay exactly as they were in the
central tables (read back through datastore_search)."""
from __future__ import annotations

import io
import json
import time

import pytest

from ckan import model
from ckan.tests.helpers import call_action

from tests.conftest import api, make_world, standard
from tests.corpus.hostile import STANDARDS, Case, cases

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

CASES = cases()
EARLIER = {"council-tax-collection": "2022-23", "visitor-levy": "2022-23", "long-term-empty-homes-monthly": "2024-02"}


def _push(app, who, name, content, filename="return.csv", period=None, status=None):
    spec = STANDARDS[name]
    resp = app.post("/api/3/action/lgdp_submission_upload", headers=who["headers"],
                    data={"data_return": name, "council": "aberdeen-city", "period": period or spec["period"],
                          "upload": (io.BytesIO(content), filename), "wait": "true"})
    return resp


def _valid(name, period):
    spec = STANDARDS[name]
    row = list(spec["row"])
    row[1] = period
    return (",".join(spec["header"]) + "\n" + ",".join(row) + "\n").encode()


@pytest.fixture
def platform(app, live_worker, run_worker):
    world = make_world()
    people = world["people"]
    def sysadmin():  # a fresh context per call: CKAN keeps objects in the one it is given
        return {"user": people["sysadmin"]["name"]}

    call_action("package_patch", context=sysadmin(), id="council-tax-collection", collection_start="2020-04-01")
    for name in ("visitor-levy", "long-term-empty-homes-monthly"):
        spec = STANDARDS[name]
        call_action("package_create", context=sysadmin(), type="data-return", name=name, title=name.replace("-", " ").title(),
                    notes="A return of the hostile corpus.", owner_org=world["orgs"]["agency_x"]["id"],
                    requesting_agencies=[world["orgs"]["agency_r"]["name"]], frequency=spec["frequency"],
                    period_basis="financial", statutory="no", lifecycle_status="active", collection_start="2020-04-01",
                    data_standard=json.dumps(standard(f"{name}.v1")))
    tables = {}
    for name, period in EARLIER.items():
        got = _push(app, people["a_editor"], name, _valid(name, period), period=period).json
        assert got["success"], got
        sub = got["result"]["submission"]["name"]
        for who, step in (("a_admin", "sign_off"), ("a_editor", "submit"), ("x_editor", "accept")):
            done = app.post("/api/3/action/lgdp_submission_transition", headers=people[who]["headers"],
                            json={"id": sub, "action": step})
            assert done.status_code == 200, (name, step, done.json, got["result"]["upload"])
        # the usual period's draft, valid, that every case then adds a version to
        assert _push(app, people["a_editor"], name, _valid(name, STANDARDS[name]["period"])).json["success"]
    run_worker("default")
    for name in EARLIER:
        table = api(app, "package_show", headers=people["x_editor"]["headers"], id=f"{name}--all-councils")["result"]
        tables[name] = table["resources"][0]["id"]
    return world, tables


def _accepted_rows(app, who, tables):
    return {name: api(app, "datastore_search", headers=who["headers"], resource_id=rid, sort="_id")["result"]["records"]
            for name, rid in tables.items()}


def _said(answer: dict) -> str:
    """Everything the officer reads about the upload, as one text."""
    parts = []
    error = answer.get("error") or {}
    result = answer.get("result") or {}
    for key in ("upload", "period", "message"):
        value = error.get(key)
        parts.extend(value if isinstance(value, list) else [str(value or "")])
    for e in error.get("errors") or result.get("errors") or []:
        parts.append(str(e.get("message") or ""))
        parts.append(str(e.get("summary") or ""))
    upload = result.get("upload") or {}
    parts.extend(upload.get("notes") or [])
    parts.append(str(result.get("message") or ""))
    return "\n".join(parts)


def _check(app, world, tables, before, case: Case) -> None:
    people = world["people"]
    editor = people["a_editor"]
    submissions = model.Session.query(model.Package).filter_by(type="submission").count()
    resp = _push(app, editor, case.standard, case.content, filename=case.filename, period=case.period)
    assert resp.status_code < 500, resp.status_code
    answer = resp.json
    said = _said(answer)
    for fragment in case.expect:
        assert fragment in said, (fragment, said[:800])
    if case.outcome == "valid":
        assert resp.status_code == 200 and answer["result"]["upload"]["status"] == "valid", said[:800]
    elif case.outcome == "refused":
        assert resp.status_code == 409, resp.status_code
        assert case.field in answer["error"], answer["error"]
        model.Session.expire_all()
        assert model.Session.query(model.Package).filter_by(type="submission").count() == submissions
    else:
        assert resp.status_code == 409, (resp.status_code, said[:500])
        error = answer["error"]
        upload = api(app, "lgdp_upload_show", headers=editor["headers"], id=error["upload_id"])["result"]
        assert upload["status"] == case.outcome, (upload["status"], upload["problem"], said[:500])
        if case.code and case.outcome == "rejected":
            assert error["code"] == case.code
        if case.field:
            named = {e.get("field") for e in error.get("errors") or []}
            assert case.field in named, (named, said[:500])
    assert _accepted_rows(app, people["x_editor"], tables) == before


def test_every_hostile_case_is_answered_in_words_and_changes_nothing_accepted(app, platform):
    world, tables = platform
    before = _accepted_rows(app, world["people"]["x_editor"], tables)
    assert all(len(rows) == 1 for rows in before.values())
    failures = []
    started = time.perf_counter()
    for case in CASES:
        try:
            _check(app, world, tables, before, case)
        except AssertionError as e:
            failures.append(f"{case.standard} / {case.name}: {str(e)[:400]}")
    by_standard = {name: sum(c.standard == name for c in CASES) for name in STANDARDS}
    print(f"\nhostile corpus: {len(CASES)} cases {by_standard}, {len(failures)} failures, "
          f"{time.perf_counter() - started:.0f} s")
    assert len(CASES) >= 100 and min(by_standard.values()) >= 25
    assert not failures, "\n".join(failures)
