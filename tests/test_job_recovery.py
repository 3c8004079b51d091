"""Every accepted submission is eventually consolidated, once; no upload is
left pending or running. Real worker processes (`ckan lgdp worker`) are
killed with SIGKILL at each stage of a job (ckanext/lgdp/ops/faults.py),
lose their PostgreSQL connection mid-job or find Solr refusing their last
write; the sweep (or a new worker) then finishes the work, and the tables
hold exactly the accepted rows: 0 lost, 0 duplicated, 0 stuck."""
from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from ckan import model
from ckan.tests import factories
from ckan.tests.helpers import call_action

from ckanext.lgdp.model import Consolidation, Upload
from ckanext.lgdp.repository import consolidate
from tests.conftest import (
    COUNCIL_A_GSS, COUNCIL_B_GSS, ROOT, api, ckan_cli, csv_bytes, ctas_rows, make_user, make_world, push,
    transition,
)

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

TABLE = "council-tax-collection--all-councils"
COUNCILS = {"aberdeen-city": ("a", COUNCIL_A_GSS), "aberdeenshire": ("b", COUNCIL_B_GSS)}


@pytest.fixture
def world():
    return make_world()


# ---------------------------------------------------------------- helpers


def _accept(app, people, council, period, **values):
    c, gss = COUNCILS.get(council) or people["councils"][council]
    sub = push(app, people[f"{c}_editor"], csv_bytes(ctas_rows(gss, period, **values)), period=period,
               council=council, wait="true")["result"]["submission"]
    for q in api(app, "lgdp_upload_list", headers=people[f"{c}_editor"]["headers"], id=sub["name"])["result"][0]["queries"]:
        api(app, "lgdp_submission_explain", headers=people[f"{c}_editor"]["headers"], id=sub["name"],
            query_id=q["id"], explanation="Checked")
    transition(app, people[f"{c}_admin"], sub["name"], "sign_off")
    transition(app, people[f"{c}_editor"], sub["name"], "submit")
    transition(app, people["x_editor"], sub["name"], "accept")
    return sub["name"]


def _accept_again(app, people, name, dwellings):
    """Returned after acceptance, corrected, accepted again (Aberdeen City)."""
    transition(app, people["r_editor"], name, "return", reason="Dwellings exclude second homes")
    push(app, people["a_editor"], csv_bytes(ctas_rows(period="2023-24", dwellings=dwellings)), wait="true")
    transition(app, people["a_admin"], name, "sign_off")
    transition(app, people["a_editor"], name, "submit")
    transition(app, people["x_editor"], name, "accept")


def _accepted_upload(name):
    model.Session.expire_all()
    return call_action("package_show", id=name)["accepted_upload"]


def _record(name):
    model.Session.expire_all()
    pkg = model.Package.get(name)
    return model.Session.get(Consolidation, pkg.id)


def _upload(upload_id):
    model.Session.expire_all()
    return model.Session.get(Upload, upload_id)


def _held():
    """Every row of every DataStore table of the return, read from the
    tables: {resource_id: sorted [(council, period, upload, dwellings)]}."""
    from ckanext.datastore.backend.postgres import get_read_engine, identifier

    model.Session.expire_all()
    table = model.Package.get(TABLE)
    if table is None:
        return {}
    out = {}
    for rid in consolidate.table_resources(table.id):
        with get_read_engine().connect() as conn:
            out[rid] = sorted(tuple(r) for r in conn.execute(sa.text(
                f"SELECT council_gss, period, upload_id, chargeable_dwellings FROM {identifier(rid)}")).all())
    return out


def _only_table():
    held = _held()
    assert len(held) == 1, held
    return next(iter(held.values()))


def _sweep(app, people):
    return api(app, "lgdp_consolidation_sweep", headers=people["coordinator"]["headers"])["result"]


NOTHING = {"consolidated": [], "failed": [], "queued": [], "interrupted": []}


def _killed_worker(point, *queues):
    """A worker that kills itself (SIGKILL) at the fault point."""
    result = ckan_cli("lgdp", "worker", "--burst", *(queues or ("default",)), env={"LGDP_FAULT_POINTS": point})
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr[-3000:])
    return result


def _nothing_stuck():
    model.Session.expire_all()
    stuck = model.Session.query(Consolidation).filter(Consolidation.status != "consolidated").all()
    assert [(r.submission_id, r.status) for r in stuck] == []
    uploads = model.Session.query(Upload).filter(Upload.status.in_(("pending", "running"))).all()
    assert [(u.id, u.status) for u in uploads] == []


# ---------------------------------------------------------------- one table per standard version


def _council(n, gss, title):
    org = factories.Organization(name=f"council-{n}", title=title, org_type="council", gss_code=gss)
    return org, make_user(org, "editor"), make_user(org, "admin")


@pytest.fixture
def race_ini():
    """test.ini as the platform runs CKAN: Solr shows a change up to a
    second later (ckan.search.solr_commit = false, autoSoftCommit 1 s). Kept
    beside test.ini (in the git-ignored .state/) for its %(here)s."""
    path = ROOT / ".state" / f"test-race-{os.environ.get('PYTEST_XDIST_WORKER', 'gw0')}.ini"
    path.parent.mkdir(exist_ok=True)
    text = (ROOT / "test.ini").read_text("utf-8").replace("%(here)s", str(ROOT))
    path.write_text(text.replace("[app:main]\n", "[app:main]\nckan.search.solr_commit = false\n", 1), "utf-8")
    yield path
    path.unlink()


def _advisory_waiters():
    model.Session.rollback()
    return model.Session.execute(sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")).scalar()


def test_concurrent_first_consolidations_make_one_table_per_version(app, world, live_worker, race_ini):
    """Four workers, each with the first consolidation of a new return,
    held at the table's advisory lock, then let go at once: one table
    dataset, one DataStore table, flagged, holding every council's rows."""
    people = world["people"]
    people["councils"] = {}
    names = [_accept(app, people, "aberdeen-city", "2023-24"), _accept(app, people, "aberdeenshire", "2023-24")]
    for n, (gss, title) in enumerate([("S12000005", "Clackmannanshire"), ("S12000006", "Dumfries and Galloway")]):
        org, editor, admin = _council(n, gss, title)
        key = f"c{n}"
        people[f"{key}_editor"], people[f"{key}_admin"] = editor, admin
        people["councils"][org["name"]] = (key, gss)
        names.append(_accept(app, people, org["name"], "2023-24"))
    assert model.Package.get(TABLE) is None
    ini = race_ini
    ckan = Path(sys.executable).with_name("ckan")
    with consolidate._creating(TABLE):
        workers = [subprocess.Popen([str(ckan), "-c", str(ini), "lgdp", "worker", "--burst", "--max-jobs", "1", "default"],
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                   for _ in names]
        deadline = time.monotonic() + 180
        while _advisory_waiters() < len(workers):
            ended = [w for w in workers if w.poll() is not None]
            assert not ended, ended[0].stderr.read()[-3000:]
            assert time.monotonic() < deadline, "the workers never waited"
            time.sleep(0.2)
    for w in workers:
        assert w.wait(timeout=180) == 0, w.stderr.read()[-3000:]

    model.Session.expire_all()
    assert model.Session.query(model.Package).filter(model.Package.name.like(f"{TABLE}%")).count() == 1
    table = model.Package.get(TABLE)
    resources = [r for r in table.resources if r.state == "active"]
    assert len(resources) == 1 and resources[0].extras.get("datastore_active") is True
    resource_id = resources[0].id
    [rows] = _held().values()
    uploads = {_accepted_upload(n) for n in names}
    assert sorted(r[0] for r in rows) == sorted([COUNCIL_A_GSS, COUNCIL_B_GSS, "S12000005", "S12000006"])
    assert {r[2] for r in rows} == uploads
    for name in names:
        assert _record(name).status == "consolidated"
    # and so readers see it, once the search index has caught up
    time.sleep(1.5)
    shown = api(app, "package_show", headers=people["x_editor"]["headers"], id=TABLE)["result"]["resources"]
    assert [(r["id"], r["datastore_active"]) for r in shown] == [(resource_id, True)]


def test_a_stale_search_index_copy_does_not_make_a_second_table(app, world, live_worker, run_worker):
    """The copy package_show serves from Solr lacks the table's
    datastore_active flag (as in the second after DataStore set it): the next
    consolidation still finds the table in the database, and the flag stays."""
    from ckan.lib.search import PackageSearchIndex

    people = world["people"]
    people["councils"] = {}
    _accept(app, people, "aberdeen-city", "2023-24")
    run_worker("default")
    [resource_id] = _held()

    stale = call_action("package_show", context={"use_cache": False}, id=TABLE)
    for res in stale["resources"]:
        res.pop("datastore_active", None)
    PackageSearchIndex().index_package(stale)
    served = call_action("package_show", id=TABLE)
    assert not served["resources"][0].get("datastore_active")  # the stale copy is what package_show gives

    other = _accept(app, people, "aberdeenshire", "2023-24", dwellings=90000)
    run_worker("default")
    assert list(_held()) == [resource_id]
    model.Session.expire_all()
    assert model.Resource.get(resource_id).extras.get("datastore_active") is True
    assert [r[0] for r in _held()[resource_id]] == [COUNCIL_A_GSS, COUNCIL_B_GSS]
    assert _record(other).resource_id == resource_id


# ---------------------------------------------------------------- kills at each stage


STAGES = ["consolidate.start", "consolidate.before_copy", "consolidate.during_copy", "consolidate.before_commit",
          "consolidate.after_commit"]


@pytest.mark.parametrize("stage", STAGES)
def test_a_worker_killed_at_each_stage_of_a_consolidation(app, world, live_worker, run_worker, stage):
    people = world["people"]
    _accept(app, people, "aberdeenshire", "2023-24", dwellings=90000)
    name = _accept(app, people, "aberdeen-city", "2023-24", dwellings=110000)
    run_worker("default")
    first = _accepted_upload(name)
    before = _only_table()
    b_rows = [r for r in before if r[0] == COUNCIL_B_GSS]
    assert [r[:3] for r in before if r[0] == COUNCIL_A_GSS] == [(COUNCIL_A_GSS, "2023-24", first)]

    # a corrected file accepted; the worker consolidating it is killed at the stage
    _accept_again(app, people, name, dwellings=111000)
    second = _accepted_upload(name)
    _killed_worker(stage)
    rec = _record(name)
    assert (rec.status, rec.attempts, rec.upload_id) == ("running", 1, second)
    during = _only_table()
    if stage == "consolidate.after_commit":  # committed, not yet recorded
        assert [r for r in during if r[0] == COUNCIL_A_GSS] == [(COUNCIL_A_GSS, "2023-24", second, 111000)]
    else:  # rolled back whole: the DELETE too
        assert during == before
    assert api(app, "package_show", headers=people["x_editor"]["headers"], id=name)["result"][
        "consolidation_status"] == "running"

    # the sweep sees that no job is alive behind it, and queues it again
    swept = _sweep(app, people)
    assert swept == {**NOTHING, "queued": [{"name": name, "reason": "killed"}]}
    run_worker("default")
    after = _only_table()
    assert [r for r in after if r[0] == COUNCIL_A_GSS] == [(COUNCIL_A_GSS, "2023-24", second, 111000)]
    assert [r for r in after if r[0] == COUNCIL_B_GSS] == b_rows
    rec = _record(name)
    assert (rec.status, rec.attempts, rec.consolidated_upload, rec.rows) == ("consolidated", 2, second, 1)
    shown = api(app, "package_show", headers=people["x_editor"]["headers"], id=name)["result"]
    assert shown["consolidation_status"] == "consolidated" and shown["consolidated_at"]
    assert _sweep(app, people) == NOTHING
    _nothing_stuck()


def test_a_consolidation_killed_three_times_is_interrupted_shown_and_announced(app, world, live_worker, run_worker):
    people = world["people"]
    name = _accept(app, people, "aberdeen-city", "2023-24")
    for attempt in (1, 2, 3):
        _killed_worker("consolidate.before_copy")
        assert _record(name).attempts == attempt
        swept = _sweep(app, people)
        if attempt < 3:
            assert swept == {**NOTHING, "queued": [{"name": name, "reason": "killed"}]}
    assert swept == {**NOTHING, "interrupted": [name]}
    assert all(rows == [] for rows in _held().values())  # nothing half written

    # shown in the API and on the submission's page, with the retry button for the agency
    shown = api(app, "package_show", headers=people["x_editor"]["headers"], id=name)["result"]
    assert shown["consolidation_status"] == "interrupted" and shown["consolidation_attempts"] == 3
    assert "interrupted 3 times" in shown["consolidation_problem"]
    page = app.get(f"/submission/{name}", headers=people["x_editor"]["headers"]).get_data(as_text=True)
    assert "interrupted 3 times" in page and "Try again" in page
    council_page = app.get(f"/submission/{name}", headers=people["a_editor"]["headers"]).get_data(as_text=True)
    assert "interrupted 3 times" in council_page and "Try again" not in council_page

    # the coordinating body (and the return's agencies) are told; others not
    def told(who):
        events = api(app, "lgdp_event_list", headers=people[who]["headers"], data_return="council-tax-collection")["result"]
        return [e for e in events if e["type"] == "submission.consolidation_interrupted"]

    for who in ("coordinator", "x_editor", "r_editor"):
        [event] = told(who)
        assert event["subject"]["name"] == name and event["data"]["attempts"] == 3
    assert told("y_editor") == []

    # listed as needing attention, for those who may read the submission
    [item] = api(app, "lgdp_attention_list", headers=people["coordinator"]["headers"])["result"]
    assert (item["kind"], item["status"], item["submission"], item["attempts"]) == ("consolidation", "interrupted", name, 3)
    assert item["council"] == "aberdeen-city" and item["data_return"] == "council-tax-collection"
    assert api(app, "lgdp_attention_list", headers=people["y_editor"]["headers"])["result"] == []
    api(app, "lgdp_attention_list", status=403)

    # the sweep leaves it to a person; a retry by the owner agency puts the rows in
    assert _sweep(app, people) == NOTHING
    done = api(app, "lgdp_consolidation_retry", headers=people["x_editor"]["headers"], id=name)["result"]
    assert done["rows"] == 1 and done["submission"]["consolidation_status"] == "consolidated"
    assert [r[0] for r in _only_table()] == [COUNCIL_A_GSS]
    assert api(app, "lgdp_attention_list", headers=people["coordinator"]["headers"])["result"] == []
    trail = [e for e in api(app, "lgdp_audit_list", headers=people["coordinator"]["headers"])["result"]
             if e["action"] == "consolidate"]
    assert [(e["from_state"], e["to_state"]) for e in reversed(trail)] == [("pending", "interrupted"),
                                                                           ("interrupted", "consolidated")]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("point", ["validate.before_running", "validate.running"])
def test_a_validation_killed_is_retried_and_after_three_kills_interrupted(app, world, point):
    people = world["people"]
    editor = people["a_editor"]
    answer = push(app, editor, csv_bytes(ctas_rows()))["result"]
    upload_id = answer["upload"]["id"]
    for attempt in (1, 2, 3):
        _killed_worker(point, "lgdp:validation")
        # killed before it marked itself running, the upload still says pending: the
        # attempt is counted by the sweep, which sees RQ's job with no live worker
        assert _upload(upload_id).status == ("pending" if point == "validate.before_running" else "running")
        swept = api(app, "lgdp_validation_sweep", headers=people["coordinator"]["headers"])["result"]
        if attempt < 3:
            assert swept == {"retried": 1, "interrupted": 0}
            row = _upload(upload_id)
            assert (row.status, row.attempts) == ("pending", attempt)
    assert swept == {"retried": 0, "interrupted": 1}
    shown = api(app, "lgdp_upload_show", headers=editor["headers"], id=upload_id)["result"]
    assert shown["status"] == "interrupted" and shown["attempts"] == 3 and "interrupted 3 times" in shown["problem"]
    [item] = api(app, "lgdp_attention_list", headers=people["coordinator"]["headers"])["result"]
    assert (item["kind"], item["upload_id"], item["submission"]) == ("validation", upload_id, answer["submission"]["name"])
    assert [i["upload_id"] for i in api(app, "lgdp_attention_list", headers=editor["headers"])["result"]] == [upload_id]
    assert api(app, "lgdp_attention_list", headers=people["b_editor"]["headers"])["result"] == []


def test_a_validation_killed_before_it_marks_itself_running_is_retried(app, world, run_worker):
    people = world["people"]
    editor = people["a_editor"]
    answer = push(app, editor, csv_bytes(ctas_rows()))["result"]
    upload_id = answer["upload"]["id"]
    _killed_worker("validate.before_running", "lgdp:validation")
    assert (_upload(upload_id).status, _upload(upload_id).attempts) == ("pending", 0)
    # the next read of the upload finds the dead job and queues it again
    listed = api(app, "lgdp_upload_list", headers=editor["headers"], id=answer["submission"]["name"])["result"]
    assert (listed[0]["status"], listed[0]["attempts"]) == ("pending", 1)
    run_worker("lgdp:validation")
    row = _upload(upload_id)
    assert (row.status, row.attempts, row.worker) == ("valid", 2, None)
    _nothing_stuck()


def test_a_validation_taken_off_its_queue_by_a_worker_killed_at_once_is_retried(app, world, run_worker):
    """A worker of several queues takes a job with one blocking pop and
    only then says it started: killed in between, it leaves the job
    "queued" in Redis but in no queue. The job is not alive, and the next
    read queues the upload again."""
    from ckan.lib.redis import connect_to_redis
    from ckanext.lgdp.ops import liveness

    people = world["people"]
    editor = people["a_editor"]
    answer = push(app, editor, csv_bytes(ctas_rows()))["result"]
    upload_id = answer["upload"]["id"]
    job_id = _upload(upload_id).job_id
    assert liveness.job_state(job_id).alive
    redis = connect_to_redis()
    queue_key = next(k for k in redis.keys("rq:queue:*validation*") if redis.lpos(k, job_id) is not None)
    assert redis.lrem(queue_key, 1, job_id) == 1  # what the dead worker's pop did
    state = liveness.job_state(job_id)
    assert (state.status, state.alive, state.taken) == ("popped", False, True)

    listed = api(app, "lgdp_upload_list", headers=editor["headers"], id=answer["submission"]["name"])["result"]
    assert (listed[0]["status"], listed[0]["attempts"]) == ("pending", 1)
    assert _upload(upload_id).job_id != job_id
    run_worker("lgdp:validation")
    row = _upload(upload_id)
    assert (row.status, row.attempts, row.worker) == ("valid", 2, None)
    _nothing_stuck()


# ---------------------------------------------------------------- outages


@pytest.fixture
def solr_refusing_writes():
    """Solr as a worker sees it while Solr stops: reads pass through to the
    real core; every update answers 503."""
    real = os.environ.get("CKAN_SOLR_URL") or "http://127.0.0.1:8983/solr/ckan-test"
    base = real.split("/solr/", 1)[0]

    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self, body=None):
            if "/update" in self.path:
                self.send_response(503)
                self.end_headers()
                self.wfile.write(b"Service Unavailable")
                return
            request = urllib.request.Request(base + self.path, data=body, method=self.command,
                                             headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, headers, data = answer.status, answer.getheaders(), answer.read()
            except urllib.error.HTTPError as e:
                status, headers, data = e.code, e.headers.items(), e.read()
            self.send_response(status)
            for k, v in headers:
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            self._forward()

        def do_POST(self):  # noqa: N802
            self._forward(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/solr/" + real.split("/solr/", 1)[1]
    server.shutdown()


def test_a_validation_writes_nothing_to_solr_so_an_outage_cannot_stop_it(app, world, run_worker,
                                                                         solr_refusing_writes):
    """The job's last write used to mirror the result on the resource (a
    dataset write and a reindex), so Solr refusing writes failed it; the
    resource's validation status is now worked out from the upload row when
    it is shown, and the job writes nothing Solr must take."""
    people = world["people"]
    editor = people["a_editor"]
    answer = push(app, editor, csv_bytes(ctas_rows()))["result"]
    upload_id = answer["upload"]["id"]
    result = ckan_cli("lgdp", "worker", "--burst", "lgdp:validation", env={"CKAN_SOLR_URL": solr_refusing_writes})
    assert result.returncode == 0, result.stderr[-3000:]
    row = _upload(upload_id)
    assert (row.status, row.attempts) == ("valid", 1), (row.status, row.problem)
    shown = api(app, "resource_show", headers=editor["headers"], id=upload_id)["result"]
    assert shown["validation_status"] == "success" and shown["validation_timestamp"]
    _nothing_stuck()


def _terminate_waiting_backend(table, proc):
    """Terminate the PostgreSQL connection of a worker waiting for a row
    lock on ``table`` (as a PostgreSQL restart would), once it waits."""
    deadline = time.monotonic() + 120
    while True:
        model.Session.rollback()
        # (the statement's text may be cut at track_activity_query_size: the table is named early)
        pids = model.Session.execute(sa.text(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid() "
            "AND datname = current_database() "
            "AND query ILIKE :q"), {"q": f"% {table}%"}).scalars().all()
        if pids:
            break
        assert proc.poll() is None and time.monotonic() < deadline, "the worker never waited for the row"
        time.sleep(0.2)
    for pid in pids:
        model.Session.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    model.Session.rollback()


def _worker(*queues):
    ckan = Path(sys.executable).with_name("ckan")
    return subprocess.Popen([str(ckan), "-c", str(ROOT / "test.ini"), "lgdp", "worker", "--burst", *queues],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.mark.ckan_config("ckanext.lgdp.jobs.retry_after_seconds", 0)
def test_a_consolidation_that_loses_postgresql_is_retried_not_failed(app, world, live_worker, run_worker):
    people = world["people"]
    name = _accept(app, people, "aberdeen-city", "2023-24")
    pkg_id = model.Package.get(name).id
    # the test holds the submission's record, so the job waits for it; its
    # connection is then terminated
    with model.meta.engine.connect() as holder:
        tx = holder.begin()
        holder.execute(sa.text("SELECT 1 FROM lgdp_consolidation WHERE submission_id = :id FOR UPDATE"), {"id": pkg_id})
        proc = _worker("default")
        _terminate_waiting_backend("lgdp_consolidation", proc)
        tx.rollback()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()[-3000:]
    rec = _record(name)
    assert (rec.status, rec.attempts) == ("pending", 0)
    assert _sweep(app, people) == {**NOTHING, "queued": [{"name": name, "reason": "outage"}]}
    run_worker("default")
    rec = _record(name)
    assert (rec.status, rec.attempts) == ("consolidated", 1)
    assert [r[0] for r in _only_table()] == [COUNCIL_A_GSS]
    events = api(app, "lgdp_event_list", headers=people["coordinator"]["headers"], data_return="council-tax-collection")["result"]
    assert not [e for e in events if e["type"].startswith("submission.consolidation_")]
    _nothing_stuck()


@pytest.mark.ckan_config("ckanext.lgdp.jobs.retry_after_seconds", 0)
def test_a_validation_that_loses_postgresql_is_retried_not_an_error(app, world, run_worker):
    people = world["people"]
    answer = push(app, people["a_editor"], csv_bytes(ctas_rows()))["result"]
    upload_id = answer["upload"]["id"]
    with model.meta.engine.connect() as holder:
        tx = holder.begin()
        holder.execute(sa.text("SELECT 1 FROM lgdp_upload WHERE id = :id FOR UPDATE"), {"id": upload_id})
        proc = _worker("lgdp:validation")
        _terminate_waiting_backend("lgdp_upload", proc)
        tx.rollback()
    assert proc.wait(timeout=120) == 0, proc.stderr.read()[-3000:]
    assert (_upload(upload_id).status, _upload(upload_id).attempts) == ("pending", 0)
    swept = api(app, "lgdp_validation_sweep", headers=people["coordinator"]["headers"])["result"]
    assert swept == {"retried": 1, "interrupted": 0}
    run_worker("lgdp:validation")
    assert (_upload(upload_id).status, _upload(upload_id).attempts) == ("valid", 1)
    _nothing_stuck()


# ---------------------------------------------------------------- the reconciler


def _datastore(statement, **params):
    from ckanext.datastore.backend.postgres import get_write_engine

    with get_write_engine().begin() as conn:
        conn.execute(sa.text(statement), params)


def test_the_sweep_puts_back_what_the_table_lacks_or_holds_wrongly(app, world, live_worker, run_worker):
    from ckanext.datastore.backend.postgres import identifier

    people = world["people"]
    a = _accept(app, people, "aberdeen-city", "2023-24")
    b = _accept(app, people, "aberdeenshire", "2023-24", dwellings=90000)
    run_worker("default")
    whole = _only_table()
    [resource_id] = _held()
    table = identifier(resource_id)
    assert _sweep(app, people) == NOTHING

    # consolidating again changes nothing (idempotent)
    api(app, "lgdp_consolidation_retry", headers=people["x_editor"]["headers"], id=a)
    assert _only_table() == whole

    columns = ", ".join(c for c in _columns(resource_id) if c != "_id")
    damage = {
        "missing": f"DELETE FROM {table} WHERE council_gss = '{COUNCIL_A_GSS}'",
        "stale": f"UPDATE {table} SET upload_id = 'an-older-upload' WHERE council_gss = '{COUNCIL_A_GSS}'",
        "duplicated": f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {table} WHERE council_gss = '{COUNCIL_A_GSS}'",
    }
    for reason, statement in damage.items():
        _datastore(statement)
        assert _only_table() != whole
        assert _sweep(app, people) == {**NOTHING, "queued": [{"name": a, "reason": reason}]}, reason
        run_worker("default")
        assert _only_table() == whole, reason
        assert _record(a).status == "consolidated" and _record(b).status == "consolidated"
    assert _sweep(app, people) == NOTHING

    # a consolidation whose job was lost (Redis emptied) is queued again
    _accept_again(app, people, a, dwellings=111000)
    from ckan.tests.helpers import call_action

    call_action("job_clear", queues=["default"])
    rec = _record(a)
    assert rec.status == "pending"
    model.Session.execute(sa.update(Consolidation).where(Consolidation.submission_id == rec.submission_id)
                          .values(enqueued_at=rec.enqueued_at.replace(year=2020)))
    model.Session.commit()
    assert _sweep(app, people) == {**NOTHING, "queued": [{"name": a, "reason": "lost"}]}
    run_worker("default")
    assert [r[3] for r in _only_table() if r[0] == COUNCIL_A_GSS] == [111000]
    _nothing_stuck()

    # a rebuild puts back a table emptied by hand, and records what it put in
    whole = _only_table()
    _datastore(f"DELETE FROM {table}")
    api(app, "lgdp_consolidate", headers=people["coordinator"]["headers"], data_return="council-tax-collection",
        qa=False)
    assert _only_table() == whole
    assert _record(a).status == "consolidated" and _record(b).status == "consolidated"
    assert _sweep(app, people) == NOTHING


def _columns(resource_id):
    from ckanext.datastore.backend.postgres import get_read_engine

    with get_read_engine().connect() as conn:
        return [r[0] for r in conn.execute(sa.text(
            "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum"), {"t": f'"{resource_id}"'}).all()]
