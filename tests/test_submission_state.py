"""A submission's state lives in lgdp_submission_state: a step changes
direct access at once (package_show, pages, downloads), search documents
follow in coalesced batches, and in between no search shows anyone more
than the current state allows. The migration moves the state that datasets
held over to the table, and back."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from ckan import model
from ckan.lib.redis import connect_to_redis
from ckan.tests.helpers import call_action

from tests.conftest import COUNCIL_A_GSS, COUNCIL_B_GSS, ckan_cli, ctas_rows, csv_bytes, make_world, push, transition

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

COUNCILS = {"a": ("aberdeen-city", COUNCIL_A_GSS), "b": ("aberdeenshire", COUNCIL_B_GSS)}
PERIODS = ("2021-22", "2022-23", "2023-24")
# who reads what is the policy's (tests/test_access.py); here: each of these
# finds in search no submission that package_show refuses them
WATCHERS = ("anonymous", "a_member", "b_editor", "x_member", "x_editor", "r_editor", "y_editor", "reviewer")


def _search_ids(app, who) -> set[str]:
    resp = app.get("/api/3/action/package_search", headers=who["headers"],
                   query_string={"fq": "dataset_type:submission", "include_private": "true", "rows": 1000})
    assert resp.status_code == 200
    return {r["id"] for r in resp.json["result"]["results"]}


def _shows(app, who, ident) -> bool:
    resp = app.get("/api/3/action/package_show", headers=who["headers"], query_string={"id": ident})
    assert resp.status_code in (200, 403, 404), resp.status_code
    return resp.status_code == 200


def _indexed_status(app, admin, ident) -> str | None:
    """The state the search document holds (a facet of the one document)."""
    resp = app.get("/api/3/action/package_search", headers=admin["headers"],
                   query_string={"fq": f"id:{ident}", "include_private": "true", "rows": 0,
                                 "facet.field": '["submission_status"]'})
    found = resp.json["result"]["facets"]["submission_status"]
    return next(iter(found), None)


def _no_search_shows_more(app, world, ids: dict[str, str]) -> None:
    for role in WATCHERS:
        who = world["people"][role]
        found = _search_ids(app, who)
        leaks = [name for name, sid in ids.items() if sid in found and not _shows(app, who, sid)]
        assert not leaks, f"{role} finds in search what package_show refuses them: {leaks}"


def _queued_refreshes() -> int:
    from ckan.lib.jobs import get_queue

    queue = get_queue("lgdp:validation")
    return sum(1 for job in queue.jobs if job.func_name.endswith("indexing.refresh_job"))


def _pending() -> int:
    return model.Session.execute(sa.text("SELECT count(*) FROM lgdp_search_pending")).scalar()


def _push_all(app, world, run_worker) -> dict[str, str]:
    ids = {}
    for key, (council, gss) in COUNCILS.items():
        editor = world["people"][f"{key}_editor"]
        for period in PERIODS:
            answer = push(app, editor, csv_bytes(ctas_rows(gss=gss, period=period)), period=period, council=council)
            ids[f"{key} {period}"] = answer["result"]["submission"]["id"]
    run_worker("lgdp:validation")
    return ids


def _moved(app, people, run_worker, *steps: str) -> dict:
    """Council A's submission with a valid upload, taken through ``steps``
    (the worker's batch not run after them)."""
    sub = push(app, people["a_editor"], csv_bytes(ctas_rows()))["result"]["submission"]
    run_worker("lgdp:validation")
    by = {"sign_off": "a_admin", "submit": "a_editor", "accept": "x_editor", "return": "x_editor"}
    for step in steps:
        transition(app, people[by[step]], sub["id"], step, reason="Check the dwellings")
    return sub


def test_a_step_changes_direct_access_at_once_and_search_after_the_batch(app, run_worker):
    world = make_world()
    people = world["people"]
    sub = _moved(app, people, run_worker, "sign_off")
    done = transition(app, people["a_editor"], sub["id"], "submit")["result"]
    # the answer and package_show show the new state at once
    assert done["submission_status"] == "submitted" and done["submitted_at"] and done["late"] in ("yes", "no")
    assert _shows(app, people["x_editor"], sub["id"])
    # the steps queued one refresh; until it runs the document says draft, as
    # the upload left it (its labels keep the agency out: it does not find it yet)
    assert _queued_refreshes() == 1
    assert _indexed_status(app, people["sysadmin"], sub["id"]) == "draft"
    assert sub["id"] not in _search_ids(app, people["x_editor"])
    run_worker("lgdp:validation")
    assert _pending() == 0
    assert _indexed_status(app, people["sysadmin"], sub["id"]) == "submitted"
    assert sub["id"] in _search_ids(app, people["x_editor"])
    # the state is not kept as the dataset's fields
    pkg = model.Package.get(sub["id"])
    assert "submission_status" not in pkg.extras and "submitted_at" not in pkg.extras
    # a value sent for a state field through CKAN's own actions is dropped
    call_action("package_patch", context={"user": people["sysadmin"]["name"]}, id=sub["id"],
                submission_status="accepted", notes="a note")
    shown = call_action("package_show", id=sub["id"])
    assert shown["submission_status"] == "submitted" and shown["notes"] == "a note"


def test_a_burst_of_steps_converges_and_no_search_shows_more_in_between(app, run_worker):
    world = make_world()
    people = world["people"]
    ids = _push_all(app, world, run_worker)
    assert _pending() == 0
    steps = 0
    for name, sid in ids.items():
        key = name.split()[0]
        transition(app, people[f"{key}_admin"], sid, "sign_off")
        transition(app, people[f"{key}_editor"], sid, "submit")
        steps += 2
        _no_search_shows_more(app, world, ids)
    for n, (_name, sid) in enumerate(ids.items()):
        if n % 2:
            transition(app, people["x_editor"], sid, "accept")
        else:
            transition(app, people["r_editor"], sid, "return", reason="The dwellings look wrong")
        steps += 1
        _no_search_shows_more(app, world, ids)
    # one batch waits for all of them
    assert _queued_refreshes() == 1 and steps == 18
    assert _pending() == len(ids)
    run_worker("lgdp:validation", "default")
    assert _pending() == 0
    for sid in ids.values():
        status = call_action("package_show", id=sid)["submission_status"]
        assert status in ("accepted", "returned")
        assert _indexed_status(app, people["sysadmin"], sid) == status
    _no_search_shows_more(app, world, ids)
    # the agencies now find every submitted one; council b finds its own only
    assert set(ids.values()) <= _search_ids(app, people["x_editor"])
    assert _search_ids(app, people["b_editor"]) == {sid for name, sid in ids.items() if name.startswith("b")}


def test_a_stale_document_is_hidden_from_whom_the_state_now_denies(app, run_worker):
    """No step of today's policy takes readers away without reindexing (an
    upload after a return reindexes with its resource): the gate's rule is
    shown on a state changed under a document that still names the agency."""
    from ckanext.lgdp.submissions import workflow

    world = make_world()
    people = world["people"]
    sub = _moved(app, people, run_worker, "sign_off", "submit")
    run_worker("lgdp:validation")
    assert _pending() == 0, "the refresh did not run"
    assert _indexed_status(app, people["sysadmin"], sub["id"]) == "submitted"
    assert sub["id"] in _search_ids(app, people["x_editor"])
    # the state goes back to the council alone; the document is not refreshed
    workflow.change(workflow.current(sub["id"]), status="draft")
    model.Session.commit()
    assert _indexed_status(app, people["sysadmin"], sub["id"]) == "submitted"
    assert not _shows(app, people["x_editor"], sub["id"])
    assert sub["id"] not in _search_ids(app, people["x_editor"])
    assert sub["id"] not in _search_ids(app, people["r_editor"])
    # the council and the coordinating body still find it meanwhile
    assert sub["id"] in _search_ids(app, people["a_editor"])
    assert sub["id"] in _search_ids(app, people["coordinator"])
    run_worker("lgdp:validation")
    assert _indexed_status(app, people["sysadmin"], sub["id"]) == "draft"
    assert sub["id"] not in _search_ids(app, people["x_editor"])


def test_a_lost_refresh_is_taken_by_the_scheduled_one(app, run_worker):
    """Redis emptied after a step (its refresh job lost): the marks stay in
    PostgreSQL and `ckan lgdp search-refresh` (the scheduler's entry) takes
    them."""
    world = make_world()
    people = world["people"]
    sub = _moved(app, people, run_worker, "sign_off")
    connect_to_redis().flushdb()
    assert _pending() == 1
    # only the coordinating body (and sysadmins) may run the refresh by hand
    for role in ("a_editor", "x_editor", "reviewer"):
        app.post("/api/3/action/lgdp_search_refresh", json={}, headers=people[role]["headers"], status=403)
    model.Session.remove()
    assert _pending() == 1
    result = ckan_cli("lgdp", "search-refresh")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 search documents refreshed" in result.stdout and "0 still stale" in result.stdout
    model.Session.remove()
    assert _pending() == 0
    assert _indexed_status(app, people["sysadmin"], sub["id"]) == "signed_off"


def test_a_refresh_taken_off_its_queue_by_a_killed_worker_does_not_block_the_next(app, run_worker):
    """A worker killed between its pop of the refresh job and its start
    leaves the job "queued" in no queue: the next step queues a refresh
    again, and the marks are taken."""
    from ckanext.lgdp.submissions import indexing

    world = make_world()
    people = world["people"]
    sub = _moved(app, people, run_worker, "sign_off")
    assert _queued_refreshes() == 1
    redis = connect_to_redis()
    job_id = redis.get(indexing._pending_key()).decode()
    assert not indexing.enqueue_refresh()  # one waits: no second
    queue_key = next(k for k in redis.keys("rq:queue:*validation*") if redis.lpos(k, job_id) is not None)
    assert redis.lrem(queue_key, 1, job_id) == 1  # what the dead worker's pop did
    assert _queued_refreshes() == 0
    transition(app, people["a_editor"], sub["id"], "submit")
    assert _queued_refreshes() == 1
    run_worker("lgdp:validation")
    model.Session.remove()
    assert _pending() == 0
    assert _indexed_status(app, people["sysadmin"], sub["id"]) == "submitted"


def test_the_migration_moves_the_state_to_the_table_and_back(app, run_worker):
    world = make_world()
    people = world["people"]
    sub = _moved(app, people, run_worker, "sign_off", "submit", "return")
    before = call_action("package_show", id=sub["id"])
    model.Session.remove()

    down = ckan_cli("db", "downgrade", "-p", "lgdp", "--version", "c9d0e1f2a3b4")
    assert down.returncode == 0, down.stderr[-3000:]
    try:
        extras = dict(model.Session.execute(sa.text(
            "SELECT key, value FROM package_extra WHERE package_id = :id"), {"id": sub["id"]}).all())
        # as the datasets held it before the table
        assert extras["submission_status"] == "returned" and extras["round"] == "1"
        assert extras["return_reason"] == "Check the dwellings" and extras["late"] in ("yes", "no")
        assert extras["signed_off_by"] == people["a_admin"]["name"]
        assert extras["submitted_at"] == before["submitted_at"]
        model.Session.remove()
    finally:
        up = ckan_cli("db", "upgrade", "-p", "lgdp")
    assert up.returncode == 0, up.stderr[-3000:]
    model.Session.remove()
    after = call_action("package_show", id=sub["id"])
    moved = ("submission_status", "round", "standard_version", "current_upload", "submitted_upload",
             "accepted_upload", "signed_off_by", "signed_off_at", "submitted_at", "decided_by", "decided_at",
             "return_reason", "late")
    assert {k: after[k] for k in moved} == {k: before[k] for k in moved}
    left = model.Session.execute(sa.text(
        "SELECT count(*) FROM package_extra WHERE package_id = :id AND key = ANY(:keys)"),
        {"id": sub["id"], "keys": list(moved)}).scalar()
    assert left == 0


def test_a_purged_submission_takes_its_state_with_it(app, run_worker):
    world = make_world()
    people = world["people"]
    sub = _moved(app, people, run_worker, "sign_off")
    assert _pending() == 1
    call_action("dataset_purge", context={"user": people["sysadmin"]["name"]}, id=sub["id"])
    model.Session.remove()
    left = model.Session.execute(sa.text(
        "SELECT (SELECT count(*) FROM lgdp_submission_state WHERE submission_id = :id)"
        " + (SELECT count(*) FROM lgdp_search_pending WHERE package_id = :id)"), {"id": sub["id"]}).scalar()
    assert left == 0
