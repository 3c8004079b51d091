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

Crash safety is that of the process that runs the job, now the worker
itself: an upload it was validating when it died (``kill -9``, out of
memory) stays "running" under this process's id, which ``ckan lgdp sweep``
(run when the worker starts, and on every read of the upload) sees is gone,
and queues again; consolidation is idempotent (a council-period's rows are
replaced in one transaction), so a consolidation job lost with the worker
is made whole by the next acceptance or ``ckan lgdp consolidate``.
"""
from __future__ import annotations

import logging
from typing import Any

from rq.job import Job
from rq.queue import Queue
from rq.worker import DEFAULT_WORKER_TTL, WorkerStatus

from ckan.lib import jobs as ckan_jobs
from ckan.model import meta

log = logging.getLogger(__name__)

# The queues of the platform, in the order they are served: a council waits
# for its validation report, consolidation and quality checks can wait.
QUEUES = ("lgdp:validation", "default")


class Worker(ckan_jobs.Worker):
    """CKAN's worker (its queues, prefixes and logging), jobs run in-process."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        title = (job.meta or {}).get("title")
        log.info("Worker %s starts job %s from queue \"%s\"", self.key,
                 f"{job.id} ({title})" if title else job.id, ckan_jobs.remove_queue_name_prefix(job.origin))
        self.set_state(WorkerStatus.BUSY)
        try:
            self.perform_job(job, queue)
        finally:
            self.set_state(WorkerStatus.IDLE)
            _fresh_session()
        log.info("Worker %s has finished job %s", self.key, job.id)

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


def work(queues: tuple[str, ...] | list[str], burst: bool = False, max_jobs: int | None = None) -> bool:
    """Serve ``queues`` (default: the platform's) until stopped, or until
    they are empty with ``burst``; True when a job was run."""
    worker = Worker(list(queues or QUEUES))
    kwargs: dict[str, Any] = {"burst": burst}
    if max_jobs:
        kwargs["max_jobs"] = max_jobs
    return worker.work(**kwargs)
