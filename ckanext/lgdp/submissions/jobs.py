"""Validation of uploads, in the RQ worker.

An upload goes pending -> running -> valid | invalid | rejected | error.
``sweep`` (run by ``lgdp_validation_sweep``, ``ckan lgdp sweep`` and every
read of an upload in progress) retries an upload whose job is no longer
alive, up to MAX_ATTEMPTS, after which it is "interrupted" with a message,
never left pending or running.

"No longer alive" is decided with RQ's own record of the job together with
the worker that took it (ops/liveness.py), never from "the worker's
process is alive" alone. Before, an upload stayed "running" for good when
its job's last commit failed (Solr stopped: the resource_patch that
mirrored the result then reindexed the dataset; PostgreSQL restarted): the job
failed, its worker went on with other jobs, and the sweep, seeing that
worker alive, skipped it. And an upload whose worker was killed after it
took the job but before the upload was marked running stayed "pending"
(RQ still said "started"), its attempt never counted, so it was never
"interrupted" either.

An attempt is counted when a worker takes the job: by the job when it
marks the upload running, or by the sweep for a job killed before that. A
job that fails because PostgreSQL went away or Solr is down during its
work or its final write says so in its RQ meta (liveness.mark_transient):
the sweep retries it after a pause, without counting the outage as an
attempt, and the upload is never marked "error" for it.
"""
from __future__ import annotations

import copy
import csv
import datetime
import logging
import os
import tempfile
import time
import uuid
from typing import Any

from redis.exceptions import RedisError
from rq import get_current_job

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.lib.uploader import get_resource_uploader

from ckanext.lgdp import config, fetch
from ckanext.lgdp.model import Upload, submission_state
from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.model.uploads import IN_PROGRESS, VALIDATION_STATUS
from ckanext.lgdp.ops import faults, liveness
from ckanext.lgdp.register import calendar as cal
from ckanext.lgdp.register import standards
from ckanext.lgdp.submissions import fastcsv, intake, normalised, reports
from ckanext.lgdp.submissions.intake import limits

log = logging.getLogger(__name__)

QUEUE = "lgdp:validation"
MAX_ATTEMPTS = 3


# ---------------------------------------------------------------- queueing


def enqueue(row: Upload, first: bool = False) -> None:
    """Queue the validation of an upload: the row says pending under the new
    job's id (committed first: the worker may start at once), then the job
    goes to Redis. If Redis refuses it, the row stays pending under a job
    Redis does not know, and the sweep queues it again. ``first``: someone
    waits for this one (an officer at the form, a push with ``wait``): it
    goes to the front of the queue, ahead of the files systems push in
    bulk."""
    row.status = "pending"
    row.worker = None
    row.job_id = f"lgdp-validate-{row.id}-{uuid.uuid4().hex[:8]}"
    row.enqueued_at = _now()
    model.Session.commit()
    tk.enqueue_job(
        validate_upload,
        [row.id],
        title=f"lgdp validate upload {row.id}",
        queue=QUEUE,
        rq_kwargs={"timeout": config.validation_timeout_seconds(), "job_id": row.job_id, "at_front": first},
    )


def enqueue_committed(row: Upload, first: bool = False) -> bool:
    """Queue the validation of an upload whose row is committed (pending).
    When the job queue (Redis) is down the upload stays pending with no job,
    and the sweep queues it once Redis is back: the upload is stored, so the
    request that made it is answered as a success, not as an error. True when
    the job was queued."""
    try:
        enqueue(row, first=first)
    except RedisError as e:
        model.Session.rollback()
        log.warning("upload %s is stored but its validation could not be queued (%s): the sweep will queue it",
                    row.id, e)
        return False
    return True


def _stopped(row: Upload) -> str | None:
    """Why an in-progress upload's validation is no longer happening
    ("lost", "killed", "outage"), or None while its job is alive (see
    ``liveness.why_stopped``)."""
    return liveness.why_stopped(
        row, row.enqueued_at or row.uploaded_at,
        stale=datetime.timedelta(seconds=config.validation_timeout_seconds() + 60),
        retry_after=datetime.timedelta(seconds=config.job_retry_after_seconds()), now=_now())


def _interrupt(row: Upload) -> None:
    row.status = "interrupted"
    row.problem_code = "validation-interrupted"
    row.problem = tk._(
        "Validation was interrupted {n} times (the worker stopped) and has been given up: upload the file again or ask the platform team"
    ).format(n=row.attempts)
    row.finished_at = _now()
    row.worker = None
    _record_outcome(row, reports.problem_report(row.problem_code, row.problem))


def sweep(rows: list[Upload]) -> dict[str, int]:
    """Retry, or mark as interrupted after MAX_ATTEMPTS, the uploads whose
    validation job is no longer alive (each decided under a lock on its
    row, so two sweeps never both retry one)."""
    retried = interrupted = 0
    for candidate in rows:
        if candidate.status not in IN_PROGRESS:
            continue
        upload_id = candidate.id
        # a row locked by its job (writing its outcome) is not stopped
        row = (model.Session.query(Upload).filter(Upload.id == upload_id)
               .populate_existing().with_for_update(skip_locked=True).one_or_none())
        reason = _stopped(row) if row is not None and row.status in IN_PROGRESS else None
        if reason is None:
            model.Session.commit()
            continue
        if row.attempts < MAX_ATTEMPTS:
            log.warning("validation of upload %s stopped (%s, attempt %s): retrying", row.id, reason, row.attempts)
            enqueue(row)
            retried += 1
        else:
            _interrupt(row)
            try:
                model.Session.commit()
            except Exception as e:
                model.Session.rollback()
                if not liveness.transient(e):
                    raise
                log.warning("upload %s: interrupted, but not recorded yet (%s)", upload_id, e)
                continue
            interrupted += 1
    return {"retried": retried, "interrupted": interrupted}


# ---------------------------------------------------------------- the checks


def resource_path(resource: dict[str, Any]) -> str | None:
    """The stored file of an uploaded resource (None for a URL)."""
    if resource.get("url_type") != "upload":
        return None

    return get_resource_uploader(resource).get_path(resource["id"])


def _download(url: str, limit: int) -> str:
    """Fetch a URL resource to a temporary file (the caller removes it),
    through the platform's one fetcher: the address is checked again here,
    whatever was checked when the URL was given."""
    fd, path = tempfile.mkstemp(prefix="lgdp-download-")
    try:
        with os.fdopen(fd, "wb") as out:
            answer = fetch.get(url, max_bytes=limit, timeout=config.download_timeout_seconds(), into=out)
    except fetch.FetchError as e:
        os.unlink(path)
        raise intake.IntakeError(e.code, e.message, status=413 if isinstance(e, fetch.TooLarge) else 400) from None
    if answer.status >= 300:
        os.unlink(path)
        raise intake.IntakeError("download-failed", tk._(
            "The file could not be fetched from {url}: the server answered {status}").format(
                url=url, status=answer.status), status=400, details={"status": answer.status})
    return path


def submission_schema(pkg: model.Package, standard: dict[str, Any]) -> dict[str, Any]:
    """The return's Table Schema, narrowed to this submission: the council's
    own GSS code and the period in the file must be this submission's, and
    every value must fit the return's central table (standards.with_storage_bounds)."""
    schema = standards.with_storage_bounds(copy.deepcopy(standard))
    fields = schema.get("fields") or []
    gss = model.Group.get(pkg.owner_org).extras.get("gss_code") if pkg.owner_org else None
    keys = schema.get("primaryKey") or []
    period_field = keys[1] if isinstance(keys, list) and len(keys) > 1 else None
    frequency = ""
    return_pkg = model.Package.get(pkg.extras.get("data_return") or "")
    if return_pkg is not None:
        frequency = return_pkg.extras.get("frequency") or ""
    for field in fields:
        constraints = field.setdefault("constraints", {})
        if field.get("name") == "gss_code" and gss:
            constraints["enum"] = [gss]
        elif field.get("name") == period_field and pkg.extras.get("period_start"):
            period = cal.Period(
                pkg.extras["period"],
                datetime.date.fromisoformat(pkg.extras["period_start"]),
                datetime.date.fromisoformat(pkg.extras["period_end"]),
            )
            constraints["enum"] = [cal.period_in_data(period, frequency, constraints.get("pattern"))]
    return schema


def countable_totals(csv_path: str, schema: dict[str, Any]) -> dict[str, float]:
    """Totals of the fields the standard marks countable (for the
    period-on-period queries)."""
    wanted = standards.countable_fields(schema)
    totals: dict[str, float] = {}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for record in csv.DictReader(f):
            for name in wanted:
                try:
                    totals[name] = totals.get(name, 0.0) + float(record.get(name) or 0)
                except ValueError:
                    pass
    return totals


def _previous_summary(pkg: model.Package) -> tuple[str, dict[str, Any]] | None:
    """The period and totals of the council's latest accepted submission of
    the same return before this period."""
    start = pkg.extras.get("period_start") or ""
    candidates = (
        model.Session.query(model.Package)
        .filter(model.Package.type == pkg.type, model.Package.owner_org == pkg.owner_org)
        .filter(model.Package.state == "active", model.Package.id != pkg.id)
        .all()
    )
    best = None
    accepted = set(submission_state.with_status(("accepted",), [c.id for c in candidates])) if candidates else set()
    for other in candidates:
        extras = other.extras
        if extras.get("data_return") != pkg.extras.get("data_return") or other.id not in accepted:
            continue
        if (extras.get("period_start") or "") >= start:
            continue
        if best is None or extras["period_start"] > best.extras["period_start"]:
            best = other
    if best is None:
        return None
    row = model.Session.get(Upload, submission_state.state_or_initial(best.id).accepted_upload or "")
    return (best.extras.get("period") or "", dict(row.summary or {})) if row is not None else None


def queries_for(pkg: model.Package, summary: dict[str, float], schema: dict[str, Any]) -> list[dict[str, Any]]:
    previous = _previous_summary(pkg)
    if previous is None:
        return []
    period, before = previous
    ratio = config.query_change_ratio()
    titles = {f["name"]: f.get("title") or f["name"] for f in schema.get("fields") or []}
    out = []
    for name, value in summary.items():
        old = before.get(name)
        if old is None:
            continue
        change = value - old
        if abs(change) < 10 or (old and abs(change) / abs(old) <= ratio) or (not old and not value):
            continue
        pct = f"{change / old:+.0%}" if old else tk._("from zero")
        if value > 0 and 500 <= old / value <= 2000:
            message = tk._("{title} is {value:,.0f} against {old:,.0f} in {period}: about 1,000 times smaller, as if "
                           "written in thousands. Write the figure in full, or explain the change")
        else:
            message = tk._("{title} is {value:,.0f}, {pct} against {old:,.0f} in {period}: explain the change or correct the file")
        out.append(
            {
                "id": f"change-{name}",
                "field": name,
                "value": value,
                "previous": old,
                "previous_period": period,
                "message": message.format(title=titles.get(name, name), value=value, pct=pct, old=old, period=period),
                "explanation": None,
            }
        )
    return out


def percentage_queries(csv_path: str, schema: dict[str, Any]) -> list[dict[str, Any]]:
    """Queries on percentage fields (0 to 100) whose every figure is a
    fraction (0 < x <= 1): 0.96 where 96 is meant passes validation, so it is
    asked about instead."""
    wanted = {
        f["name"]: f.get("title") or f["name"]
        for f in schema.get("fields") or []
        if f.get("type") == "number" and str((f.get("constraints") or {}).get("maximum")) == "100"
        and ("%" in (f.get("title") or "") or f["name"].endswith("_pct"))
    }
    if not wanted:
        return []
    values: dict[str, list[float]] = {name: [] for name in wanted}
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for record in csv.DictReader(f):
            for name in wanted:
                try:
                    values[name].append(float((record.get(name) or "").strip()))
                except ValueError:
                    pass
    out = []
    for name, found in values.items():
        if not found or not all(0 <= v <= 1 for v in found) or not any(v > 0 for v in found):
            continue
        first = next(v for v in found if v > 0)
        out.append({
            "id": f"fraction-{name}",
            "field": name,
            "value": first,
            "previous": None,
            "previous_period": None,
            "message": tk._("{title} is {value:g}: percentages are written from 0 to 100, so this reads as under 1%. "
                            "If it means {percent:g}%, write {percent:g}; otherwise explain it").format(
                title=wanted[name], value=first, percent=round(first * 100, 6)),
            "explanation": None,
        })
    return out


def _record_outcome(row: Upload, report: dict[str, Any] | None, error: dict[str, Any] | None = None) -> None:
    """Write the upload's status (``row.status``, the record) where
    ckanext-validation reads it: its `validation` table, with the report.
    The resource's validation_status is worked out from the row when the
    resource is shown (model/uploads.py validation_shown): no dataset write
    and no reindex per validation."""
    reports.store(row.id, VALIDATION_STATUS[row.status], report, error)


def _reject(row: Upload, error: Any) -> None:
    row.status = "rejected"
    row.problem_code = error.code
    row.problem = error.message
    row.error_count = 1
    row.finished_at = _now()
    _record_outcome(row, reports.problem_report(error.code, error.message, error.details))


def _schema_of(pkg: model.Package, row: Upload) -> dict[str, Any]:
    standard = standards.standard_for(pkg, row.standard_version)
    if not standard:
        raise intake.IntakeError("no-standard", tk._("The return has no data standard to validate against"))
    return submission_schema(pkg, standard)


def _normalise(row: Upload, path: str, filename: str, pkg: model.Package, sha256: str | None = None) -> None:
    """Intake, making the upload's one normalised file as it reads the
    original, once; the facts of both on the row (the original's whatever
    the outcome). ``sha256``: the original's hash when already known."""
    original = intake.Original(path, sha256=sha256)
    try:
        schema = _schema_of(pkg, row)
        made = intake.normalise(original, filename, normalised.path_of(row.id), schema,
                                max_bytes=config.max_upload_bytes(),
                                xlsx_max_uncompressed=config.xlsx_max_uncompressed_bytes(),
                                limits=limits.for_schema(schema))
    finally:
        row.bytes, row.sha256 = original.facts()
    row.notes = made.notes
    row.normal_sha256, row.normal_bytes, row.normal_rows, row.header = made.sha256, made.bytes, made.rows_hint or 0, made.header


def intake_now(row: Upload, sha256: str | None = None) -> None:
    """The intake at the point of upload: a file that is not a readable table
    is answered at once (it is kept, and flagged); one that is becomes the
    upload's normalised file, which is what the validation job reads.
    ``sha256``: the file's hash if the request has it already."""
    resource = tk.get_action("resource_show")({"ignore_auth": True}, {"id": row.id})
    path = resource_path(resource)
    if path is None or not os.path.exists(path):
        return
    try:
        _normalise(row, path, row.filename or "upload.csv", model.Package.get(row.submission_id), sha256=sha256)
    except intake.IntakeError as e:
        _reject(row, e)


def has_normalised(row: Upload) -> bool:
    """Whether the upload's normalised file is made (facts and file)."""
    return bool(row.normal_sha256) and normalised.exists(row.id)


def normalised_path(row: Upload) -> str:
    """The upload's normalised file, made from the original if it has none
    (an upload from before the file existed). Raises ``IntakeError`` if the
    original is not a readable table."""
    if has_normalised(row):
        return normalised.path_of(row.id)
    pkg = model.Package.get(row.submission_id)
    resource = tk.get_action("resource_show")({"ignore_auth": True}, {"id": row.id})
    path = temp = None
    try:
        path = resource_path(resource)
        if path is None:
            path = temp = _download(resource["url"], config.max_upload_bytes())
        _normalise(row, path, row.filename or os.path.basename(resource.get("url") or "") or "upload.csv",
                   pkg, sha256=row.sha256)
    finally:
        if temp and os.path.exists(temp):
            os.unlink(temp)
    return normalised.path_of(row.id)


class _MemoryCap:
    """Cap the address space a job may add to the worker's (RLIMIT_AS), so a
    file that would need too much memory fails with MemoryError in the job,
    instead of the kernel killing the worker and the job being retried."""

    def __init__(self, extra: int):
        self.extra = extra
        self.saved: tuple[int, int] | None = None

    def __enter__(self) -> "_MemoryCap":
        try:
            import resource  # Unix only: elsewhere the upload runs without the cap

            with open("/proc/self/statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            self.saved = resource.getrlimit(resource.RLIMIT_AS)
            soft, hard = self.saved
            cap = used + self.extra
            if hard != resource.RLIM_INFINITY:
                cap = min(cap, hard)
            if soft == resource.RLIM_INFINITY or cap < soft:
                resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        except (OSError, ValueError, ImportError):
            self.saved = None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.saved is not None:
            import resource  # as in __enter__

            resource.setrlimit(resource.RLIMIT_AS, self.saved)


def _too_big_to_validate() -> Any:
    return intake.IntakeError("too-large-to-validate", tk._(
        "This file needs more memory to validate than the platform allows a file. Check it holds only "
        "the return (no extra columns, no very long cells), or split it, and upload it again."))


def _fresh(upload_id: str, wait: float = 10.0) -> Upload | None:
    """The upload's row; the job may start a moment before its commit lands."""
    deadline = time.monotonic() + wait
    while True:
        model.Session.expire_all()
        row = model.Session.get(Upload, upload_id)
        if row is not None or time.monotonic() > deadline:
            return row
        time.sleep(0.2)


def validate_upload(upload_id: str) -> str | None:
    """The job: intake, table validation, queries; store the report. An
    outage (PostgreSQL gone, Solr down) on the way or in the final write is
    not the file's fault nor an "error": the job says so in its RQ meta and
    fails, leaving the upload for the sweep to queue again after a pause."""
    try:
        return _validate(upload_id)
    except Exception as e:
        if liveness.transient(e):
            liveness.mark_transient(e)
            log.warning("validation of upload %s stopped by an outage (%s): the sweep queues it again", upload_id, e)
            try:
                model.Session.rollback()
            except Exception:  # noqa: BLE001 - the connection is gone; the worker resets the session
                pass
        raise


def _claim(upload_id: str) -> Upload | None:
    """Mark the upload running under this job and process, its attempt
    counted (committed before any work); None if there is nothing to do:
    validated already, or running under another live job."""
    job = get_current_job()
    if _fresh(upload_id) is None:
        return None
    row = model.Session.query(Upload).filter(Upload.id == upload_id).populate_existing().with_for_update().one()
    if row.status not in IN_PROGRESS:
        model.Session.commit()
        return None
    if row.status == "running" and job is not None and row.job_id not in (None, job.id) \
            and liveness.job_state(row.job_id).alive:
        model.Session.commit()
        return None
    faults.point("validate.before_running")
    row.status = "running"
    row.started_at = _now()
    row.finished_at = None
    row.worker = liveness.this_process()
    if job is not None:
        row.job_id = job.id
    row.attempts = (row.attempts or 0) + 1
    _record_outcome(row, None)
    model.Session.commit()
    faults.point("validate.running")
    return row


def _validate(upload_id: str) -> str | None:
    row = _claim(upload_id)
    if row is None:
        found = model.Session.get(Upload, upload_id)
        return found.status if found is not None else None

    pkg = model.Package.get(row.submission_id)
    try:
        with _MemoryCap(config.validation_memory_bytes()):
            try:
                path = normalised_path(row)
                schema = _schema_of(pkg, row)
                extra = intake.formula_errors(path, schema)
                if not row.normal_rows:
                    extra = [*extra, reports.no_rows_error()]
                report = fastcsv.validate_csv(path, schema, extra_errors=extra)
            except MemoryError:
                report = None
        if report is None:
            raise _too_big_to_validate()
        row.rows = (report.get("tasks") or [{}])[0].get("stats", {}).get("rows")
        row.error_count = reports.error_count(report)
        if report.get("valid"):
            row.status = "valid"
            row.summary = countable_totals(path, schema)
            row.queries = queries_for(pkg, row.summary, schema) + percentage_queries(path, schema)
        else:
            row.status = "invalid"
            row.queries = []
        row.finished_at = _now()
        _record_outcome(row, report)
    except intake.IntakeError as e:
        _reject(row, e)
    except Exception as e:  # the platform's fault: say so, keep the file
        if liveness.transient(e):
            raise  # an outage: retried, not an error of this file
        log.exception("validation of upload %s failed", upload_id)
        model.Session.rollback()
        row = model.Session.get(Upload, upload_id)
        row.status = "error"
        row.problem_code = "validation-error"
        row.problem = tk._("The platform could not validate this file ({error}); it is kept. Try again later or ask the platform team").format(
            error=type(e).__name__)
        row.finished_at = _now()
        _record_outcome(row, reports.problem_report(row.problem_code, row.problem), {"message": str(e)[:2000]})
    row.worker = None
    model.Session.commit()
    return row.status
