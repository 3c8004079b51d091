"""The platform's scheduler, with real processes: `ckan lgdp scheduler` and a
live worker pull a council's file and send a reminder with nobody running a
command; a run waiting in the queue is not queued twice; one scheduler leads
and a second one takes over when it dies; a run that fails is recorded and
queued again."""
from __future__ import annotations

import datetime
import email
import os
import signal
import time

import pytest
from rq.job import Job

from ckan import model
from ckan.lib import jobs as ckan_jobs
from ckan.lib.redis import connect_to_redis
from ckan.tests import helpers

from ckanext.lgdp.model import ConnectorRun, Upload
from ckanext.lgdp.ops import scheduler
from tests.conftest import api, csv_bytes, ctas_rows, make_world
from tests.processes import NO_SCHEDULES, Processes, ckan, wait_until, write_ini
from tests.test_pubsub import smtp_server  # noqa: F401 - the fixture

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index", "clean_schedules")]


@pytest.fixture
def clean_schedules():
    """No run record, tick or lock left by an earlier test."""
    redis = connect_to_redis()
    for key in redis.scan_iter(match=scheduler.redis_key("*")):
        redis.delete(key)
    for name in (*scheduler.JOBS, "boom"):
        try:
            Job.fetch(scheduler.job_id(name), connection=redis).delete()
        except Exception:  # noqa: BLE001 - NoSuchJobError
            pass


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


def _latest_ended_period() -> str:
    today = datetime.date.today()
    first_year = today.year - 1 if today.month >= 4 else today.year - 2
    return f"{first_year}-{(first_year + 1) % 100:02d}"


def _tick_pid() -> int | None:
    tick = scheduler.last_tick()
    fresh = tick and time.time() - tick["time"] < 3 * tick["interval"]
    return tick["pid"] if fresh else None


def _section(listing: str, name: str) -> str:
    return listing.split(f"\n{name}: ", 1)[1].split("\n\n", 1)[0]


def test_the_scheduler_runs_a_pull_and_a_reminder_on_its_own(app, tmp_path, processes, file_server, smtp_server):  # noqa: F811
    world = make_world()
    people = world["people"]
    for who in ("a_editor", "a_admin"):
        model.User.get(people[who]["name"]).email = f"{people[who]['name']}@council.example"
    model.repo.commit()
    # a council system with this year's file, and its connector (due now)
    file_server["files"]["/finance/ctas.csv"] = csv_bytes(ctas_rows(period=_latest_ended_period()))
    conn = api(app, "lgdp_connector_create", headers=people["a_editor"]["headers"], council="aberdeen-city",
               data_return="council-tax-collection", url=file_server["url"] + "/finance/ctas.csv")["result"]
    # a submission due a week from today: today's reminders name it
    sub = api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"],
              data_return="council-tax-collection", council="aberdeen-city", period="2023-24")["result"]
    due = (datetime.date.today() + datetime.timedelta(days=7)).isoformat()
    model.Package.get(sub["name"]).extras["due_date"] = due  # the calendar says 30 April: move it
    model.repo.commit()

    ini = write_ini(tmp_path, **{
        **NO_SCHEDULES,
        "ckanext.lgdp.schedule.pull": "*/2 * * * * *",
        "ckanext.lgdp.schedule.remind": "*/2 * * * * *",
        "ckanext.lgdp.scheduler.heartbeat_seconds": "1",
        "ckanext.lgdp.worker.heartbeat_seconds": "1",
        "smtp.server": f"127.0.0.1:{smtp_server['port']}",
        "smtp.mail_from": "platform@lgdp.example",
    })
    sched = processes.start(ini, "lgdp", "scheduler")
    wait_until(lambda: _tick_pid() == sched.pid, 90, "the scheduler never ticked")

    # no worker yet: however many ticks pass, each schedule's run waits once
    def waited_twice() -> bool:
        runs = scheduler.last_runs()
        return all(runs[n].get("tick") == "still waiting" for n in ("pull", "remind"))

    wait_until(waited_twice, 20, "the ticks did not find their runs waiting")
    time.sleep(2.5)
    queued = [i for i in ckan_jobs.get_queue("default").job_ids if i.startswith("lgdp-schedule-")]
    assert sorted(queued) == [scheduler.job_id("pull"), scheduler.job_id("remind")]
    assert file_server["hits"] == [] and smtp_server["inbox"] == []
    status = helpers.call_action("lgdp_status_show", {"user": people["sysadmin"]["name"], "ignore_auth": False})
    assert status["services"]["scheduler"]["ok"] is True and status["services"]["scheduler"]["pid"] == sched.pid
    assert status["services"]["scheduler"]["age"] < 3
    assert status["services"]["worker"]["ok"] is False and status["ok"] is False

    worker = processes.start(ini, "lgdp", "worker")
    name = f"council-tax-collection--aberdeen-city--{_latest_ended_period()}"

    def pulled_and_validated() -> bool:
        model.Session.expire_all()
        run = model.Session.query(ConnectorRun).filter(ConnectorRun.connector_id == conn["id"]).first()
        upload = model.Session.get(Upload, run.upload_id) if run and run.upload_id else None
        return bool(upload and upload.status == "valid")

    wait_until(pulled_and_validated, 120, "the pull did not happen on its own:\n" + Processes.log_of(sched)[-2000:])
    runs = api(app, "lgdp_connector_run_list", headers=people["a_member"]["headers"], id=conn["id"])["result"]
    assert [r["outcome"] for r in runs] == ["created"]
    assert file_server["hits"] == ["/finance/ctas.csv"]
    uploads = api(app, "lgdp_upload_list", headers=people["a_member"]["headers"], id=name)["result"]
    assert [(u["channel"], u["status"]) for u in uploads] == [("pull", "valid")]

    uploaders = {f"{people[w]['name']}@council.example" for w in ("a_editor", "a_admin")}
    wait_until(lambda: {r for m in smtp_server["inbox"] for r in m["to"]} == uploaders, 60,
               "no reminder was sent:\n" + Processes.log_of(worker)[-2000:])
    message = email.message_from_bytes(smtp_server["inbox"][0]["data"])
    body = "".join(part.get_payload(decode=True).decode("utf-8") for part in message.walk()
                   if part.get_content_type() == "text/plain")
    assert f"due {due}" in body and sub["name"] in body

    # what runs when, and how the last runs went
    listing = ckan(ini, "lgdp", "schedule", "--list")
    assert listing.returncode == 0, listing.stderr
    out = listing.stdout
    assert "scheduler: last tick " in out and f"pid {sched.pid}" in out
    pull = _section(out, "pull")
    assert "cron:     */2 * * * * *" in pull and "enabled:  yes" in pull and "next run: 20" in pull
    assert ": ok (" in pull, pull
    remind = _section(out, "remind")
    assert ": ok (" in remind and "e-mails sent" in remind, remind
    deliver = _section(out, "deliver")
    assert "cron:     (empty)" in deliver and "enabled:  no" in deliver and "last run: never" in deliver

    # and everything is ok now: a live worker takes the jobs, the scheduler ticks
    status = helpers.call_action("lgdp_status_show", {"user": people["sysadmin"]["name"], "ignore_auth": False})
    assert status["ok"] is True, status
    assert status["services"]["scheduler"]["pid"] == sched.pid
    said = ckan(ini, "lgdp", "status")
    assert said.returncode == 0, said.stdout + said.stderr
    assert "ok   scheduler last tick" in said.stdout and f"pid {worker.pid}" in said.stdout
    assert "ok: jobs are being taken" in said.stdout


def test_a_second_scheduler_waits_and_takes_over_when_the_first_dies(tmp_path, processes):
    ini = write_ini(tmp_path, **{**NO_SCHEDULES, "ckanext.lgdp.schedule.deliver": "0 3 1 1 *",
                                 "ckanext.lgdp.scheduler.heartbeat_seconds": "1"})
    first = processes.start(ini, "lgdp", "scheduler")
    wait_until(lambda: _tick_pid() == first.pid, 90, "the first scheduler never ticked")
    second = processes.start(ini, "lgdp", "scheduler")
    wait_until(lambda: "waits for the lock" in Processes.log_of(second), 90, "the second scheduler did not wait")
    time.sleep(2)
    assert _tick_pid() == first.pid and scheduler.leader().endswith(f":{first.pid}")

    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    killed = time.monotonic()
    wait_until(lambda: _tick_pid() == second.pid, 10, "the second scheduler did not take over")
    assert time.monotonic() - killed < 6  # the lock lasts 3 heartbeats
    assert "leads" in Processes.log_of(second)


def test_a_run_that_fails_is_recorded_and_queued_again(monkeypatch):
    from ckanext.lgdp.ops import worker as ops_worker

    def boom() -> str:
        raise RuntimeError("the council's server answered nonsense")

    monkeypatch.setitem(scheduler.JOBS, "boom", scheduler.ScheduledJob("boom", "a job that fails", "-", boom))
    scheduler.tick("boom")
    scheduler.tick("boom")
    runs = scheduler.last_runs()["boom"]
    assert runs["tick"] == "still waiting" and runs["queued_at"]
    assert ckan_jobs.get_queue("default").job_ids == [scheduler.job_id("boom")]

    # the worker (in this process, where the failing job is known) runs it
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ops_worker.work(["default"], burst=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    job = Job.fetch(scheduler.job_id("boom"), connection=connect_to_redis())
    assert job.get_status() == "failed"
    runs = scheduler.last_runs()["boom"]
    assert runs["outcome"] == "failed" and runs["error"] == "the council's server answered nonsense"
    assert float(runs["finished_at"]) >= float(runs["started_at"])

    # the next tick queues it again
    scheduler.tick("boom")
    assert scheduler.last_runs()["boom"]["tick"] == "queued"
    assert Job.fetch(scheduler.job_id("boom"), connection=connect_to_redis()).get_status() == "queued"

    # a run "started" by a worker that is gone (killed during it) is lost: queued again
    job = Job.fetch(scheduler.job_id("boom"), connection=connect_to_redis())
    ckan_jobs.get_queue("default").remove(job)
    job.set_status("started")
    job.worker_name = "a-worker-killed-during-the-run"
    job.save()
    scheduler.tick("boom")
    assert scheduler.last_runs()["boom"]["tick"] == "queued again: the worker running the last run is gone"
    assert ckan_jobs.get_queue("default").job_ids == [scheduler.job_id("boom")]

    # a run "queued" but in no queue (taken by a worker that died before it
    # started it) is lost too
    job = Job.fetch(scheduler.job_id("boom"), connection=connect_to_redis())
    ckan_jobs.get_queue("default").remove(job)
    assert job.get_status() == "queued"
    scheduler.tick("boom")
    assert scheduler.last_runs()["boom"]["tick"] == "queued again: the last run was queued but is in no queue"
    assert ckan_jobs.get_queue("default").job_ids == [scheduler.job_id("boom")]
