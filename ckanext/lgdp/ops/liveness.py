"""Is a background job still alive behind a record that says it is pending
or running, and did it fail for a service outage?

"The worker is alive" is no proof that the job is: a worker that was
killed and started again has the same host, a job whose last commit failed
leaves its record "running" under a worker that goes on with other jobs,
and RQ keeps a killed job "started" (and its worker's key) until the job's
timeout has passed. So a job counts as alive only when RQ says it waits in
a queue, or when RQ says it started and a live worker's own heartbeat
(fresh, and on this host its process still running) names it as its
current job: the same test the scheduler makes of its runs.

A job that fails because PostgreSQL went away or Solr is down (see
``transient``) marks itself so in its RQ meta (``mark_transient``) before it
fails: the sweep then queues it again after a pause, without counting the
failure as one of its attempts.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import socket
import time
from typing import Any, Callable, Iterator

import psycopg2
import sqlalchemy.exc as sa_exc
from rq import get_current_job
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.queue import Queue

from ckan.lib.redis import connect_to_redis

from ckanext.lgdp.ops.worker import live_heartbeats, pid_alive

log = logging.getLogger(__name__)

WAITING = ("queued", "deferred", "scheduled")
TRANSIENT_META = "lgdp_transient"


@dataclasses.dataclass(frozen=True)
class JobState:
    status: str | None  # RQ's status ("popped": "queued" in no queue); None when Redis has no such job
    alive: bool  # waiting in a queue, or being run by a live worker
    taken: bool  # a worker took it (started, or failed after starting)
    transient: bool  # it failed for a service outage, and said so
    ended_at: datetime.datetime | None = None


GONE = JobState(status=None, alive=False, taken=False, transient=False)


def process_alive(worker: str | None) -> bool | None:
    """Whether the process ``host:pid`` runs: True or False on this host,
    None (not known) for another host or no process."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return pid_alive(int(pid))


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_runs(job_id: str) -> bool:
    """Whether a live worker says, in its own heartbeat, that it runs this
    job now (fresh, and on this host its process exists; see
    ``ops.worker.heartbeats``). RQ's registration of the worker is no
    proof: it outlives a killed process by up to the job's timeout + 60 s."""
    return any(w.get("job") == job_id for w in live_heartbeats())


def job_state(job_id: str | None) -> JobState:
    """What RQ knows of a job, and whether it is alive."""
    if not job_id:
        return GONE

    redis = connect_to_redis()
    try:
        job = Job.fetch(job_id, connection=redis)
        status = job.get_status(refresh=True)
    except NoSuchJobError:
        return GONE
    status = getattr(status, "value", status)
    transient = bool((job.meta or {}).get(TRANSIENT_META))
    if status == "queued" and not _in_queue(redis, job):
        # A worker took it off its queue and has not said it started: it
        # does in a moment, or it was killed in between (RQ's blocking pop
        # from several queues leaves such a job "queued" in no list; a
        # Redis restarted from a snapshot may too). Looked at again after
        # the gap such a start takes.
        time.sleep(POP_GAP_SECONDS)
        status = job.get_status(refresh=True)
        status = getattr(status, "value", status)
        if status == "queued" and not _in_queue(redis, job):
            return JobState(status="popped", alive=False, taken=True, transient=False)
    if status in WAITING:
        return JobState(status=status, alive=True, taken=False, transient=False)
    if status == "started":
        return JobState(status=status, alive=worker_runs(job.id), taken=True, transient=False)
    return JobState(status=status, alive=False, taken=status == "failed", transient=transient and status == "failed",
                    ended_at=job.ended_at)


# Between a worker's pop of a job and its "started" (a few milliseconds).
POP_GAP_SECONDS = 1.0


def _in_queue(redis: Any, job: Job) -> bool:
    """Whether the job's id waits in its queue's list."""
    return redis.lpos(Queue.redis_queue_namespace_prefix + job.origin, job.id) is not None


# ---------------------------------------------------------------- service outages


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        if isinstance(orig, BaseException) and id(orig) not in seen:
            yield orig
            seen.add(id(orig))
        current = current.__cause__ or current.__context__


# What CKAN's SearchIndexError says when Solr cannot be reached (its text
# carries pysolr's), as against a document Solr refuses.
_UNREACHABLE = ("failed to connect", "could not connect", "unhandled error", "connection refused", "connection aborted", "timed out", "max retries",
                "name or service not known", "503", "service unavailable")


def transient(error: BaseException) -> bool:
    """Whether an error is a service outage the job should be retried after:
    PostgreSQL gone (a connection invalidated, psycopg2's OperationalError or
    InterfaceError), Solr or Redis unreachable. A value the table cannot
    hold, a bug, a refused document are not."""
    for e in _chain(error):
        if isinstance(e, sa_exc.DBAPIError) and (
                e.connection_invalidated or isinstance(e, (sa_exc.OperationalError, sa_exc.InterfaceError))):
            return True
        if isinstance(e, (psycopg2.OperationalError, psycopg2.InterfaceError)):
            return True
        if type(e).__name__ in ("SearchIndexError", "SearchError", "SolrError"):
            text = str(e).lower()
            if any(s in text for s in _UNREACHABLE):
                return True
        if type(e).__module__.startswith("redis") and type(e).__name__ in ("ConnectionError", "TimeoutError"):
            return True
        if isinstance(e, (ConnectionRefusedError, ConnectionResetError, socket.timeout)):
            return True
    return False


def mark_transient(error: BaseException) -> None:
    """Say in the running RQ job's meta that it failed for an outage (the
    sweep then retries it without counting an attempt). Best effort: with
    Redis down there is nothing to say it to."""
    try:
        job = get_current_job()
        if job is not None:
            job.meta[TRANSIENT_META] = f"{type(error).__name__}: {str(error)[:300]}"
            job.save_meta()
    except Exception:  # noqa: BLE001 - Redis is down too
        log.warning("could not mark the job as failed for an outage", exc_info=True)


# A job queued this long ago and not in Redis is lost (else: being queued now).
GRACE = datetime.timedelta(seconds=30)


def why_stopped(record: Any, since: datetime.datetime | None, stale: datetime.timedelta,
                retry_after: datetime.timedelta, now: datetime.datetime) -> str | None:
    """Why a pending or running job record (an upload's validation, a
    submission's consolidation: ``status``, ``job_id``, ``worker``,
    ``started_at``, ``attempts``) needs its job queued again: "lost",
    "killed" or "outage"; None while its job is alive, was queued a moment
    ago (``since``, within GRACE), or failed for an outage less than
    ``retry_after`` ago. A running record with no job in Redis and no known
    process is given ``stale`` from its start. Counts the attempt of a job
    killed before it marked its record running, and gives back the one an
    outage took."""
    state = job_state(record.job_id)
    if state.alive:
        # RQ's word, and the job's own process where it said which
        return "killed" if record.status == "running" and process_alive(record.worker) is False else None
    if state.status is None:  # Redis has no such job
        if record.status == "running":
            alive = process_alive(record.worker)
            if alive or (alive is None and record.started_at is not None and now - record.started_at < stale):
                return None
            return "killed"
        if since is not None and now - since < GRACE:
            return None
        return "lost"
    if state.transient:
        if state.ended_at is not None and now - state.ended_at.replace(tzinfo=None) < retry_after:
            return None
        if record.status == "running":
            record.attempts = max(0, (record.attempts or 0) - 1)
        return "outage"
    if record.status == "pending" and state.status == "finished":
        return "lost"  # it ran for an earlier record, or found nothing to do
    if record.status == "pending" and state.taken:
        record.attempts = (record.attempts or 0) + 1  # killed before it marked its record running
    return "killed"


# ---------------------------------------------------------------- one job waiting at a time


def _waiting(job_id: bytes | None) -> bool:
    if not job_id:
        return False
    redis = connect_to_redis()
    try:
        job = Job.fetch(job_id.decode(), connection=redis)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=True)
    status = getattr(status, "value", status)
    # "queued" in no queue: taken by a worker that starts it this moment
    # (and deletes the key) or was killed; queuing another is harmless.
    return status in WAITING and (status != "queued" or _in_queue(redis, job))


def enqueue_once(key: str, enqueue: Callable[[], Job], keep_seconds: int) -> bool:
    """Queue a job (``enqueue()``) unless one queued under ``key`` still
    waits; True when this call queued it. The key is claimed for a minute,
    then names the job for ``keep_seconds``; the job deletes the key when it
    starts, so a change made while it runs queues the next one. A key whose
    job is gone (the queue emptied, the job failed) is taken over."""
    redis = connect_to_redis()
    for _attempt in range(2):
        if redis.set(key, "", nx=True, ex=60):
            try:
                job = enqueue()
            except Exception:
                redis.delete(key)
                raise
            redis.set(key, job.id, xx=True, ex=keep_seconds)
            return True
        current = redis.get(key)
        if current == b"" or _waiting(current):
            return False  # being queued by another process this moment, or waiting
        redis.delete(key)
    return False

