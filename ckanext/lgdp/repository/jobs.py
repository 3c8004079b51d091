"""Background work of the central repository: when a submission is accepted,
its rows are consolidated, then the return's period is checked again.

The checks read the return's table, so on a deadline day, with many
acceptances of one return in a row, one run of the checks per acceptance
would read the table again and again for little: the consolidation job
queues the checks of its return and period only when no run of them is
waiting already (one pending QA job per return and period, remembered in
Redis). The run clears that mark when it starts, before it reads the table,
so every consolidation is followed by a run of the checks that sees it.

A consolidation job records itself and its outcome in lgdp_consolidation
(repository/tracking.py). One that fails because PostgreSQL went away or
Solr is down says so in its RQ meta and fails; the sweep queues it again
after a pause, without counting that as one of its attempts.
"""
from __future__ import annotations

import logging
from typing import Any

from rq import get_current_job

import ckan.plugins.toolkit as tk
from ckan.lib.redis import connect_to_redis

from ckanext.lgdp import events
from ckanext.lgdp.ops import liveness
from ckanext.lgdp.repository import tracking
from ckanext.lgdp.repository.checks import run_qa

log = logging.getLogger(__name__)

QUEUE = "default"
# A pending mark whose job was lost (the queue emptied by hand) is taken over
# at the next acceptance; the expiry is only a backstop.
PENDING_SECONDS = 24 * 3600


def on_accepted(sender: str, **kwargs: Any) -> None:
    """An acceptance: its consolidation is recorded as pending and queued
    (with Redis down, left pending for the sweep: the acceptance stands)."""
    tracking.enqueue(sender, reset_attempts=True)


def consolidate_job(submission_id: str) -> dict[str, Any]:
    """Consolidate an accepted submission; the attempt and its outcome, a
    failure too, are recorded (repository.tracking.consolidate_recorded)."""
    job = get_current_job()
    try:
        result = tracking.consolidate_recorded(submission_id, job_id=job.id if job is not None else None)
    except Exception as e:
        if liveness.transient(e):
            liveness.mark_transient(e)
            log.warning("consolidation of %s stopped by an outage (%s): the sweep queues it again", submission_id, e)
        raise
    if result.get("return_id"):
        try:
            result["qa"] = "queued" if enqueue_qa(result["return_id"], result.get("period")) else "already queued"
        except Exception as e:  # noqa: BLE001 - the rows are in; the next consolidation queues the checks
            if not liveness.transient(e):
                raise
            log.warning("quality checks of %s not queued: %s", result["return_id"], e)
    log.info("consolidated %s: %s", submission_id, result)
    return result


def _pending_key(return_id: str, period: str | None) -> str:
    return f"ckan:{tk.config.get('ckan.site_id')}:lgdp:qa-pending:{return_id}:{period or '*'}"


def enqueue_qa(return_id: str, period: str | None = None) -> bool:
    """Queue the checks of a return (and period) unless a run of them is
    already waiting; True when this call queued it."""
    return liveness.enqueue_once(
        _pending_key(return_id, period),
        lambda: tk.enqueue_job(qa_job, [return_id, period], title=f"lgdp qa {return_id} {period or ''}".rstrip(),
                               queue=QUEUE),
        PENDING_SECONDS)


def qa_job(return_id: str, period: str | None = None) -> dict[str, int]:
    """Run the checks; clear the pending mark first, so that an acceptance
    consolidated while they run queues another run."""
    connect_to_redis().delete(_pending_key(return_id, period))
    result = run_qa(return_id, period)
    log.info("quality checks of %s %s: %s", return_id, period or "", result)
    return result


def subscriptions() -> dict[Any, list[Any]]:
    return {events.accepted: [on_accepted]}
