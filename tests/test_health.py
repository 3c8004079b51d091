"""Health that tells the truth, with real worker processes: a worker counts
while its own heartbeat is fresh and its process exists, not while RQ's
registration lasts; a queue whose jobs nobody takes is not ok; a worker that
loses Redis waits and takes the next job once Redis is back."""
from __future__ import annotations

import os
import signal
import time

import pytest
from rq import Worker as RQWorker
from rq.job import Job

import ckan.plugins.toolkit as tk
from ckan.lib import jobs as ckan_jobs
from ckan.lib.redis import connect_to_redis
from ckan.tests import factories, helpers

from tests.conftest import api, ckan_cli, platform
from tests.processes import Processes, wait_until, write_ini

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db")]


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def sysadmin():
    return factories.Sysadmin()["name"]


def _status(user: str) -> dict:
    return helpers.call_action("lgdp_status_show", {"user": user, "ignore_auth": False})


def _beat_of(result: dict, pid: int) -> dict | None:
    return next((w for w in result["services"]["worker"]["workers"] if w["pid"] == pid), None)


def _live(user: str, pid: int) -> bool:
    beat = _beat_of(_status(user), pid)
    return bool(beat and beat["live"])


def test_status_is_not_ok_while_no_worker_is_alive(app, tmp_path, processes, sysadmin):
    assert _status(sysadmin)["services"]["worker"]["ok"] is False
    ini = write_ini(tmp_path, **{"ckanext.lgdp.worker.heartbeat_seconds": "1"})
    proc = processes.start(ini, "lgdp", "worker")
    wait_until(lambda: _live(sysadmin, proc.pid), 90, "the worker never showed a live heartbeat")

    result = _status(sysadmin)
    worker = result["services"]["worker"]
    assert worker["ok"] is True and worker["live"] == 1, worker
    beat = _beat_of(result, proc.pid)
    assert beat["state"] == "idle" and beat["queues"] == ["lgdp:validation", "default"] and beat["process"] == "alive"
    # anyone may ask, and gets the verdicts only
    anonymous = api(app, "lgdp_status_show")["result"]
    assert anonymous["services"]["worker"] == {"ok": True}
    assert all(set(s) == {"ok"} for s in anonymous["services"].values())

    # a worker that no longer beats (stopped, not dead) is not live after 3 intervals
    os.kill(proc.pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        wait_until(lambda: not _status(sysadmin)["services"]["worker"]["ok"], 10, "a silent worker still counted")
        assert time.monotonic() - stopped < 6
        beat = _beat_of(_status(sysadmin), proc.pid)
        assert beat["live"] is False and beat["process"] == "alive" and beat["heartbeat_age"] >= 3
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    wait_until(lambda: _live(sysadmin, proc.pid), 10, "the worker did not beat again")

    # killed the hard way: not ok at once, while RQ still registers it
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    result = _status(sysadmin)
    assert result["ok"] is False
    worker = result["services"]["worker"]
    assert worker["ok"] is False and worker["live"] == 0 and "no worker listens" in worker["error"]
    beat = _beat_of(result, proc.pid)
    assert beat["live"] is False and beat["process"] == "gone"
    assert any(w.pid == proc.pid for w in RQWorker.all(connection=connect_to_redis())), \
        "RQ no longer registers the killed worker: this test would not show the difference"
    assert api(app, "lgdp_status_show")["result"]["services"]["worker"] == {"ok": False}

    # the operator's command says the same, and fails
    said = ckan_cli("lgdp", "status")
    assert said.returncode == 1, said.stdout + said.stderr
    assert "DOWN worker" in said.stdout and "no worker listens" in said.stdout and "NOT OK" in said.stdout


def test_a_coordinating_body_member_sees_the_details_and_a_council_editor_does_not():
    from tests.conftest import make_world

    people = make_world()["people"]
    reviewer = _status(people["reviewer"]["name"])
    assert "workers" in reviewer["services"]["worker"] and "queues" in reviewer["services"]["queues"]
    editor = _status(people["a_editor"]["name"])
    assert all(set(s) == {"ok"} for s in editor["services"].values())


@pytest.mark.ckan_config("ckanext.lgdp.health.queue_stuck_seconds", "2")
def test_a_queue_whose_jobs_nobody_takes_is_not_ok(sysadmin, run_worker):
    from ckan.lib.jobs import test_job

    tk.enqueue_job(test_job, ["waiting"], title="a job nobody takes", queue="default")
    first = _status(sysadmin)["services"]["queues"]
    assert first["ok"] is True and first["queues"]["default"]["depth"] == 1
    time.sleep(2.5)
    queues = _status(sysadmin)["services"]["queues"]
    assert queues["ok"] is False and queues["queues"]["lgdp:validation"]["ok"] is True
    default = queues["queues"]["default"]
    assert default["ok"] is False and default["depth"] == 1 and default["oldest_age"] > 2
    assert default["last_taken_age"] is None
    assert "the oldest job of queue default has waited" in queues["error"]

    run_worker("default")  # a worker takes it: the queue is empty and ok
    queues = _status(sysadmin)["services"]["queues"]
    assert queues["ok"] is True and queues["queues"]["default"]["depth"] == 0


def _redis_back(seconds: float = 30) -> None:
    def answers():
        try:
            return connect_to_redis().ping()
        except Exception:  # noqa: BLE001 - not yet
            return False

    wait_until(answers, seconds, "Redis did not come back")


@pytest.mark.services
def test_a_worker_that_loses_redis_waits_and_takes_the_next_job(tmp_path, processes, sysadmin):
    ini = write_ini(tmp_path, **{"ckanext.lgdp.worker.heartbeat_seconds": "1",
                                 "ckanext.lgdp.worker.reconnect_max_seconds": "2"})
    proc = processes.start(ini, "lgdp", "worker")
    wait_until(lambda: _live(sysadmin, proc.pid), 90, "the worker never showed a live heartbeat")
    # a job running when Redis goes away: RQ cannot record its end
    running = tk.enqueue_job(time.sleep, [4], title="a job across the outage", queue="default")
    wait_until(lambda: (_beat_of(_status(sysadmin), proc.pid) or {}).get("job") == running.id, 20,
               "the worker never took the job")

    stopped = platform("service", "stop", "redis")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    try:
        time.sleep(7)  # the job ends meanwhile, and the worker finds Redis gone
        assert proc.poll() is None, Processes.log_of(proc)[-3000:]
        # a burst worker, which should fail rather than wait, exits non-zero
        burst = ckan_cli("lgdp", "worker", "--burst")
        assert burst.returncode == 1 and "the job queue (Redis) went away" in burst.stderr, burst.stderr[-2000:]
    finally:
        started = platform("service", "start", "redis")
        assert started.returncode == 0, started.stdout + started.stderr
    _redis_back()

    after = tk.enqueue_job(ckan_jobs.test_job, ["after the outage"], title="a job after the outage", queue="default")
    try:
        wait_until(lambda: Job.fetch(after.id, connection=connect_to_redis()).get_status() == "finished", 60,
                   "the worker did not take a job after Redis came back")
    except AssertionError as e:
        job = Job.fetch(after.id, connection=connect_to_redis())
        raise AssertionError(f"{e}: job {after.id} is {job.get_status()!r} ({job.exc_info or ''})\n"
                             + Processes.log_of(proc)[-8000:]) from None
    assert proc.poll() is None  # the same process
    beat = _beat_of(_status(sysadmin), proc.pid)
    assert beat["live"] and beat["last_job"] == after.id, beat
    log = Processes.log_of(proc)
    assert "lost Redis" in log and "a new worker takes over in process %d" % proc.pid in log


def test_the_home_page_shows_the_platform_health_to_the_coordinating_body_only(app):
    from tests.conftest import make_world

    people = make_world()["people"]
    for who in ("anonymous", "a_editor", "x_editor"):
        page = app.get("/", headers=people[who]["headers"]).get_data(as_text=True)
        assert "Platform health" not in page and "platform-health" not in page, who
    for who in ("reviewer", "sysadmin"):
        page = app.get("/", headers=people[who]["headers"]).get_data(as_text=True)
        assert "Platform health" in page, who
        # no worker runs: said in words, with the reason and each queue
        assert "<strong>not ok</strong>: jobs are not being taken" in page
        assert "no worker listens on queue lgdp:validation, default" in page
        assert "no scheduler has run" in page
        assert "lgdp:validation: 0 waiting" in page and "default: 0 waiting" in page
    gaelic = app.get("/gd/", headers=people["reviewer"]["headers"]).get_data(as_text=True)
    assert "Slàinte an àrd-ùrlair" in gaelic and "chan eil e ceart gu leòr" in gaelic
    assert "Platform health" not in gaelic and "Pròiseasan obrach" in gaelic
