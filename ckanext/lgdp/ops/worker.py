"""The platform's background worker: CKAN's RQ worker without a fork per job.

``ckan jobs worker`` forks a work horse for every job, and the horse loads
CKAN's environment again (``load_environment``) before it runs the job: 3 to
4 seconds per job whatever the job does. ``ckan lgdp worker`` runs the jobs
in its own process, one after the other, in the CKAN it loaded once at start:
the cost of a job is the job.

Between jobs the database session is rolled back and removed, so a job
never sees another's uncommitted state or stale objects. RQ's job timeout
still applies (SIGALRM in this process; a validation job that overruns is
marked as an error, the file kept). A warm shutdown (SIGTERM) lets the
running job finish, as with ``ckan jobs worker``.

Heartbeat. RQ's own registration of a worker says little about whether it
lives: the worker's key outlives a killed process by up to the job's
timeout + 60 s, and a worker that runs its jobs in-process writes nothing
while a job runs. So each worker process has its own heartbeat: a daemon
thread writes a small record (pid, host, state, current job, the last time
it took a job from each queue, the time) to Redis every
``ckanext.lgdp.worker.heartbeat_seconds``, whatever the job does, with a
time to live of a minute; a clean exit deletes it. Health
(``ops/health.py``) counts a worker live only while its record is fresh
(younger than 3 intervals) and, on the same host, its process exists.

Redis going away. The worker does not exit: a Redis error that ends RQ's
work loop (a heartbeat, a state change or the job's bookkeeping failing) is
logged, the worker waits (1 s, doubling up to
``ckanext.lgdp.worker.reconnect_max_seconds``) until Redis answers, and a
new RQ worker takes over in the same process. A job that was running when
Redis went away has done its work in the database, but RQ could not record
its end; one that was taken from the queue and not yet started is lost with
the connection (the validation sweep finds its upload). In burst mode the
worker exits non-zero instead (``RedisLost``): a batch run should fail, not
wait.

Crash safety is that of the process that runs the job, now the worker
itself: an upload it was validating when it died (``kill -9``, out of
memory) stays "running" under this process's id, which ``ckan lgdp sweep``
(run when the worker starts, on a schedule, and on every read of the upload)
sees is gone, and queues again; consolidation is idempotent (a
council-period's rows are replaced in one transaction), so a consolidation
job lost with the worker is made whole by the sweep.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Any, Callable

import redis.exceptions
from rq.job import Job
from rq.queue import Queue
from rq.worker import DEFAULT_WORKER_TTL, WorkerStatus

import ckan.plugins.toolkit as tk
from ckan.lib import jobs as ckan_jobs
from ckan.lib.redis import connect_to_redis
from ckan.model import meta

from ckanext.lgdp import config as lgdp_config

log = logging.getLogger(__name__)

__all__ = ["QUEUES", "RedisLost", "Worker", "heartbeat_key", "heartbeat_prefix", "heartbeats", "live_heartbeats",
           "pid_alive", "work"]

# The queues of the platform, in the order they are served: a council waits
# for its validation report, consolidation and quality checks can wait.
QUEUES = ("lgdp:validation", "default")

# What a lost Redis raises (BusyLoadingError, Redis starting, is a ConnectionError).
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

# A heartbeat is stale after this many intervals; its record is kept a
# minute, so that a worker that stopped beating is shown as such.
STALE_AFTER = 3
KEPT_SECONDS = 60
# The states of a worker that takes jobs (else "starting", "reconnecting").
LISTENING = ("idle", "busy")


class RedisLost(RuntimeError):
    """Redis went away while a burst worker was serving the queues."""


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is running (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def heartbeat_prefix() -> str:
    return f"ckan:{tk.config.get('ckan.site_id')}:lgdp:worker:"


def heartbeat_key(host: str, pid: int) -> str:
    return f"{heartbeat_prefix()}{host}:{pid}"


def heartbeats() -> list[dict[str, Any]]:
    """Every worker heartbeat record in Redis, each with ``age`` (seconds)
    and ``live``: fresh (younger than 3 of its intervals), listening (not
    starting, nor waiting for Redis) and, when written on this host, its
    process exists."""
    redis = connect_to_redis()
    keys = sorted(redis.scan_iter(match=heartbeat_prefix() + "*", count=1000))
    now = time.time()
    here = socket.gethostname()
    out = []
    for raw in redis.mget(keys) if keys else []:
        if not raw:
            continue  # expired between the scan and the read
        try:
            record = json.loads(raw)
            age = now - float(record["time"])
            fresh = age <= STALE_AFTER * float(record.get("interval") or 1)
        except (ValueError, KeyError, TypeError):
            continue
        alive = pid_alive(int(record["pid"])) if record.get("host") == here else True
        listening = record.get("state") in LISTENING
        out.append({**record, "age": round(max(age, 0.0), 1), "live": fresh and alive and listening,
                    "process": "alive" if alive else "gone"})
    return out


def live_heartbeats() -> list[dict[str, Any]]:
    return [w for w in heartbeats() if w["live"]]


class Heartbeat:
    """This process's heartbeat record, written by a daemon thread."""

    def __init__(self, queues: list[str], interval: int) -> None:
        self.interval = interval
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.key = heartbeat_key(self.host, self.pid)
        self.record: dict[str, Any] = {
            "pid": self.pid, "host": self.host, "queues": queues, "interval": interval,
            "started": time.time(), "state": "starting", "name": None,
            "job": None, "job_title": None, "job_queue": None, "job_started": None,
            "taken": {}, "jobs": 0, "last_job": None,
        }
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lgdp-heartbeat", daemon=True)
        self._failing = False

    def update(self, **fields: Any) -> None:
        with self._lock:
            self.record.update(fields)

    def busy(self, job: Job) -> None:
        queue = ckan_jobs.remove_queue_name_prefix(job.origin)
        now = time.time()
        with self._lock:
            self.record.update(state="busy", job=job.id, job_title=(job.meta or {}).get("title"),
                               job_queue=queue, job_started=now, last_job=job.id, jobs=self.record["jobs"] + 1)
            self.record["taken"] = {**self.record["taken"], queue: now}
        self.beat()

    def idle(self) -> None:
        self.update(state="idle", job=None, job_title=None, job_queue=None, job_started=None)
        self.beat()

    def beat(self) -> None:
        with self._lock:
            record = {**self.record, "time": time.time()}
        try:
            connect_to_redis().set(self.key, json.dumps(record), ex=max(KEPT_SECONDS, STALE_AFTER * self.interval))
        except REDIS_ERRORS as e:
            if not self._failing:
                log.warning("worker heartbeat not written: %s", e)
            self._failing = True
        else:
            if self._failing:
                log.info("worker heartbeat written again")
            self._failing = False

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 1)
        try:
            connect_to_redis().delete(self.key)
        except REDIS_ERRORS:
            pass  # it expires on its own


def _noting_redis_loss(method: Callable[..., Any]) -> Callable[..., Any]:
    """Remember on the worker that ``method`` failed on Redis (RQ's work loop
    catches the error, logs it and ends), then let the error go on."""

    @functools.wraps(method)
    def noted(self: Worker, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except REDIS_ERRORS as e:
            self.lost_redis = e
            raise

    return noted


class Worker(ckan_jobs.Worker):
    """CKAN's worker (its queues, prefixes and logging), jobs run in-process."""

    # RQ's own wait between two attempts to reach Redis while it dequeues
    # (60 s by default): set from ckanext.lgdp.worker.reconnect_max_seconds.
    max_connection_wait_time = 10.0

    def __init__(self, queues: list[str], heartbeat: Heartbeat | None = None, **kwargs: Any) -> None:
        super().__init__(queues, **kwargs)
        self.lost_redis: BaseException | None = None
        self.stop_asked = False
        self.lgdp_heartbeat = heartbeat

    def subscribe(self) -> None:
        # RQ's, with a handler: without one the listening thread dies with
        # the first Redis error, and the worker no longer hears `rq` commands
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=0.2, daemon=True,
                                                       exception_handler=_pubsub_error)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_asked = True
        super().request_stop(signum, frame)

    def execute_job(self, job: Job, queue: Queue) -> None:
        title = (job.meta or {}).get("title")
        log.info("Worker %s starts job %s from queue \"%s\"", self.key,
                 f"{job.id} ({title})" if title else job.id, ckan_jobs.remove_queue_name_prefix(job.origin))
        if self.lgdp_heartbeat:
            self.lgdp_heartbeat.busy(job)
        try:
            self.set_state(WorkerStatus.BUSY)
            self.perform_job(job, queue)
        finally:
            _fresh_session()
            if self.lgdp_heartbeat:
                self.lgdp_heartbeat.idle()
            self.set_state(WorkerStatus.IDLE)
        log.info("Worker %s has finished job %s", self.key, job.id)

    execute_job = _noting_redis_loss(execute_job)  # type: ignore[assignment]
    check_for_suspension = _noting_redis_loss(ckan_jobs.Worker.check_for_suspension)
    run_maintenance_tasks = _noting_redis_loss(ckan_jobs.Worker.run_maintenance_tasks)
    dequeue_job_and_maintain_ttl = _noting_redis_loss(ckan_jobs.Worker.dequeue_job_and_maintain_ttl)
    heartbeat = _noting_redis_loss(ckan_jobs.Worker.heartbeat)

    def perform_job(self, job: Job, queue: Queue) -> bool:
        # rq's own: CKAN's disposes of the database engine after every job,
        # which only a forked work horse needs.
        return super(ckan_jobs.Worker, self).perform_job(job, queue)

    def get_heartbeat_ttl(self, job: Job) -> int:
        # as rq's SimpleWorker: no work horse to watch, so the worker's key
        # must outlive the job's timeout
        if job.timeout == -1:
            return DEFAULT_WORKER_TTL
        return (job.timeout or DEFAULT_WORKER_TTL) + 60


def _pubsub_error(error: BaseException, pubsub: Any, thread: Any) -> None:
    """The command channel lost Redis: wait, the next read reconnects (and
    subscribes again)."""
    if not isinstance(error, REDIS_ERRORS):
        raise error
    log.debug("the worker's command channel lost Redis: %s", error)
    time.sleep(1)


def _fresh_session() -> None:
    """Roll back and drop the job's database session (whatever it left)."""
    try:
        meta.Session.rollback()
    except Exception:  # noqa: BLE001 - a broken connection: remove() below resets it
        log.exception("rolling back after a job failed")
    try:
        meta.Session.remove()
    except Exception:  # noqa: BLE001
        log.exception("removing the database session after a job failed")


def _redis_answers() -> bool:
    try:
        return bool(connect_to_redis().ping())
    except REDIS_ERRORS:
        return False


def _wait_for_redis(stopping: threading.Event, longest: float) -> None:
    """Wait until Redis answers (or a stop is asked), 1 s doubling up to ``longest``."""
    delay = 1.0
    while not stopping.is_set() and not _redis_answers():
        log.warning("Redis does not answer; trying again in %.0f s", delay)
        stopping.wait(delay)
        delay = min(delay * 2, longest)


def work(queues: tuple[str, ...] | list[str], burst: bool = False, max_jobs: int | None = None) -> bool:
    """Serve ``queues`` (default: the platform's) until stopped, or until
    they are empty with ``burst``; True when a job was run.

    :raises RedisLost: in burst mode, when Redis went away.
    """
    names = list(queues or QUEUES)
    longest = float(lgdp_config.worker_reconnect_max_seconds())
    beat = Heartbeat(names, lgdp_config.worker_heartbeat_seconds())
    stopping = threading.Event()
    worked = False
    beat.start()
    try:
        while True:
            worker: Worker | None = None
            lost: BaseException | None = None
            try:
                worker = Worker(names, heartbeat=beat)
                worker.max_connection_wait_time = longest
                beat.update(name=worker.name, state="idle")
                beat.beat()
                kwargs: dict[str, Any] = {"burst": burst}
                if max_jobs:
                    kwargs["max_jobs"] = max(1, max_jobs - beat.record["jobs"])
                worked = worker.work(**kwargs) or worked
            except REDIS_ERRORS as e:  # outside RQ's loop: starting (registering) or ending (teardown)
                lost = e
            if worker is not None:
                if worker.stop_asked:
                    return worked
                lost = lost or worker.lost_redis
            if lost is None:
                return worked
            if burst:
                raise RedisLost(str(lost) or lost.__class__.__name__)
            log.error("Worker process %s lost Redis (%s); waiting for it to come back", os.getpid(), lost)
            beat.update(state="reconnecting", name=None)
            previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
            for sig in previous:
                signal.signal(sig, lambda *_: stopping.set())
            try:
                _wait_for_redis(stopping, longest)
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            if stopping.is_set():
                return worked
            log.info("Redis answers again: a new worker takes over in process %s", os.getpid())
    finally:
        beat.stop()
