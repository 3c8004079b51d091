"""The platform's scheduler: ``ckan -c INI lgdp scheduler``, one long-running
process on APScheduler 3 (cron triggers, a thread pool), no loop of our own.

What runs when is configuration: one key per job,
``ckanext.lgdp.schedule.<job>``, a cron string of 5 fields (minute hour day
month weekday; weekday 0 or 7 is Sunday, as in crontab) or 6 with the
seconds first (``*/2 * * * * *``, which is how the tests run it fast); an
empty value disables the job, for operators who prefer cron and run the
``ckan lgdp pull|deliver|remind|reviews|expect|sweep`` commands themselves
(they stay). ``ckan lgdp schedule --list`` shows each job, its cron, the next
run and the last outcome.

Where the work runs. A tick does not run the job in this process: it hands
it to the RQ worker (``tk.enqueue_job`` on the default queue), with a job id
fixed per schedule (``lgdp-schedule-<site>-<job>``). Why:

- a run waiting in the queue (or running) is not queued a second time: the
  tick sees the job of that id is still queued or started and leaves it
  (coalescing: a slow pull never piles up runs behind it);
- "the worker is down" becomes visible where it is looked for: the run waits
  in the queue, ``lgdp_status_show`` says the default queue's oldest job is
  getting old and no worker takes it, instead of a scheduler that quietly
  does the worker's work (or does not);
- a slow pull (council servers that take their time) or a large sweep never
  delays the next tick of another job, and the scheduler stays a small
  process that only keeps time;
- the jobs run where every other job runs: the database session handling,
  the job timeout (``ckanext.lgdp.schedule.job_timeout``) and the logs of
  ``ckan lgdp worker``.

A run whose job id is "started" by a worker that has no live heartbeat (a
worker killed during it), or "queued" but in no queue (taken by a worker
that died before it started it), is lost: it is queued again. A run that
raises is logged by the worker, marked failed in RQ and in the run's record,
and the next tick queues it again; a tick that fails (Redis away) is logged
and the scheduler goes on.

The last run of each job (queued at, started, finished, outcome, a one-line
summary or the error) is kept in Redis, written by the tick and by the
worker: ``ckan:<site>:lgdp:scheduler:run:<job>``.

One scheduler leads. A process takes a Redis lock
(``...:lgdp:scheduler:leader``, SET NX EX, 3 heartbeat intervals) before it
ticks, and renews it with every heartbeat; a second scheduler waits, and
takes over within 3 intervals of the leader's death. Every heartbeat
(``ckanext.lgdp.scheduler.heartbeat_seconds``) the leader also writes its
"last tick" record (host, pid, time, interval, next run of each job), which
``lgdp_status_show`` reads: a tick older than 3 intervals is a scheduler
that is not running.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from rq.exceptions import NoSuchJobError
from rq.job import Job

import ckan.plugins.toolkit as tk
from ckan.lib import jobs as ckan_jobs
from ckan.lib.redis import connect_to_redis

from ckanext.lgdp import config as lgdp_config
from ckanext.lgdp.ops import liveness
from ckanext.lgdp.ops import worker as ops_worker

log = logging.getLogger(__name__)

__all__ = [
    "JOBS", "CronError", "ScheduledJob", "configured", "describe", "enqueue", "job_id", "last_runs",
    "last_tick", "leader", "parse_cron", "redis_key", "run_scheduled", "serve", "tick",
]

QUEUE = "default"
# The last tick is kept this long, so that "last tick 3 hours ago" can be said.
TICK_KEPT_SECONDS = 7 * 24 * 3600
RUN_KEPT_SECONDS = 30 * 24 * 3600


class CronError(ValueError):
    """A schedule's cron string cannot be read."""


# ---------------------------------------------------------------- the jobs


def _context() -> dict[str, Any]:
    """A fresh context of the site user (each call_action gets its own)."""
    site_user = tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]
    return {"user": site_user, "ignore_auth": True}


def _pull() -> str:
    runs = tk.get_action("lgdp_connector_run")(_context(), {"due": True})["runs"]
    outcomes: dict[str, int] = {}
    for run in runs:
        outcomes[run["outcome"]] = outcomes.get(run["outcome"], 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) or "no connector was due"


def _deliver() -> str:
    result = tk.get_action("lgdp_delivery_run")(_context(), {})
    return f"{result['delivered']} delivered, {result['pending']} to retry later, {result['dead']} dead-lettered"


def _remind() -> str:
    result = tk.get_action("lgdp_reminder_run")(_context(), {})
    entries = result["reminders"]
    sent = sum(e["sent"] for e in entries)
    problems = [f"{e['council']}: {e['error']}" for e in entries if e["error"]]
    summary = f"{len(entries)} councils to remind, {sent} e-mails sent"
    return summary + (f"; problems: {'; '.join(problems)}" if problems else "")


def _reviews() -> str:
    moved = tk.get_action("lgdp_reviews_run")(_context(), {})["moved"]
    return f"{len(moved)} returns moved to under_review" + (f": {', '.join(moved)}" if moved else "")


def _expect() -> str:
    result = tk.get_action("lgdp_submission_expect")(_context(), {})
    return (f"{result['created']} expected submissions created, {result['existing']} already there, "
            f"{result['overdue_refreshed']} overdue ones refreshed")


def _sweep() -> str:
    swept = tk.get_action("lgdp_validation_sweep")(_context(), {})
    found = tk.get_action("lgdp_consolidation_sweep")(_context(), {})
    return (f"{swept['retried']} uploads queued again, {swept['interrupted']} marked interrupted; "
            f"{len(found['consolidated'])} accepted submissions consolidated, "
            f"{len(found['failed'])} still not consolidated")


def _search() -> str:
    result = tk.get_action("lgdp_search_refresh")(_context(), {})
    return f"{result['refreshed']} search documents refreshed, {result['pending']} still stale"


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    what: str  # what it does, for `schedule --list`
    command: str  # the cron-friendly command that does the same
    run: Callable[[], str]  # runs in the worker; a one-line summary


JOBS: dict[str, ScheduledJob] = {job.name: job for job in (
    ScheduledJob("pull", "pull connectors that are due", "ckan lgdp pull", _pull),
    ScheduledJob("deliver", "event deliveries and their retries", "ckan lgdp deliver", _deliver),
    ScheduledJob("remind", "reminders of returns due and late", "ckan lgdp remind", _remind),
    ScheduledJob("reviews", "periodic reviews of returns", "ckan lgdp reviews", _reviews),
    ScheduledJob("expect", "expected submissions of the calendar", "ckan lgdp expect", _expect),
    ScheduledJob("sweep", "validation and consolidation sweep", "ckan lgdp sweep", _sweep),
    ScheduledJob("search", "search documents left stale (a lost refresh job, a Solr outage)",
                 "ckan lgdp search-refresh", _search),
)}


# ---------------------------------------------------------------- cron strings

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text) % 7
    if text.lower() in _WEEKDAYS:
        return _WEEKDAYS.index(text.lower())
    raise CronError(f"{text!r} is not a weekday (0-7, 0 and 7 are Sunday, or sun..sat)")


def _weekday_names(field: str) -> str:
    """crontab's weekday field (0 and 7: Sunday; lists, ranges, steps) as the
    list of day names APScheduler 3 reads (it counts from Monday, so numbers
    and steps cannot be handed over as they are)."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        part, slash, step_text = item.partition("/")
        if slash and not step_text.isdigit() or step_text == "0":
            raise CronError(f"{item!r}: a step is a whole number from 1")
        step = int(step_text) if slash else 1
        if part == "*":
            low, high = 0, 6
        elif "-" in part:
            first, last = part.split("-", 1)
            low, high = _weekday(first), _weekday(last)
            if last.strip() == "7":
                high = 7
        else:
            low = _weekday(part)
            high = 6 if slash else low
        if high < low:
            raise CronError(f"{item!r}: a range of weekdays runs forwards (e.g. 1-5)")
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def parse_cron(expr: str, timezone: str | datetime.tzinfo) -> Any:
    """A CronTrigger from 5 fields (minute hour day month weekday) or 6
    (second first); CronError with the reason when it cannot be read."""
    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise CronError(f"{expr!r} has {len(fields)} fields: give 5 (minute hour day month weekday) "
                        "or 6 (second minute hour day month weekday)")
    second, minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month,
                           day_of_week=_weekday_names(weekday), timezone=timezone)
    except CronError:
        raise
    except (ValueError, LookupError) as e:
        raise CronError(f"{expr!r}: {e}") from e


def configured() -> dict[str, Any]:
    """Each job's trigger from the configuration (None: disabled).

    :raises CronError: naming the key whose value cannot be read
    """
    timezone = lgdp_config.schedule_timezone()
    out: dict[str, Any] = {}
    for name in JOBS:
        expr = lgdp_config.schedule_cron(name)
        try:
            out[name] = parse_cron(expr, timezone) if expr else None
        except CronError as e:
            raise CronError(f"ckanext.lgdp.schedule.{name}: {e}") from e
    return out


# ---------------------------------------------------------------- Redis records


def redis_key(*parts: str) -> str:
    """A key of the scheduler's records in Redis."""
    return ":".join((f"ckan:{tk.config.get('ckan.site_id')}:lgdp:scheduler", *parts))


def job_id(name: str) -> str:
    """The RQ job id of a schedule's run: one waiting run per schedule."""
    return f"lgdp-schedule-{tk.config.get('ckan.site_id')}-{name}"


def _record(name: str, **fields: Any) -> None:
    redis = connect_to_redis()
    key = redis_key("run", name)
    redis.hset(key, mapping={k: "" if v is None else str(v) for k, v in fields.items()})
    redis.expire(key, RUN_KEPT_SECONDS)


def last_runs() -> dict[str, dict[str, str]]:
    """job -> its last run's record (queued_at, tick, started_at, finished_at,
    outcome, summary, error, worker; times in seconds since the epoch)."""
    redis = connect_to_redis()
    out = {}
    for name in JOBS:
        raw = redis.hgetall(redis_key("run", name))
        out[name] = {k.decode(): v.decode() for k, v in raw.items()}
    return out


def last_tick() -> dict[str, Any] | None:
    raw = connect_to_redis().get(redis_key("tick"))
    return json.loads(raw) if raw else None


# ---------------------------------------------------------------- a tick (in the scheduler)


def enqueue(name: str) -> str:
    """Queue a run of job ``name`` unless one is waiting or running; what
    happened, in words ("queued", "still waiting", "still running", or
    "queued again: ...")."""
    redis = connect_to_redis()
    ident = job_id(name)
    again = ""
    try:
        job = Job.fetch(ident, connection=redis)
    except NoSuchJobError:
        job = None
    if job is not None:
        status = job.get_status(refresh=False)
        queue_key = ckan_jobs.get_queue(QUEUE).key
        if status in ("deferred", "scheduled"):
            return "still waiting"
        if status == "queued":
            if redis.lpos(queue_key, ident) is not None:
                return "still waiting"
            time.sleep(0.5)  # a worker may be taking it this moment
            if job.get_status(refresh=True) != "queued" or redis.lpos(queue_key, ident) is not None:
                return "still running"
            again = "the last run was queued but is in no queue"
        elif status == "started":
            if liveness.worker_runs(ident):
                return "still running"
            again = "the worker running the last run is gone"
        job.delete()
    tk.enqueue_job(
        run_scheduled, [name], title=f"lgdp schedule {name}", queue=QUEUE,
        rq_kwargs={"job_id": ident, "timeout": lgdp_config.schedule_job_timeout()},
    )
    if again:
        log.warning("schedule %s: %s; queued again", name, again)
        return f"queued again: {again}"
    return "queued"


def tick(name: str) -> None:
    """APScheduler's job: queue a run; an error is logged, never raised."""
    now = time.time()
    try:
        outcome = enqueue(name)
    except Exception as e:  # noqa: BLE001 - the scheduler goes on whatever a tick meets
        if isinstance(e, ops_worker.REDIS_ERRORS):
            log.error("schedule %s: the run could not be queued: %s", name, e)
        else:
            log.exception("schedule %s: the run could not be queued", name)
        try:
            _record(name, tick_at=now, tick=f"not queued: {str(e) or e.__class__.__name__}")
        except Exception:  # noqa: BLE001 - Redis itself is away
            pass
        return
    log.info("schedule %s: %s", name, outcome)
    fields: dict[str, Any] = {"tick_at": now, "tick": outcome}
    if outcome.startswith("queued"):
        fields["queued_at"] = now
    _record(name, **fields)


# ---------------------------------------------------------------- a run (in the worker)


def run_scheduled(name: str) -> str:
    """The worker's side of a tick: run job ``name``, record the outcome.
    A run that raises is recorded as failed and raised again (RQ marks the
    job failed; the next tick queues it again)."""
    job = JOBS[name]
    me = f"{socket.gethostname()}:{os.getpid()}"
    _record(name, started_at=time.time(), finished_at=None, outcome="running", summary=None, error=None, worker=me)
    try:
        summary = job.run()
    except Exception as e:
        log.exception("scheduled %s failed", name)
        _record(name, finished_at=time.time(), outcome="failed", error=(str(e) or e.__class__.__name__)[:500])
        raise
    log.info("scheduled %s: %s", name, summary)
    _record(name, finished_at=time.time(), outcome="ok", summary=summary[:500])
    return summary


# ---------------------------------------------------------------- the process

# Take the lock when it is free or already ours, and renew it: one round trip.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _claim(me: str, ttl: int) -> bool:
    return bool(connect_to_redis().eval(_CLAIM, 1, redis_key("leader"), me, ttl))


def leader() -> str | None:
    raw = connect_to_redis().get(redis_key("leader"))
    return raw.decode() if raw else None


def _iso(when: datetime.datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None


def _write_tick(me: str, interval: int, since: float, scheduler: Any) -> None:
    record = {
        "time": time.time(), "host": me.rsplit(":", 1)[0], "pid": int(me.rsplit(":", 1)[1]),
        "interval": interval, "leading_since": since,
        "next": {job.id: _iso(job.next_run_time) for job in scheduler.get_jobs()},
    }
    connect_to_redis().set(redis_key("tick"), json.dumps(record), ex=TICK_KEPT_SECONDS)


def serve(stop: threading.Event) -> None:
    """Run the scheduler until ``stop`` is set: wait for the lead, tick the
    configured jobs while leading, write the heartbeat.

    :raises CronError: when a schedule cannot be read (before anything runs)
    """
    triggers = configured()
    interval = lgdp_config.scheduler_heartbeat_seconds()
    ttl = ops_worker.STALE_AFTER * interval
    me = f"{socket.gethostname()}:{os.getpid()}"
    scheduler = BackgroundScheduler(
        timezone=lgdp_config.schedule_timezone(),
        executors={"default": ThreadPoolExecutor(4)},
        # a tick missed while paused or busy runs once, not once per miss
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(30, 2 * interval)},
    )
    for name, trigger in triggers.items():
        if trigger is not None:
            scheduler.add_job(tick, trigger, args=[name], id=name, name=name)
        else:
            log.info("schedule %s is disabled (ckanext.lgdp.schedule.%s is empty)", name, name)
    scheduler.start(paused=True)
    leading, since, redis_away, told_waiting = False, 0.0, False, False
    try:
        while not stop.is_set():
            try:
                now_leading = _claim(me, ttl)
                if redis_away:
                    log.info("Redis answers again")
                redis_away = False
            except ops_worker.REDIS_ERRORS as e:
                if not redis_away:
                    log.error("Redis does not answer (%s): nothing can be queued until it does", e)
                redis_away = True
                now_leading = leading  # nobody can take the lock meanwhile
            if now_leading and not leading:
                since = time.time()
                log.info("scheduler %s leads: %s", me, ", ".join(
                    f"{n} [{lgdp_config.schedule_cron(n)}]" for n, t in triggers.items() if t) or "no job is scheduled")
                scheduler.resume()
                told_waiting = False
            elif leading and not now_leading:
                log.warning("scheduler %s lost the lead to %s: paused", me, _safe(leader))
                scheduler.pause()
            elif not now_leading and not told_waiting:
                log.info("another scheduler leads (%s): %s waits for the lock", _safe(leader), me)
                told_waiting = True
            leading = now_leading
            if leading and not redis_away:
                try:
                    _write_tick(me, interval, since, scheduler)
                except ops_worker.REDIS_ERRORS as e:
                    log.error("the scheduler's heartbeat was not written: %s", e)
            stop.wait(interval)
    finally:
        scheduler.shutdown(wait=False)
        try:
            connect_to_redis().eval(_RELEASE, 1, redis_key("leader"), me)
        except ops_worker.REDIS_ERRORS:
            pass  # it expires
        log.info("scheduler %s stopped", me)


def _safe(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except ops_worker.REDIS_ERRORS:
        return "?"


# ---------------------------------------------------------------- what runs when


def describe(now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """Each job: name, what, command, cron, enabled, next (ISO, from the
    leading scheduler's last tick when fresh, else computed), last run.
    A cron string that cannot be read is shown with its error."""
    timezone = lgdp_config.schedule_timezone()
    tick_record = None
    runs: dict[str, dict[str, str]] = {}
    try:
        tick_record = last_tick()
        runs = last_runs()
    except ops_worker.REDIS_ERRORS:
        pass
    scheduled_next: dict[str, str] = {}
    if tick_record and time.time() - tick_record["time"] <= ops_worker.STALE_AFTER * tick_record["interval"]:
        scheduled_next = tick_record.get("next") or {}
    out = []
    for name, job in JOBS.items():
        expr = lgdp_config.schedule_cron(name)
        entry: dict[str, Any] = {"name": name, "what": job.what, "command": job.command, "cron": expr,
                                 "enabled": bool(expr), "next": None, "error": None, "last": runs.get(name, {})}
        if expr:
            try:
                trigger = parse_cron(expr, timezone)
            except CronError as e:
                entry["error"] = str(e)
            else:
                if scheduled_next.get(name):
                    entry["next"] = scheduled_next[name]
                else:
                    start = now or datetime.datetime.now(trigger.timezone)
                    entry["next"] = _iso(trigger.get_next_fire_time(None, start))
        out.append(entry)
    return out
