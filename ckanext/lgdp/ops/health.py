"""Service health: what the platform needs (PostgreSQL, Solr, Redis, the RQ
worker, the scheduler), how to tell whether it is there, and what a request
gets when it is not.

"ok" means jobs are actually being taken: a live worker (by its own
heartbeat, ops/worker.py) on each of the platform's queues, no queue whose
oldest job has waited past ckanext.lgdp.health.queue_stuck_seconds while no
worker took one, and a scheduler whose last tick is fresh (ops/scheduler.py).

The rule of writes: **an answer that is an error has written nothing; a
write that is stored is answered as a success.**

- Before a write, `guard_writes` refuses it with HTTP 503 and a message
  naming the service when the search index (Solr) or the job queue (Redis)
  is down. Its positive checks are remembered for
  ``ckanext.lgdp.service_check_ttl`` seconds, so an outage can begin after
  the check: what follows holds without it.
- The search index is part of the write's transaction: CKAN indexes a
  changed dataset in the session's ``before_commit``, so a Solr failure
  aborts the commit and nothing is stored (the answer, a 500 from CKAN, is
  made a 503 by `outages_are_503`). Each write commits once (an upload's
  resource, row, submission state, audit row and idempotency key together:
  submissions.actions.resource_create).
- The job queue is never part of it (an outbox): the work for the worker is
  stored as pending in the same transaction (an upload ``pending``, an
  acceptance's ``consolidation_status`` ``pending``, a delivery ``pending``)
  and queued after the commit. If Redis fails then, the request still
  answers success, and the sweeps queue the work when Redis is back
  (jobs.sweep for validations, the consolidation sweep, `ckan lgdp deliver`).
- `outages_are_503` turns an error answered while a service is down into a
  503 "nothing was changed" only when the request committed nothing. A
  request that committed and then failed (a path that breaks the rule) gets
  a 500 saying that part of it may be stored, never a 503.

Reads that need a missing service get a 503 with the same kind of message
instead of a 500.
"""
from __future__ import annotations

import datetime
import logging
import time
from typing import Any, Callable

import redis.exceptions
import requests
import sqlalchemy as sa
from flask import Flask, Response, g, has_request_context, jsonify, request
from markupsafe import escape
from rq.exceptions import NoSuchJobError
from rq.job import Job

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.lib import jobs as ckan_jobs
from ckan.lib import redis as ckan_redis
from ckan.lib.search.common import SearchError, SolrConnectionError

from ckanext.lgdp import config as lgdp_config
from ckanext.lgdp.ops import scheduler
from ckanext.lgdp.ops import worker as ops_worker

log = logging.getLogger(__name__)

SERVICE_LABELS = {
    "database": "the database (PostgreSQL)",
    "search": "the search service (Solr)",
    "jobs": "the job queue (Redis)",
    "worker": "the background worker",
}

# Remembered positive checks: service name -> monotonic time of the last success.
# Only successes are cached, so an outage is seen at once and recovery within
# one TTL. This is a cache of an external fact, not plugin state.
_last_ok: dict[str, float] = {}


def check_database() -> str | None:
    try:
        with model.meta.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as e:  # noqa: BLE001 - any failure means unavailable
        return str(e).splitlines()[0]
    return None


def check_search() -> str | None:
    url = tk.config.get("solr_url", "").rstrip("/")
    auth = None
    if tk.config.get("solr_user"):
        auth = (tk.config["solr_user"], tk.config.get("solr_password") or "")
    try:
        resp = requests.get(
            f"{url}/admin/ping",
            params={"wt": "json"},
            timeout=lgdp_config.service_check_timeout(),
            auth=auth,
        )
    except requests.RequestException as e:
        return f"cannot connect to {url}: {e.__class__.__name__}"
    if resp.status_code != 200:
        return f"{url}/admin/ping answered HTTP {resp.status_code}"
    return None


def check_jobs() -> str | None:
    try:
        conn = ckan_redis.connect_to_redis()
        conn.ping()
    except Exception as e:  # noqa: BLE001 - redis raises several classes
        return str(e) or e.__class__.__name__
    return None


CHECKS: dict[str, Callable[[], str | None]] = {
    "database": check_database,
    "search": check_search,
    "jobs": check_jobs,
}


def check(name: str, use_cache: bool = True) -> str | None:
    """Return None when service `name` answers, else a short reason."""
    now = time.monotonic()
    if use_cache and now - _last_ok.get(name, -1e9) < lgdp_config.service_check_ttl():
        return None
    problem = CHECKS[name]()
    if problem is None:
        _last_ok[name] = now
    else:
        _last_ok.pop(name, None)
    return problem


def status() -> dict[str, Any]:
    """Every service with ``ok`` and, when not ok, its ``error``; the worker,
    the scheduler and the queues with their details (see each function)."""
    out: dict[str, Any] = {}
    for name in CHECKS:
        problem = check(name, use_cache=False)
        out[name] = {"ok": problem is None}
        if problem:
            out[name]["error"] = problem
    if not out["jobs"]["ok"]:
        without = tk._("cannot be known while the job queue (Redis) does not answer")
        for name in ("worker", "scheduler", "queues"):
            out[name] = {"ok": False, "error": without}
        return out
    try:
        workers = ops_worker.heartbeats()
        out["worker"] = worker_status(workers)
        out["scheduler"] = scheduler_status()
        out["queues"] = queues_status([w for w in workers if w["live"]])
    except ops_worker.REDIS_ERRORS as e:  # Redis went away between the checks
        for name in ("worker", "scheduler", "queues"):
            out.setdefault(name, {"ok": False, "error": str(e) or e.__class__.__name__})
    return out


def _since(epoch: float | None) -> float | None:
    return None if epoch is None else round(max(time.time() - float(epoch), 0.0), 1)


def worker_status(workers: list[dict[str, Any]]) -> dict[str, Any]:
    """Live workers by their own heartbeat (ops/worker.py), not by RQ's
    registration, which outlives a killed worker by up to the job timeout +
    60 s. Ok when each of the platform's queues has a live worker.

    ``{"ok", "live": n, "workers": [{host, pid, state, queues, job, job_title,
    job_queue, job_age, jobs, last_job, heartbeat_age, live, process}]}``
    """
    live = [w for w in workers if w["live"]]
    missing = [q for q in ops_worker.QUEUES if not any(q in w.get("queues", ()) for w in live)]
    out: dict[str, Any] = {
        "ok": not missing,
        "live": len(live),
        "workers": [
            {"host": w.get("host"), "pid": w.get("pid"), "state": w.get("state"), "queues": w.get("queues", []),
             "job": w.get("job"), "job_title": w.get("job_title"), "job_queue": w.get("job_queue"),
             "job_age": _since(w.get("job_started")), "jobs": w.get("jobs", 0), "last_job": w.get("last_job"),
             "heartbeat_age": w["age"], "live": w["live"], "process": w["process"]}
            for w in workers
        ],
    }
    if missing:
        out["error"] = tk._("no worker listens on queue {queue} (no live worker heartbeat)").format(
            queue=", ".join(missing))
    return out


def scheduler_status() -> dict[str, Any]:
    """The leading scheduler's last tick and its age; ok while it is younger
    than 3 of its heartbeat intervals (or when no job is scheduled at all:
    the operator runs the commands from cron).

    ``{"ok", "scheduled": n, "last_tick": ISO, "age": s, "host", "pid", "interval"}``
    """
    scheduled = sum(1 for name in scheduler.JOBS if lgdp_config.schedule_cron(name))
    tick = scheduler.last_tick()
    out: dict[str, Any] = {"ok": True, "scheduled": scheduled, "last_tick": None, "age": None}
    if tick:
        out.update(last_tick=datetime.datetime.fromtimestamp(tick["time"], datetime.timezone.utc).isoformat(
            timespec="seconds"), age=_since(tick["time"]), host=tick.get("host"), pid=tick.get("pid"),
            interval=tick.get("interval"))
    if not scheduled:
        return out
    if not tick:
        out.update(ok=False, error=tk._("no scheduler has run (ckan lgdp scheduler)"))
    elif out["age"] > ops_worker.STALE_AFTER * float(tick.get("interval") or 1):
        out.update(ok=False, error=tk._("the scheduler's last tick was {age} s ago").format(age=int(out["age"])))
    return out


def queues_status(live: list[dict[str, Any]]) -> dict[str, Any]:
    """Each platform queue's depth and its oldest job's age. Not ok when the
    oldest job has waited longer than ckanext.lgdp.health.queue_stuck_seconds
    and no live worker took a job from that queue in as long.

    ``{"ok", "queues": {name: {"ok", "depth", "oldest_age", "last_taken_age"}}}``
    """
    threshold = lgdp_config.queue_stuck_seconds()
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    queues: dict[str, Any] = {}
    stuck = []
    for name in ops_worker.QUEUES:
        queue = ckan_jobs.get_queue(name)
        depth = queue.count
        oldest_age = None
        for ident in queue.get_job_ids(0, 9) if depth else []:
            try:
                enqueued = Job.fetch(ident, connection=queue.connection).enqueued_at
            except NoSuchJobError:
                continue
            if enqueued is not None:
                enqueued = enqueued.replace(tzinfo=None)
                oldest_age = round(max((now - enqueued).total_seconds(), 0.0), 1)
                break
        taken = [float(w.get("taken", {}).get(name)) for w in live if w.get("taken", {}).get(name)]
        last_taken_age = _since(max(taken)) if taken else None
        ok = not (oldest_age is not None and oldest_age > threshold
                  and (last_taken_age is None or last_taken_age > threshold))
        queues[name] = {"ok": ok, "depth": depth, "oldest_age": oldest_age, "last_taken_age": last_taken_age}
        if not ok:
            stuck.append(tk._("the oldest job of queue {queue} has waited {age} s and no worker took a job "
                              "from it meanwhile").format(queue=name, age=int(oldest_age or 0)))
    out: dict[str, Any] = {"ok": not stuck, "queues": queues}
    if stuck:
        out["error"] = "; ".join(stuck)
    return out


def _label(service: str) -> str:
    """The service's label, to begin a sentence with."""
    label = SERVICE_LABELS[service]
    return label[0].upper() + label[1:]


def unavailable_message(service: str) -> str:
    return tk._(
        "{service} is not available at the moment, so nothing was changed. "
        "Please try again in a few minutes; if it persists, tell the platform "
        "administrators."
    ).format(service=_label(service))


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _write_needs_services() -> bool:
    """Whether the current request may write (so must find its services first)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    path = request.path
    if _is_api(path):
        action_name = path.rstrip("/").rsplit("/", 1)[-1]
        try:
            action = tk.get_action(action_name)
        except (KeyError, ValueError):
            return False  # CKAN itself answers 400 for an unknown action
        return not getattr(action, "side_effect_free", False)
    # Browser forms: log-in and log-out must work whatever the state of Solr.
    return not path.startswith(("/user/login", "/user/_logout", "/login_generic"))


def _unavailable(service: str) -> Response:
    message = unavailable_message(service)
    if _is_api(request.path):
        resp = jsonify(
            {
                "help": request.url,
                "success": False,
                "error": {"__type": "Service Unavailable", "message": message},
            }
        )
    else:
        try:
            page = tk.render("lgdp/service_unavailable.html", {"message": message, "service": service})
        except Exception:  # noqa: BLE001 - the page itself may need the lost service
            # (the signed-in user, say, is read from the database)
            title = tk._("Service unavailable")
            site = tk.config.get("ckan.site_title") or ""
            page = (
                f"<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
                f"<title>{escape(title)} - {escape(site)}</title></head>"
                f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p>"
                f"<p>{escape(site)}</p></body></html>"
            )
        resp = Response(page, mimetype="text/html")
    resp.status_code = 503
    resp.headers["Retry-After"] = "30"
    return resp


def guard_writes() -> Response | None:
    """Flask before_request hook: refuse a write whose services are down
    (checked with the remembered positive checks: see the module's rule for
    an outage that begins after this check)."""
    g.lgdp_committed = False  # set by _note_commit: this request stored something
    if not _write_needs_services():
        return None
    for service in ("search", "jobs"):
        problem = check(service)
        if problem:
            log.warning("refusing %s %s: %s down (%s)", request.method, request.path, service, problem)
            return _unavailable(service)
    return None


def outages_are_503(response: Response) -> Response:
    """Flask after_request hook: an error answered while a service is down
    (CKAN says 500, or 409 "Search Error" from the action API) is an outage
    the client should retry later: answer 503 and name the service, when
    the request stored nothing (otherwise `_stored_then_failed`)."""
    if response.status_code == 500 or (
        response.status_code == 409 and _is_api(request.path) and _api_error_type(response) == "Search Error"
    ):
        for service in ("database", "search", "jobs"):
            if check(service, use_cache=False):
                return _stored_then_failed(service) or _unavailable(service)
    return response


def _stored_then_failed(service: str) -> Response | None:
    """The answer to a request that committed a change and then failed on
    `service`: a 500 that says so (a 503 would tell the client that nothing
    changed). None when the request committed nothing."""
    if not getattr(g, "lgdp_committed", False):
        return None
    log.error("%s %s stored a change and then failed: %s down", request.method, request.path, service)
    message = tk._(
        "{service} failed after part of this request was saved. Check what was saved "
        "before trying again; if it persists, tell the platform administrators."
    ).format(service=_label(service))
    if _is_api(request.path):
        resp = jsonify({"help": request.url, "success": False,
                        "error": {"__type": "Internal Server Error", "message": message}})
    else:
        resp = Response(f"<!doctype html><title>Error</title><h1>Error</h1><p>{escape(message)}</p>",
                        mimetype="text/html")
    resp.status_code = 500
    return resp


# ---------------------------------------------------------------- what a request stored
#
# A request's commits that carried changes (flushed rows) set
# ``g.lgdp_committed``; CKAN's own commit of a user's last-active time happens
# before guard_writes resets it.


def _note_flush(session: Any, flush_context: Any) -> None:
    if session.new or session.dirty or session.deleted:
        session.info["lgdp_changed"] = True


def _note_commit(session: Any) -> None:
    if session.info.pop("lgdp_changed", False) and has_request_context():
        g.lgdp_committed = True


def _note_rollback(session: Any) -> None:
    session.info.pop("lgdp_changed", None)


def _listen_for_commits() -> None:
    for name, fn in (("after_flush", _note_flush), ("after_commit", _note_commit),
                     ("after_rollback", _note_rollback)):
        if not sa.event.contains(model.Session, name, fn):
            sa.event.listen(model.Session, name, fn)


def _api_error_type(response: Response) -> str | None:
    if not response.is_json:
        return None
    body = response.get_json(silent=True) or {}
    return (body.get("error") or {}).get("__type")


def register(app: Flask) -> None:
    _listen_for_commits()
    app.before_request(guard_writes)
    app.after_request(outages_are_503)

    def on_search_down(error: Exception) -> Response:
        log.warning("search unavailable during %s: %s", request.path, error)
        return _stored_then_failed("search") or _unavailable("search")

    def on_database_error(error: Exception) -> Response:
        # Raised anywhere in a request, CKAN's own error page among them: that
        # page reads the signed-in user from the database, fails again, and
        # the error would leave the application as a bare 500.
        problem = check("database", use_cache=False)
        if problem is None:
            raise error  # not an outage: CKAN's 500 page
        log.warning("database unavailable during %s: %s", request.path, problem)
        return _unavailable("database")

    def on_jobs_down(error: Exception) -> Response:
        log.warning("job queue unavailable during %s: %s", request.path, error)
        return _stored_then_failed("jobs") or _unavailable("jobs")

    app.register_error_handler(SolrConnectionError, on_search_down)
    app.register_error_handler(SearchError, on_search_down)
    app.register_error_handler(redis.exceptions.ConnectionError, on_jobs_down)
    app.register_error_handler(sa.exc.DBAPIError, on_database_error)
