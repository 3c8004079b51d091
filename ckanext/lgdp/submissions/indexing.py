"""The search documents of submissions, refreshed in batches.

A submission's state lives in lgdp_submission_state (model/submission_state.py).
A step marks the submission's search document stale in the step's own
transaction (``mark_for_search``); after the commit one refresh job is
queued unless one is waiting already (a Redis mark, as the quality checks
are coalesced), at the front of the validation queue, so that a burst of
steps costs one batch, not one reindex each. The job takes the marks, indexes
those datasets with CKAN's own indexer (package_show, before_dataset_index,
permission labels) and forgets the marks that are not newer than what it
indexed. A mark left behind by a lost job or a Solr outage is taken by the
scheduler's ``search`` entry (``ckan lgdp search-refresh``) within a minute.

Between the step and the refresh, package_search may answer from the old
document. It never lets anyone see more than the current state allows: a
stale document is left out of the answers of every user whom the current
state denies (ckanext.lgdp.gate, ``hide_stale``), and stays out of the
answers of those it now allows until it is refreshed. Direct reads (package_show, pages,
downloads, the DataStore) decide from the table, at once.
"""
from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from redis.exceptions import RedisError

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.lib.redis import connect_to_redis
from ckan.lib.search import index_for
from ckan.lib.search.common import SearchIndexError, make_connection

from ckanext.lgdp.model import submission_state as state_table
from ckanext.lgdp.ops import liveness

log = logging.getLogger(__name__)

QUEUE = "lgdp:validation"
BATCH = 500
PENDING_SECONDS = 3600
# session.info key: this transaction marked search documents stale
_MARKED = "lgdp_search_marked"
# how CKAN's own rebuild reads a dataset for its document
_INDEXING = {"ignore_auth": True, "validate": False, "use_cache": False}


def mark(package_ids: list[str]) -> None:
    """Mark these datasets' search documents stale in the current
    transaction; a refresh is queued once it commits."""
    state_table.mark_for_search(package_ids)
    model.Session().info[_MARKED] = True


def _pending_key() -> str:
    return f"ckan:{tk.config.get('ckan.site_id')}:lgdp:search-refresh-pending"


def enqueue_refresh() -> bool:
    """Queue a refresh unless one is waiting; True when this call queued it."""
    return liveness.enqueue_once(
        _pending_key(),
        lambda: tk.enqueue_job(refresh_job, [], title="lgdp search refresh", queue=QUEUE,
                               rq_kwargs={"at_front": True}),
        PENDING_SECONDS)


def _after_commit(session: Any) -> None:
    if not session.info.pop(_MARKED, False):
        return
    try:
        enqueue_refresh()
    except RedisError as e:
        log.warning("search refresh not queued (%s): the scheduler's search entry takes the marks", e)


def refresh_job() -> dict[str, int]:
    """The worker's batch: clear the pending mark first (a step committed
    while this runs queues another batch), then refresh."""
    connect_to_redis().delete(_pending_key())
    result = refresh()
    log.info("search refresh: %s", result)
    return result


def refresh(limit: int = BATCH) -> dict[str, int]:
    """Index the datasets marked stale (the oldest ``limit``, then as many
    batches as there are), then forget the marks not made again meanwhile.

    :raises SearchIndexError: when Solr cannot be written (the marks stay)
    """
    done = gone = 0
    while True:
        marks = state_table.pending_search(limit)
        if not marks:
            break
        ids = [pid for pid, _at in marks]
        present = {pid for (pid,) in model.Session.query(model.Package.id).filter(model.Package.id.in_(ids))}
        index = index_for("package")
        for pid in ids:
            if pid not in present:
                index.delete_package({"id": pid})  # purged meanwhile
                gone += 1
        for pid in sorted(present):
            # CKAN's own document: package_show (with our state on it),
            # before_dataset_index, the permission labels; Solr's soft
            # commit makes it visible within a second
            index.update_dict(tk.get_action("package_show")(dict(_INDEXING), {"id": pid}), defer_commit=True)
        if tk.asbool(tk.config.get("ckan.search.solr_commit")):
            # CKAN's own setting, as for each dataset it indexes: here one
            # commit for the batch, and the documents are searchable when it
            # returns (with it off, as in config/platform.ini, Solr's soft
            # commit shows them within a second)
            _commit()
        state_table.clear_search_marks(marks)
        model.Session.commit()
        done += len(present)
        if len(marks) < limit:
            break
    return {"refreshed": done, "removed": gone}


def _commit() -> None:
    try:
        make_connection().commit(waitSearcher=True)
    except Exception as e:  # noqa: BLE001 - pysolr's and the connection's errors alike
        raise SearchIndexError(e) from e


def backlog() -> dict[str, Any]:
    """How many documents wait for a refresh, and for how long the oldest."""
    count, oldest = state_table.search_backlog()
    return {"pending": count, "oldest": oldest.isoformat(timespec="seconds") if oldest else None}


def listen() -> None:
    """Queue a refresh after each commit that marked documents stale."""
    # (a transaction rolled back after a mark leaves the flag: the next
    # commit queues a refresh that finds nothing to do, which is harmless)
    if not sa.event.contains(model.Session, "after_commit", _after_commit):
        sa.event.listen(model.Session, "after_commit", _after_commit)


listen()
