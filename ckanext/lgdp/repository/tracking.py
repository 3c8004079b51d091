"""Where each accepted submission's consolidation stands, and the reconciler
that makes sure every one is eventually in its return's central table.

Every accepted submission is consolidated at least once, and consolidating
it again changes nothing (consolidate.replace_rows), so the rule is simple:
whatever is in doubt is queued again.

Why accepted rows went missing before this module (issue #22):

- A consolidation job killed with its worker stayed "started" in RQ until
  the job's timeout had passed, and the sweep counted "started" as waiting:
  the submission stayed "pending" and nothing ever queued it again. The
  next acceptance consolidates only its own council-period, so nothing else
  made the table whole short of a rebuild by hand.
- The outcome was recorded with ``package_patch`` of the submission (a
  dataset write and a Solr reindex). With Solr stopped or PostgreSQL
  restarting, that last write failed, the job failed with it, and the
  submission was left "pending" whether its rows were in or not; the sweep
  only looked again after ten minutes, when someone ran it.
- Validation left uploads "running" for good when its last commit failed
  (Solr, PostgreSQL), because the sweep believed any upload "running"
  under a live worker process (submissions/jobs.py): the submissions
  stayed drafts, were never accepted, and their rows never came.
- The race of two first consolidations of a new return made two DataStore
  tables for one standard version and wiped the first one's
  ``datastore_active`` flag (consolidate.py's docstring), so the first
  council's rows dropped out of what readers see.

Now the state lives in ``lgdp_consolidation`` (model/consolidation.py): a
job records itself before it touches the table and records the outcome
after the table's transaction has committed; nothing of it needs Solr. The
reconciler (``reconcile``, run by ``lgdp_consolidation_sweep`` and ``ckan
lgdp sweep``) reads every accepted submission and the return's tables
themselves (which council-periods they hold, from which upload, how many
rows) and queues again what is missing or stale, or whose job is no
longer alive (ops/liveness.py). A job killed MAX_ATTEMPTS times is
"interrupted": shown on the submission and in the API, announced as
``submission.consolidation_interrupted`` and listed by ``needing_attention``.
"""
from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc
from sqlalchemy.dialects.postgresql import insert

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import Context

from ckanext.lgdp import access, config
from ckanext.lgdp.events import announce
from ckanext.lgdp.model import Consolidation, Upload, submission_state
from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.model.consolidation import (
    CONSOLIDATION_STATES,
    IN_PROGRESS,
    NEEDS_ATTENTION,
)
from ckanext.lgdp.ops import faults, liveness
from ckanext.lgdp.register import audit
from ckanext.lgdp.repository import consolidate
from ckanext.lgdp.submissions import SUBMISSION_TYPE

log = logging.getLogger(__name__)

QUEUE = "default"
# A consolidation whose job was killed this many times is interrupted.
MAX_ATTEMPTS = 3
# A consolidation run in a process of another host (no pid to look at) and
# running for longer than this has stopped.
STALE_AFTER = datetime.timedelta(minutes=30)


def _iso(value: datetime.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def _parse(value: str | None) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


# ---------------------------------------------------------------- the record


def _reset(rec: Consolidation, upload_id: str) -> None:
    """A new file accepted: its consolidation starts afresh (what the table
    holds of the older one stays noted until it is replaced)."""
    rec.upload_id = upload_id
    rec.status = "pending"
    rec.attempts = 0
    rec.job_id = rec.worker = rec.problem = None
    rec.enqueued_at = rec.started_at = rec.finished_at = None


def record_of(pkg: model.Package, lock: bool = False) -> Consolidation:
    """The consolidation row of an accepted submission (``lock``: SELECT ...
    FOR UPDATE), made if missing (from what the dataset's extras said
    before the table existed), reset if another file was accepted since."""
    accepted = submission_state.state_or_initial(pkg.id).accepted_upload or ""
    legacy = pkg.extras.get("consolidation_status") or "pending"
    if legacy not in CONSOLIDATION_STATES:
        legacy = "pending"
    values: dict[str, Any] = {
        "submission_id": pkg.id, "return_id": pkg.extras.get("data_return") or "", "upload_id": accepted,
        "status": legacy, "attempts": 0, "problem": pkg.extras.get("consolidation_problem") or None,
        "updated_at": _now(),
    }
    if legacy == "consolidated":
        values.update(consolidated_upload=accepted, consolidated_at=_parse(pkg.extras.get("consolidated_at")))
    model.Session.execute(insert(Consolidation.__table__).values(**values).on_conflict_do_nothing())
    query = model.Session.query(Consolidation).filter(Consolidation.submission_id == pkg.id).populate_existing()
    rec = (query.with_for_update() if lock else query).one()
    if rec.upload_id != accepted:
        _reset(rec, accepted)
    return rec


def _outcome(rec: Consolidation) -> tuple[str, str]:
    """Where the consolidation stood before an attempt (for the audit)."""
    return ("pending" if rec.status == "running" else rec.status), rec.problem or ""


def _audit(pkg: model.Package, context: Context, before: tuple[str, str], rec: Consolidation) -> bool:
    """Audit a change of outcome; True when there was one."""
    after = (rec.status, rec.problem or "")
    if before == after:
        return False
    audit.record(context, object_type=SUBMISSION_TYPE, object_id=pkg.id, object_name=pkg.name,
                 action="consolidate", from_state=before[0] or None, to_state=rec.status, reason=rec.problem or None)
    return True


def _announce(pkg: model.Package, event_type: str, problem: str, attempts: int) -> None:
    group = model.Group.get(pkg.owner_org)
    announce(event_type, return_id=pkg.extras.get("data_return") or "", subject_kind="submission",
             subject_id=pkg.id, council_gss=group.extras.get("gss_code") if group is not None else None,
             data={"period": pkg.extras.get("period"), "problem": problem, "attempts": attempts})


# ---------------------------------------------------------------- one attempt


def failure_reason(error: BaseException) -> str:
    """What went wrong, in a sentence a coordinator can act on."""
    cause = getattr(error, "orig", None) or error
    detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:300]
    if isinstance(error, sqlalchemy.exc.DataError):
        return tk._("a value of the file does not fit the central table ({detail}); "
                    "return the submission to the council for a corrected file").format(detail=detail)
    return tk._("the central table could not be written ({detail}); retry, or ask the platform team").format(
        detail=detail)


def consolidate_recorded(submission_id: str, context: Context | None = None,
                         job_id: str | None = None) -> dict[str, Any]:
    """Consolidate an accepted submission, recording the attempt first
    (running, counted, this process and job) and its outcome after the
    table's commit: consolidated, or failed with the reason (audited and
    announced). An outage (PostgreSQL gone, Solr down: liveness.transient)
    is raised, not recorded as a failure: the attempt is left for the sweep
    to queue again."""
    context = context or consolidate.site_context()
    pkg = model.Package.get(submission_id)
    if pkg is None or not submission_state.state_or_initial(pkg.id).accepted_upload:
        return {"rows": 0, "skipped": "not accepted"}
    rec = record_of(pkg, lock=True)
    before = _outcome(rec)
    rec.status, rec.attempts = "running", (rec.attempts or 0) + 1
    rec.job_id, rec.worker = job_id, liveness.this_process()
    rec.started_at, rec.finished_at = _now(), None
    upload_id = rec.upload_id
    model.Session.commit()
    faults.point("consolidate.start")
    try:
        result = consolidate.consolidate_submission(submission_id)
        if result.get("skipped"):
            raise RuntimeError(tk._("the accepted file {upload} is missing").format(upload=upload_id))
    except Exception as e:
        model.Session.rollback()
        if liveness.transient(e):
            raise
        log.exception("consolidation of %s failed", submission_id)
        problem = tk._("Accepted, not consolidated: {reason}").format(reason=failure_reason(e))
        _finish(submission_id, context, before, "failed", upload_id, problem=problem)
        return {"rows": 0, "failed": problem}
    faults.point("consolidate.after_commit")
    _finish(submission_id, context, before, "consolidated", upload_id, result=result)
    return result


def _finish(submission_id: str, context: Context, before: tuple[str, str], status: str, upload_id: str,
            problem: str = "", result: dict[str, Any] | None = None) -> None:
    pkg = model.Package.get(submission_id)
    rec = (model.Session.query(Consolidation).filter(Consolidation.submission_id == submission_id)
           .populate_existing().with_for_update().one())
    if rec.upload_id != upload_id:
        # another file was accepted meanwhile: its own job consolidates it
        model.Session.commit()
        return
    now = _now()
    rec.status, rec.problem, rec.finished_at, rec.worker = status, problem or None, now, None
    if result is not None:
        rec.consolidated_upload, rec.resource_id, rec.rows = upload_id, result.get("resource_id"), result.get("rows")
        rec.consolidated_at = now
    changed = _audit(pkg, context, before, rec)
    model.Session.commit()
    if status == "failed" and changed:
        _announce(pkg, "submission.consolidation_failed", problem, rec.attempts)


def rebuild(return_id: str | None = None, progress: Any = None, context: Context | None = None) -> dict[str, int]:
    """consolidate.rebuild, each submission it put in recorded as
    consolidated (a job of it still queued runs again, to the same end)."""
    context = context or consolidate.site_context()

    def record(done: list[dict[str, Any]]) -> None:
        for item in done:
            pkg = model.Package.get(item["submission_id"])
            rec = record_of(pkg, lock=True)
            if rec.upload_id != item["upload_id"]:
                continue
            before, now = _outcome(rec), _now()
            rec.status, rec.problem, rec.worker, rec.finished_at = "consolidated", None, None, now
            rec.consolidated_upload, rec.resource_id, rec.rows = item["upload_id"], item["resource_id"], item["rows"]
            rec.consolidated_at = now
            _audit(pkg, context, before, rec)
        model.Session.commit()

    return consolidate.rebuild(return_id, progress=progress, on_done=record)


# ---------------------------------------------------------------- queueing

# The job, named as RQ names it: repository/jobs.py runs what this module
# records, so this module does not import it.
CONSOLIDATE_JOB = "ckanext.lgdp.repository.jobs.consolidate_job"


def enqueue(submission_id: str, reset_attempts: bool = False) -> str | None:
    """Queue a consolidation job for a submission: the record says pending
    under the new job's id (committed first: a worker may start at once),
    then the job goes to Redis. With Redis down the record stays pending
    under a job Redis does not know, and the sweep queues it again."""
    pkg = model.Package.get(submission_id)
    if pkg is None or not submission_state.state_or_initial(pkg.id).accepted_upload:
        return None
    rec = record_of(pkg, lock=True)
    if reset_attempts:
        rec.attempts = 0
    job_id = f"lgdp-consolidate-{submission_id}-{uuid.uuid4().hex[:8]}"
    rec.status, rec.job_id, rec.worker, rec.enqueued_at = "pending", job_id, None, _now()
    model.Session.commit()
    try:
        tk.enqueue_job(CONSOLIDATE_JOB, [submission_id], title=f"lgdp consolidate {submission_id}",
                       queue=QUEUE, rq_kwargs={"job_id": job_id})
    except Exception as e:  # noqa: BLE001
        if not liveness.transient(e):
            raise
        log.warning("consolidation of %s not queued (%s): the sweep queues it again", submission_id, e)
        return None
    return job_id


def _interrupt(pkg: model.Package, rec: Consolidation, context: Context) -> None:
    before = _outcome(rec)
    rec.status, rec.worker, rec.finished_at = "interrupted", None, _now()
    rec.problem = tk._(
        "Accepted, not consolidated: the consolidation was interrupted {n} times (the worker stopped); "
        "retry it, or ask the platform team").format(n=rec.attempts)
    changed = _audit(pkg, context, before, rec)
    model.Session.commit()
    if changed:
        _announce(pkg, "submission.consolidation_interrupted", rec.problem, rec.attempts)


# ---------------------------------------------------------------- the reconciler


def _stopped(pkg: model.Package, rec: Consolidation, now: datetime.datetime) -> str | None:
    """Why a pending or running consolidation needs its job queued again
    ("lost", "killed", "outage"), or None while its job is alive (see
    ``liveness.why_stopped``; a running record may also be a retry action
    run in a web process, not a job)."""
    return liveness.why_stopped(
        rec, rec.enqueued_at or submission_state.state_or_initial(pkg.id).decided_at, stale=STALE_AFTER,
        retry_after=datetime.timedelta(seconds=config.job_retry_after_seconds()), now=now)


def _held(tables: dict[str, str]) -> dict[str, dict[str, Any]]:
    """For each return (id -> its table dataset's id): the DataStore table
    of each standard version, and what every table holds, read from the
    tables themselves."""
    out: dict[str, dict[str, Any]] = {}
    for return_id, table_id in tables.items():
        resources = consolidate.table_resources(table_id)
        out[return_id] = {
            "versions": consolidate.version_resources(table_id),
            "contents": {rid: consolidate.council_periods(rid) for rid in resources},
        }
    return out


def _table_ids(return_ids: set[str]) -> dict[str, str]:
    out = {}
    for return_id in return_ids:
        return_pkg = model.Package.get(return_id)
        table = model.Package.get(consolidate.table_name(return_pkg.name)) if return_pkg is not None else None
        if table is not None and table.state == "active":
            out[return_id] = table.id
    return out


def _in_table(pkg: model.Package, rec: Consolidation, held: dict[str, Any]) -> str | None:
    """Why a submission recorded as consolidated is not as it should be in
    its table ("missing", "stale", "incomplete", "duplicated"), or None."""
    upload = model.Session.get(Upload, rec.upload_id)
    group = model.Group.get(pkg.owner_org)
    if upload is None or group is None:
        return None
    found = held.get(pkg.extras.get("data_return") or "")
    if found is None:
        return "missing"  # no table at all
    target = found["versions"].get(upload.standard_version or 1)
    key = (group.extras.get("gss_code") or "", pkg.extras.get("period") or "")
    here = found["contents"].get(target, {}).get(key, {}) if target else {}
    elsewhere = [rid for rid, contents in found["contents"].items() if rid != target and key in contents]
    if not here:
        return "missing"
    if elsewhere:
        return "duplicated"
    if rec.consolidated_upload != rec.upload_id or set(here) - {rec.upload_id, None}:
        return "stale"  # the table holds an older upload's rows
    expected = rec.rows if rec.rows is not None else upload.rows
    if expected is not None and sum(here.values()) != expected:
        return "incomplete" if sum(here.values()) < expected else "duplicated"
    if rec.rows is None:
        rec.rows = sum(here.values())  # a record made from an older release's extras
    return None


def reconcile(context: Context | None = None, now: datetime.datetime | None = None) -> dict[str, Any]:
    """Compare every accepted submission with its return's table and its
    record, and act: queue again what is missing or stale and what has no
    live job behind it; mark interrupted what was killed MAX_ATTEMPTS times;
    try a failed one once more, here (as the retry button does).

    :returns: ``{"consolidated": [names], "failed": [{"name", "problem"}],
        "queued": [{"name", "reason"}], "interrupted": [names]}``
    """
    context = context or consolidate.site_context()
    now = now or _now()
    out: dict[str, Any] = {"consolidated": [], "failed": [], "queued": [], "interrupted": []}
    subs = consolidate.accepted_submissions()
    held = _held(_table_ids({p.extras.get("data_return") or "" for p in subs}))
    model.Session.commit()
    for pkg in subs:
        name, pkg_id = pkg.name, pkg.id
        rec = record_of(pkg, lock=True)
        reason = None
        if rec.status in IN_PROGRESS:
            reason = _stopped(pkg, rec, now)
            if reason is not None and rec.attempts >= MAX_ATTEMPTS:
                _interrupt(pkg, rec, context)
                out["interrupted"].append(name)
                continue
        elif rec.status == "consolidated":
            reason = _in_table(pkg, rec, held)
            if reason is not None:
                log.warning("%s: the table does not hold its accepted file as it should (%s)", name, reason)
                rec.attempts = 0
        elif rec.status == "failed":
            model.Session.commit()
            result = consolidate_recorded(pkg_id, context)
            if result.get("failed"):
                out["failed"].append({"name": name, "problem": result["failed"]})
            else:
                out["consolidated"].append(name)
            continue
        if reason is None:
            model.Session.commit()
            continue
        model.Session.commit()
        enqueue(pkg_id)
        out["queued"].append({"name": name, "reason": reason})
    return out


# ---------------------------------------------------------------- what pages and the API show


def overlay(pkg_dicts: list[dict[str, Any]]) -> None:
    """Put the consolidation's state on submissions' dicts (package_show,
    package_search): ``consolidation_status``, ``consolidation_problem``
    (the sentence, while it needs attention), ``consolidated_at``,
    ``consolidation_attempts``. A submission accepted a moment ago, whose
    record is not reset yet, is pending."""
    wanted = {d["id"]: d for d in pkg_dicts if d.get("accepted_upload")}
    if not wanted:
        return
    rows = model.Session.execute(sa.select(
        Consolidation.submission_id, Consolidation.upload_id, Consolidation.status, Consolidation.problem,
        Consolidation.consolidated_at, Consolidation.attempts,
    ).where(Consolidation.submission_id.in_(list(wanted)))).all()
    found = {row[0]: row for row in rows}
    for sub_id, pkg_dict in wanted.items():
        if sub_id not in found:
            # no attempt recorded yet: accepted a moment ago (or before this
            # record existed, when the dataset itself said how it went)
            pkg_dict["consolidation_status"] = pkg_dict.get("consolidation_status") or "pending"
            pkg_dict.setdefault("consolidation_problem", "")
            pkg_dict.setdefault("consolidated_at", "")
            pkg_dict["consolidation_attempts"] = 0
            continue
        _id, upload_id, status, problem, consolidated_at, attempts = found[sub_id]
        if upload_id != pkg_dict.get("accepted_upload"):
            status, problem, consolidated_at, attempts = "pending", None, None, 0
        pkg_dict["consolidation_status"] = status
        pkg_dict["consolidation_problem"] = (problem or "") if status in NEEDS_ATTENTION else ""
        pkg_dict["consolidated_at"] = _iso(consolidated_at) if status == "consolidated" else ""
        pkg_dict["consolidation_attempts"] = attempts


def needing_attention(who: access.Actor) -> list[dict[str, Any]]:
    """Work that needs a person, that ``who`` may read, oldest first: uploads
    whose validation was interrupted (the submission's latest upload), and
    accepted submissions whose consolidation failed or was interrupted."""
    items: list[dict[str, Any]] = []

    def item(pkg: model.Package, kind: str, status: str, problem: str | None, attempts: int,
             since: datetime.datetime | None, upload_id: str) -> dict[str, Any]:
        group = model.Group.get(pkg.owner_org) if pkg.owner_org else None
        return_pkg = model.Package.get(pkg.extras.get("data_return") or "")
        return {"kind": kind, "status": status, "problem": problem or "", "attempts": attempts,
                "since": _iso(since), "submission": pkg.name, "submission_id": pkg.id, "title": pkg.title,
                "data_return": return_pkg.name if return_pkg is not None else None,
                "period": pkg.extras.get("period"), "council": group.name if group is not None else None,
                "upload_id": upload_id}

    def readable(pkg: model.Package | None) -> bool:
        obj = access.describe(pkg)
        return (pkg is not None and pkg.type == SUBMISSION_TYPE and pkg.state == "active"
                and obj is not None and access.can_read(who, obj))

    for row in model.Session.query(Upload).filter(Upload.status == "interrupted"):
        pkg = model.Package.get(row.submission_id)
        if readable(pkg) and submission_state.state_or_initial(pkg.id).current_upload == row.id:
            items.append(item(pkg, "validation", row.status, row.problem, row.attempts, row.finished_at, row.id))
    for rec in model.Session.query(Consolidation).filter(Consolidation.status.in_(NEEDS_ATTENTION)):
        pkg = model.Package.get(rec.submission_id)
        if readable(pkg) and submission_state.state_or_initial(pkg.id).accepted_upload == rec.upload_id:
            items.append(item(pkg, "consolidation", rec.status, rec.problem, rec.attempts, rec.finished_at,
                              rec.upload_id))
    return sorted(items, key=lambda i: (i["since"], i["submission"], i["kind"]))
