"""Actions of submissions: start one, upload files to it, explain queries,
move it through its states (states.TRANSITIONS), read its uploads and their
reports. The files are resources of the submission dataset; each upload is a
new resource (kept for good) with a row in lgdp_upload."""
from __future__ import annotations

import datetime
import logging
import os
import time
import uuid
from typing import Any

from redis.exceptions import RedisError

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.lib.uploader import get_resource_uploader
from ckan.types import Action, Context, DataDict

from ckanext.lgdp import access, config, events, fetch
from ckanext.lgdp.model import Upload, catalogue, uploads
from ckanext.lgdp.model import submission_state
from ckanext.lgdp.model.submission_state import SubmissionState
from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.model.uploads import IN_PROGRESS
from ckanext.lgdp.params import validate
from ckanext.lgdp.register import audit, returns
from ckanext.lgdp.register import calendar as cal
from ckanext.lgdp.register.search import iter_returns
from ckanext.lgdp.register.standards import current_standard, standard_for
from ckanext.lgdp.submissions import (
    SUBMISSION_TYPE,
    indexing,
    jobs,
    messages,
    normalised,
    reports,
    schema,
    states,
    upload_keys,
    workflow,
)
from ckanext.lgdp.submissions.intake.limits import too_large_message
from ckanext.lgdp.submissions.search import refresh_overdue

log = logging.getLogger(__name__)

__all__ = [
    "lgdp_submission_create",
    "lgdp_submission_upload",
    "lgdp_submission_explain",
    "lgdp_submission_transition",
    "lgdp_submission_expect",
    "lgdp_upload_list",
    "lgdp_upload_show",
    "lgdp_validation_sweep",
    "lgdp_search_refresh",
    "resource_create",
    "resource_update",
    "dataset_purge",
]

COLLECTING = ("active", "under_review")
# Context key: the channel of an upload ("browser", "api", "url", "pull"), set
# by the platform's own callers (the web form, the pull connectors; never a
# parameter); and whether they start validation themselves.
CHANNEL_KEY = "lgdp_upload_channel"
CHANNELS = ("browser", "api", "url", "pull")
DEFER_KEY = "lgdp_defer_validation"


def _today() -> datetime.date:
    return datetime.date.today()


def _platform(context: Context, **extra: Any) -> Context:
    """A context for the platform's own writes on behalf of the caller."""
    return {"user": context.get("user"), "ignore_auth": True, states.PLATFORM_FLAG: True, **extra}  # type: ignore


def _show(ident: str) -> dict[str, Any]:
    return tk.get_action("package_show")({"ignore_auth": True, "use_cache": False}, {"id": ident})


def _error(field: str, message: str) -> tk.ValidationError:
    return tk.ValidationError({field: [message]})


# ---------------------------------------------------------------- look-ups


def data_return(ident: str | None) -> dict[str, Any]:
    return _show(returns.package(ident, active=True).id)


def council(ident: str | None) -> model.Group:
    group = model.Group.get(ident) if ident else None
    if group is None or not group.is_organization or group.state != "active":
        named = catalogue.council_by_gss(ident)
        if named is not None:
            raise tk.ObjectNotFound(tk._("No council {ident}: name the council by its name ({name}), not its GSS code").format(
                ident=ident, name=named.name))
        raise tk.ObjectNotFound(tk._("No council {ident}").format(ident=ident))
    if access.org_type(group.id) != access.COUNCIL:
        raise _error("council", tk._("{name} is not a council").format(name=group.name))
    return group


def _not_collecting(return_dict: dict[str, Any]) -> tk.ValidationError:
    return _error("data_return", tk._("{name} is not collecting data (it is {status})").format(
        name=return_dict["name"], status=return_dict.get("lifecycle_status")))


def submission_name(return_name: str, council_name: str, period: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in period.lower()).strip("-")
    return f"{return_name}--{council_name}--{slug}"[:100]


def submission(ident: str | None) -> model.Package:
    pkg = model.Package.get(ident) if ident else None
    if pkg is None or pkg.type != SUBMISSION_TYPE or pkg.state == "deleted":
        raise tk.ObjectNotFound(tk._("No submission {ident}").format(ident=ident))
    return pkg


def catalogue_for(row: Upload) -> messages.Catalogue:
    """The plain messages of an upload's errors: the titles and constraints
    of the standard it was checked against, narrowed to its submission (the
    council's GSS code, the period)."""
    pkg = model.Package.get(row.submission_id or "")
    if pkg is None:
        return messages.Catalogue({})
    try:
        standard = standard_for(pkg, row.standard_version)
    except tk.ObjectNotFound:
        standard = None
    if not standard:
        return messages.Catalogue({})
    schema = jobs.submission_schema(pkg, standard)
    group = model.Group.get(pkg.owner_org) if pkg.owner_org else None
    gss = group.extras.get("gss_code") if group is not None else None
    keys = schema.get("primaryKey") or []
    period_field = keys[1] if isinstance(keys, list) and len(keys) > 1 else None
    period = next((str(f["constraints"]["enum"][0]) for f in schema.get("fields") or []
                   if f.get("name") == period_field and (f.get("constraints") or {}).get("enum")), None)
    return messages.Catalogue(schema, council=(gss, group.title or group.name) if gss else None, period=period)


def upload_errors(row: Upload, report: dict[str, Any] | None, limit: int) -> list[dict[str, Any]]:
    """An upload's errors row by row, each with its plain message."""
    if not report:
        return []
    return reports.row_errors(report, limit=limit, catalogue=catalogue_for(row))


# ---------------------------------------------------------------- create


def _period(return_dict: dict[str, Any], label: str | None) -> cal.Period:
    if not label:
        raise _error("period", tk._("Missing value"))
    period = cal.period_by_label(return_dict.get("frequency", ""), return_dict.get("period_basis"), label)
    if period is None:
        example = cal.period_containing(
            return_dict.get("frequency", ""), return_dict.get("period_basis"), _today()
        )
        raise _error(
            "period",
            tk._("{label} is not a {frequency} period of this return (periods are written like {example})").format(
                label=label, frequency=return_dict.get("frequency"), example=example.label if example else "-"
            ),
        )
    refused = cal.period_refusal(return_dict, period, _today())
    if refused:
        raise _error("period", refused)
    return period


def create_submission(
    context: Context, return_dict: dict[str, Any], group: model.Group, period: cal.Period, status: str = states.INITIAL
) -> dict[str, Any]:
    """Make the submission dataset and its state (no checks of the caller's
    rights here). The dataset is written once; its state changes in
    lgdp_submission_state (submissions/workflow.py)."""
    due = period.end + datetime.timedelta(days=cal.due_days(return_dict))
    version, _schema = current_standard(return_dict)
    pkg_id = str(uuid.uuid4())
    # the state first, so that the dataset's document, indexed when the
    # transaction commits, shows it
    workflow.begin(pkg_id, status, version)
    pkg = tk.get_action("package_create")(
        _platform(context, defer_commit=True),
        {
            "id": pkg_id,
            "type": SUBMISSION_TYPE,
            "name": submission_name(return_dict["name"], group.name, period.label),
            "title": f"{return_dict['title']}: {group.title or group.name}, {period.label}",
            "owner_org": group.id,
            "private": True,
            "data_return": return_dict["id"],
            "period": period.label,
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
            "due_date": due.isoformat(),
        },
    )
    audit.record(
        context,
        object_type=SUBMISSION_TYPE,
        object_id=pkg["id"],
        object_name=pkg["name"],
        action="create",
        to_state=status,
    )
    return pkg


def _existing(return_dict: dict[str, Any], group: model.Group, period: cal.Period) -> model.Package | None:
    pkg = model.Package.get(submission_name(return_dict["name"], group.name, period.label))
    return pkg if pkg is not None and pkg.state == "active" else None


@validate(schema.submission_create)
def lgdp_submission_create(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Start a council's submission of a return for one reporting period.

    :param data_return: the return's id or name (an active return)
    :param council: the council organisation's id or name
    :param period: the period's label, e.g. ``2024-25``, ``2024-Q3``, ``2024-07``
    :returns: the submission (private, owned by the council, status ``expected``)
    """
    tk.check_access("lgdp_submission_create", context, data_dict)
    return_dict = data_return(data_dict.get("data_return"))
    if return_dict.get("lifecycle_status") not in COLLECTING:
        raise _not_collecting(return_dict)
    group = council(data_dict.get("council"))
    period = _period(return_dict, data_dict.get("period"))
    if _existing(return_dict, group, period) is not None:
        raise _error("period", tk._("{council} already has a submission of {name} for {period}").format(
            council=group.name, name=return_dict["name"], period=period.label))
    pkg = create_submission(context, return_dict, group, period)
    model.repo.commit()
    return _show(pkg["id"])


@validate(schema.submission_expect)
def lgdp_submission_expect(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Create the expected submissions of the collection calendar: one per
    council for every period of every collecting return due in [since, until].

    :param since: ISO date (default: one year before ``until``)
    :param until: ISO date (default: today)
    :param data_return: only this return (optional)
    :returns: ``{"created": n, "existing": m, "overdue_refreshed": k}`` (open
        submissions past their due date are reindexed, so "overdue" is right)
    """
    tk.check_access("lgdp_submission_expect", context, data_dict)
    until = data_dict.get("until") or _today()
    since = data_dict.get("since") or until - datetime.timedelta(days=365)
    if data_dict.get("data_return"):
        returns = [data_return(data_dict["data_return"])]
    else:
        returns = [_show(r["id"]) for r in iter_returns({"ignore_auth": True}, states=COLLECTING)]
    councils = [council(o["id"]) for o in access.orgs_of_type(access.COUNCIL)]
    created = existing = 0
    for return_dict in returns:
        if return_dict.get("lifecycle_status") not in COLLECTING:
            continue
        for period, _due in cal.return_periods(return_dict, since, until):
            if cal.period_refusal(return_dict, period, _today()):
                continue  # not open yet (a window reaching into the future)
            for group in councils:
                if _existing(return_dict, group, period) is not None:
                    existing += 1
                    continue
                create_submission(context, return_dict, group, period)
                created += 1
        model.repo.commit()

    return {"created": created, "existing": existing, "overdue_refreshed": refresh_overdue()}


# ---------------------------------------------------------------- uploads


def _file_size(upload: Any) -> int | None:
    stream = getattr(upload, "stream", None) or getattr(upload, "file", None)
    if stream is None or not hasattr(stream, "seek"):
        return None
    try:
        position = stream.tell()
        stream.seek(0, os.SEEK_END)
        size = stream.tell()
        stream.seek(position)
        return size
    except (OSError, ValueError):
        return None


def _check_url(url: str) -> None:
    """A URL the fetcher would refuse is refused now, before anything is
    created (the worker checks again when it fetches)."""
    if url and (refused := fetch.refusal(url)):
        raise _error("url", refused)


def _resolve_for_upload(context: Context, data_dict: DataDict, url: str = "") -> tuple[model.Package | None, Any]:
    """The submission an upload is written to: ``(pkg, None)``, or
    ``(None, start)`` when it is yet to be started (``start()`` adds it to
    the request's transaction, committed with the upload). Who may upload is
    decided on that object (its council), once it is known and before
    anything is created or fetched."""
    if data_dict.get("id"):
        pkg = submission(data_dict["id"])
        tk.check_access("lgdp_submission_upload", context, {"id": pkg.id})
        _check_url(url)
        return pkg, None
    missing = [key for key in ("data_return", "council", "period") if not data_dict.get(key)]
    if missing:
        raise tk.ValidationError({key: [tk._(
            "Missing value: name the submission by its id, or by its data_return, council and period")]
            for key in missing})
    return_dict = data_return(data_dict.get("data_return"))
    group = council(data_dict.get("council"))
    tk.check_access("lgdp_submission_upload", context, {"council": group.id})
    _check_url(url)
    try:
        period = _period(return_dict, data_dict.get("period"))
    except tk.ValidationError:
        # a return that collects nothing has no periods to write
        if return_dict.get("lifecycle_status") not in COLLECTING:
            raise _not_collecting(return_dict) from None
        raise
    pkg = _existing(return_dict, group, period)
    if pkg is not None:
        return pkg, None
    if return_dict.get("lifecycle_status") not in COLLECTING:
        raise _not_collecting(return_dict)

    def start() -> model.Package:
        # two first uploads at once: the second waits here until the first
        # commits (the lock is the transaction's), then finds its submission
        name = submission_name(return_dict["name"], group.name, period.label)
        catalogue.lock_name(f"lgdp-submission:{name}")
        found = _existing(return_dict, group, period)
        if found is not None:
            return found
        created = create_submission(context, return_dict, group, period)
        return model.Session.get(model.Package, created["id"])

    return None, start


def _discard_stored(resource_id: str) -> None:
    """Remove the files a refused upload stored (the original and its
    normalised file): its rows were rolled back, its files go with them."""
    uploader = get_resource_uploader({})
    paths = [normalised.path_of(resource_id)]
    if getattr(uploader, "storage_path", None) and hasattr(uploader, "get_path"):
        paths.append(uploader.get_path(resource_id))
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("could not remove %s of refused upload %s: %s", path, resource_id, e)


def _upload_summary(row: Upload) -> str:
    if row.status == "valid":
        return tk._("Upload {version} is valid").format(version=row.version)
    if row.status == "rejected":
        return row.problem or ""
    if row.status == "invalid":
        return tk._("Upload {version} has {n} errors that must be fixed; the file is kept and flagged").format(
            version=row.version, n=row.error_count)
    if row.status in ("interrupted", "error"):
        return row.problem or tk._("Validation could not finish")
    return tk._("Upload {version} is waiting for validation").format(version=row.version)


@validate(schema.submission_upload)
def lgdp_submission_upload(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Upload a file (CSV or XLSX) or attach a URL to a council's submission.

    The file is kept as a new version (earlier ones, the accepted one above
    all, are never replaced) and validated against the return's data standard
    in the background.

    :param id: the submission's id or name; or, instead, all three of:
    :param data_return: the return's id or name
    :param council: the council's id or name
    :param period: the period's label (the submission is started if needed)
    :param upload: the file (multipart), or
    :param url: a URL the platform downloads the file from
    :param description: a note about this file (optional)
    :param wait: true to wait for the validation result (up to
        ``ckanext.lgdp.upload_wait_seconds``) and get the report in the answer;
        an invalid file then answers 409 with its errors (and is kept);
        true or false (default false)
    :param client_ref: an idempotency key of the client's choosing (a UUID,
        printable ASCII, at most 255 characters), also accepted as the
        ``Idempotency-Key`` HTTP header (optional). Sent again by the same
        user with the same file (or URL) for the same submission, it returns
        the first upload, answered as the first request was, instead of
        making a second one; with another file or submission it answers 409
        naming ``client_ref`` (or ``Idempotency-Key``). Keys are the user's,
        across every submission, and are kept for good.
    :returns: ``{"submission": ..., "upload": ..., "message": ..., "errors": [...]}``

    The upload's channel (``api``, ``url``; ``browser`` from the web form,
    ``pull`` from a pull connector) is set by the platform, never by a
    parameter.

    An answer that is an error has stored nothing, except the documented
    409 of a file that is not a readable table (kept as an upload and
    flagged: the answer carries its ``upload_id``). The upload is stored in
    one transaction; its validation is queued after the commit, and if the
    job queue is down then, the upload is answered as stored and pending,
    and the sweep queues its validation when the queue is back.
    """
    upload = data_dict.get("upload")
    url = (data_dict.get("url") or "").strip()
    has_file = upload is not None
    if not has_file and not url:
        raise _error("upload", tk._("Send a file (upload) or a URL (url)"))
    if has_file:
        size = _file_size(upload)
        limit = config.max_upload_bytes()
        if size is not None and size > limit:
            raise _error("upload", too_large_message(size))
    key = upload_keys.key_of(context, data_dict)
    pkg, start = _resolve_for_upload(context, data_dict, "" if has_file else url)
    fingerprint = None
    if key is not None:
        fingerprint = upload_keys.fingerprint_of(upload if has_file else None, url)
        if not upload_keys.claim(key, fingerprint):
            if pkg is None:  # started meanwhile by the request that holds the key
                pkg, start = _resolve_for_upload(context, data_dict, "" if has_file else url)
            first = upload_keys.first(key, fingerprint, pkg.id if pkg is not None else None)
            return _answer(first, bool(data_dict.get("wait")), queued=True)
    status = submission_state.status_of(pkg.id) if pkg is not None else states.INITIAL
    if status not in states.UPLOADABLE:
        if key is not None:
            model.Session.rollback()  # a refused request does not keep the key
        raise _error("upload", tk._(
            "This submission is {status}: a new file can only be uploaded before it is submitted or after it is returned"
        ).format(status=status))
    resource_id = str(uuid.uuid4())
    try:
        if pkg is None:
            pkg = start()
        resource_dict: dict[str, Any] = {"id": resource_id, "package_id": pkg.id,
                                         "description": data_dict.get("description") or ""}
        if has_file:
            resource_dict["upload"] = upload
            resource_dict["url"] = upload.filename
        else:
            resource_dict["url"] = url
        channel = context.get(CHANNEL_KEY)
        inner = _platform(context, **{
            CHANNEL_KEY: channel if channel in CHANNELS else ("api" if has_file else "url"),
            DEFER_KEY: True,
            "defer_commit": True,
        })
        resource = tk.get_action("resource_create")(inner, resource_dict)
        row = model.Session.get(Upload, resource["id"])
        if has_file:
            # a file that is not a readable table is answered now
            jobs.intake_now(row, sha256=upload_keys.file_sha256(fingerprint))
        if key is not None:
            upload_keys.bind(key, pkg.id, row.id)
        model.repo.commit()
    except BaseException:
        model.Session.rollback()
        _discard_stored(resource_id)
        raise
    # someone waits for this file's report: it is validated before bulk pushes
    first = bool(data_dict.get("wait")) or context.get(CHANNEL_KEY) == "browser"
    queued = jobs.enqueue_committed(row, first=first) if row.status == "pending" else True
    return _answer(row, bool(data_dict.get("wait")), queued=queued)


def _answer(row: Upload, wait: bool, queued: bool) -> dict[str, Any]:
    """What an upload answers (the first request and a retry with its key
    alike): a file refused at intake is a 409 carrying the kept upload; with
    ``wait``, the validation's result (an invalid file: 409)."""
    if row.status == "rejected":
        raise tk.ValidationError({
            "upload": [row.problem],
            "code": row.problem_code,
            "upload_id": row.id,
            "kept": tk._("The file is kept as upload {version} of the submission and flagged").format(version=row.version),
            "errors": upload_errors(row, reports.report_of(row.id), limit=200),
        })
    if wait and queued:
        row = _wait(row.id, float(config.upload_wait_seconds()))
        if row.status in ("invalid", "rejected", "error", "interrupted"):
            raise tk.ValidationError({
                "upload": [_upload_summary(row)],
                "upload_id": row.id,
                "status": row.status,
                "errors": upload_errors(row, reports.report_of(row.id), limit=200),
            })
    return {
        "submission": _show(row.submission_id),
        "upload": row.dictize(),
        "message": _upload_summary(row),
        "errors": upload_errors(row, reports.report_of(row.id), limit=200),
    }


def _wait(upload_id: str, seconds: float) -> Upload:
    """The upload once validated, or as it is after ``seconds``, or at once
    when the job queue cannot be asked (the upload is stored; the sweep
    queues its validation when the queue is back)."""
    deadline = time.monotonic() + seconds
    while True:
        model.Session.expire_all()
        row = model.Session.get(Upload, upload_id)
        if row.status not in IN_PROGRESS or time.monotonic() >= deadline:
            return row
        try:
            jobs.sweep([row])
        except RedisError as e:
            model.Session.rollback()
            log.warning("not waiting for upload %s: the job queue is unavailable (%s)", upload_id, e)
            return model.Session.get(Upload, upload_id)
        time.sleep(0.2)


@tk.chained_action
def resource_create(up_func: Action, context: Context, data_dict: DataDict) -> Any:
    """A file added to a submission (through our upload action, CKAN's resource
    form or its API) becomes a new numbered version, makes the submission a
    draft again and is validated.

    The resource, its lgdp_upload row, the submission's new state and the
    audit row are one transaction. CKAN's resource_create commits, so it runs
    inside a SAVEPOINT, where that commit only releases the savepoint (the
    Session's commit in SQLAlchemy 1.4's non-future mode, which CKAN 2.11
    uses); the commit below, or the caller's with ``defer_commit``, is the
    real one. When it fails nothing is kept: the rows are rolled back and the
    stored file is removed. The validation is queued after the commit
    (jobs.enqueue_committed: with Redis down, the sweep queues it later)."""
    pkg = model.Package.get(data_dict.get("package_id") or "")
    if pkg is None or pkg.type != SUBMISSION_TYPE:
        return up_func(context, data_dict)
    # uploads to one submission take turns (its row is locked until the
    # commit), so two at once get two version numbers and see each other's state
    model.Session.flush()
    catalogue.lock_package(pkg.id)
    model.Session.expire(pkg)
    state = workflow.current(pkg.id)
    model.Session.refresh(state)  # as committed by the upload before this one
    status = state.status
    if status not in states.UPLOADABLE:
        raise _error("upload", tk._(
            "This submission is {status}: a new file can only be uploaded before it is submitted or after it is returned"
        ).format(status=status))
    if context.get("defer_commit"):
        resource, row = _add_upload(up_func, context, data_dict, pkg, status)
        if not context.get(DEFER_KEY):
            jobs.enqueue(row)
        return resource
    resource_id = data_dict.get("id") or str(uuid.uuid4())
    try:
        resource, row = _add_upload(up_func, context, {**data_dict, "id": resource_id}, pkg, status)
        model.repo.commit()
    except BaseException:
        model.Session.rollback()
        _discard_stored(resource_id)
        raise
    if not context.get(DEFER_KEY):
        jobs.enqueue_committed(row)
    return resource


def _add_upload(up_func: Action, context: Context, data_dict: DataDict, pkg: model.Package,
                status: str) -> tuple[dict[str, Any], Upload]:
    """CKAN's resource_create and our row, in the current transaction (not
    committed)."""
    version = uploads.next_version(pkg.id)
    upload = data_dict.get("upload")
    filename = getattr(upload, "filename", None) or os.path.basename(str(data_dict.get("url") or "")) or None
    data_dict = {**data_dict, "name": tk._("Upload {version}: {filename}").format(version=version, filename=filename or "")}
    if not data_dict.get("format") and filename and "." in filename:
        data_dict["format"] = filename.rsplit(".", 1)[1].upper()
    data_dict["id"] = data_dict.get("id") or str(uuid.uuid4())
    version_now, _schema = current_standard(_show(pkg.extras["data_return"]))
    # The new state first: CKAN's resource_create changes the dataset and
    # indexes it when its commit (here: the savepoint's) runs, so the
    # document it writes shows this state and needs no refresh of its own.
    state = workflow.current(pkg.id)
    workflow.change(state, indexed_at_commit=True, status="draft", current_upload=data_dict["id"],
                    standard_version=version_now, signed_off_by=None, signed_off_at=None,
                    round=state.round + 1 if status == "returned" else state.round)
    deferred = context.get("defer_commit")
    context["defer_commit"] = True
    savepoint = model.Session.begin_nested()  # CKAN's commit in resource_create releases it
    root = model.Session().get_transaction()
    try:
        resource = up_func(context, data_dict)
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    finally:
        context["defer_commit"] = deferred
    if model.Session().get_transaction() is not root:
        log.error("resource_create committed upload %s for real: it is not one transaction with its row", resource["id"])
    row = Upload(
        id=resource["id"],
        submission_id=pkg.id,
        version=version,
        filename=filename,
        source_url=None if upload is not None else data_dict.get("url"),
        uploaded_by=context.get("user") or None,
        uploaded_at=_now(),
        channel=context.get(CHANNEL_KEY) or "browser",
        status="pending",
        standard_version=version_now,
        notes=[],
        queries=[],
        summary={},
    )
    model.Session.add(row)
    if status != "draft":
        audit.record(
            context, object_type=SUBMISSION_TYPE, object_id=pkg.id, object_name=pkg.name, action="upload",
            from_state=status, to_state="draft",
            diff={"upload": {"from": None, "to": version}},
        )
    model.Session.flush()
    return resource, row


@tk.chained_action
def resource_update(up_func: Action, context: Context, data_dict: DataDict) -> Any:
    """An upload of a submission is never overwritten: a new file is a new
    version (lgdp_submission_upload). Its name and description may change."""
    res = model.Resource.get(data_dict.get("id") or "")
    pkg = model.Package.get(res.package_id) if res is not None else None
    if pkg is None or pkg.type != SUBMISSION_TYPE or context.get(states.PLATFORM_FLAG):
        return up_func(context, data_dict)
    if data_dict.get("upload") or (data_dict.get("url") and data_dict.get("url") != res.url):
        raise _error("upload", tk._(
            "An upload is never replaced: send the new file as a new version of the submission"))
    return up_func(context, data_dict)


@tk.chained_action
def dataset_purge(up_func: Action, context: Context, data_dict: DataDict) -> Any:
    """A purged submission takes its state with it (its search document goes
    with CKAN's purge)."""
    pkg = model.Package.get(data_dict.get("id") or "")
    purged = pkg.id if pkg is not None and pkg.type == SUBMISSION_TYPE else None
    result = up_func(context, data_dict)
    if purged:
        workflow.forget(purged)
        model.repo.commit()
    return result


# ---------------------------------------------------------------- queries and states


@validate(schema.submission_explain)
def lgdp_submission_explain(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Explain a query raised by validation (e.g. a value far from the
    council's previous periods) so the submission can be signed off.

    :param id: the submission's id or name
    :param query_id: the query's id (from the upload's ``queries``)
    :param explanation: the council's explanation
    :returns: the upload
    """
    pkg = submission(data_dict.get("id"))
    tk.check_access("lgdp_submission_explain", context, {**data_dict, "id": pkg.id})
    explanation = (data_dict.get("explanation") or "").strip()
    if not explanation:
        raise _error("explanation", tk._("Missing value"))
    state = workflow.current(pkg.id)
    if state.status not in ("draft",):
        raise _error("id", tk._("Queries are explained while the submission is a draft"))
    row = model.Session.get(Upload, state.current_upload or "")
    if row is None:
        raise _error("id", tk._("This submission has no upload"))
    queries = [dict(q) for q in row.queries or []]
    found = [q for q in queries if q.get("id") == data_dict.get("query_id")]
    if not found:
        raise _error("query_id", tk._("No such query on the latest upload"))
    found[0].update(explanation=explanation, explained_by=context.get("user"), explained_at=_now().isoformat())
    row.queries = queries
    audit.record(
        context, object_type=SUBMISSION_TYPE, object_id=pkg.id, object_name=pkg.name, action="explain",
        reason=explanation, diff={"query": {"from": None, "to": found[0].get("message")}},
    )
    model.repo.commit()
    return row.dictize()


def _check_ready(state: SubmissionState) -> Upload:
    row = model.Session.get(Upload, state.current_upload or "")
    if row is None:
        raise _error("action", tk._("Nothing has been uploaded yet"))
    if row.status != "valid":
        raise _error("action", tk._("The latest upload (version {version}) is {status}: upload a file that passes validation").format(
            version=row.version, status=row.status))
    unexplained = row.unexplained()
    if unexplained:
        raise _error("action", tk._("{n} queries need an explanation first: {first}").format(
            n=len(unexplained), first=unexplained[0].get("message")))
    return row


@validate(schema.submission_transition)
def lgdp_submission_transition(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Move a submission on.

    :param id: the submission's id or name
    :param action: ``sign_off`` (a council admin, the certifier),
        ``withdraw_sign_off``, ``submit`` (a council editor), ``accept`` or
        ``return`` (an editor of an agency owning or requesting the return, or
        of the coordinating body)
    :param reason: required to return; kept in the audit trail
    :param effective_date: (sysadmins only) the date the step really
        happened, for history migrated from before the platform (ISO date)
    :returns: the submission
    """
    tk.check_access("lgdp_submission_transition", context, data_dict)
    pkg = submission(data_dict.get("id"))
    transition = states.TRANSITIONS[data_dict["action"]]
    # steps of one submission take turns: the second sees the first's outcome
    catalogue.lock_package(pkg.id)
    state = workflow.current(pkg.id)
    model.Session.refresh(state)
    current = state.status
    if current not in transition.sources:
        allowed = ", ".join(states.actions_from(current)) or tk._("none")
        raise _error("action", tk._("A submission that is {current} cannot {action}; it can: {allowed}").format(
            current=current, action=transition.action.replace("_", " "), allowed=allowed))
    reason = (data_dict.get("reason") or "").strip()
    if transition.needs_reason and not reason:
        raise _error("reason", tk._("Say why the submission is returned"))
    row = _check_ready(state) if transition.needs_valid_upload else None

    now = _now().replace(microsecond=0)
    today = _today().isoformat()
    if data_dict.get("effective_date"):
        if not access.context_actor(context).sysadmin:
            raise _error("effective_date", tk._("Only a sysadmin records steps with an earlier date"))
        today = data_dict["effective_date"].isoformat()
        now = datetime.datetime.combine(data_dict["effective_date"], datetime.time(12))
        reason = (reason + " " if reason else "") + tk._("(recorded with effective date {date})").format(date=today)
    due = pkg.extras.get("due_date")
    values = {"user": context.get("user"), "now": now, "clear": None, "reason": reason or None,
              "checked_upload": row.id if row else None, "submitted_upload": state.submitted_upload,
              "late": bool(due and today > due)}
    workflow.change(state, status=transition.target,
                    **{name: values[value] for name, value in transition.records})
    audit.record(
        context, object_type=SUBMISSION_TYPE, object_id=pkg.id, object_name=pkg.name, action=transition.action,
        from_state=current, to_state=transition.target, reason=reason or None,
        diff={"submission_status": {"from": current, "to": transition.target}},
    )
    if transition.announces:
        # the event and its deliveries are stored in the same transaction as
        # the step (the receiver commits it), and queued after the commit

        group = model.Group.get(pkg.owner_org)
        events.announce(f"submission.{transition.target}", return_id=pkg.extras.get("data_return") or "",
                 subject_kind="submission", subject_id=pkg.id,
                 council_gss=group.extras.get("gss_code") if group is not None else None,
                 data={"period": pkg.extras.get("period"), "from": current, "to": transition.target,
                       "reason": reason or None, "by": context.get("user")})
    model.repo.commit()
    result = _show(pkg.id)
    if transition.action == "accept":
        # the central repository consolidates it (ckanext.lgdp.repository.jobs).
        # The acceptance is committed with consolidation_status "pending": with
        # Redis down, the consolidation sweep queues it later, and the step is
        # answered as done (it is).
        from redis.exceptions import RedisError

        try:
            events.announce_accepted(pkg.id)
        except RedisError as e:
            log.warning("submission %s is accepted but its consolidation could not be queued (%s): "
                        "the consolidation sweep will queue it", pkg.name, e)
    return result


# ---------------------------------------------------------------- reading


@tk.side_effect_free
@validate(schema.upload_list)
def lgdp_upload_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """Every upload of a submission, newest first, with its validation status.

    :param id: the submission's id or name
    """
    pkg = submission(data_dict.get("id"))
    tk.check_access("lgdp_upload_list", context, {"id": pkg.id})
    rows = uploads.uploads_of(pkg.id)
    jobs.sweep([r for r in rows if r.status in IN_PROGRESS])
    return [r.dictize() for r in rows]


@tk.side_effect_free
@validate(schema.upload_show)
def lgdp_upload_show(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """One upload with its validation report, row by row.

    :param id: the upload's (resource) id
    :param limit: the most errors to list (default 1000, at most 100000)
    :returns: the upload, with ``errors`` ([{row, field, field_title, column,
        cell, type, title, message, summary, advice}]: ``message`` is
        Frictionless's, ``summary`` the same in plain words with what to do,
        in the request's language) and ``report`` (the Frictionless report;
        here cells over ``messages.CELL_CHARS`` characters are shortened with
        "…", ``resource_validation_show`` and the file keep them whole)
    """
    row = model.Session.get(Upload, data_dict["id"])
    if row is None:
        raise tk.ObjectNotFound(tk._("No upload {id}").format(id=data_dict["id"]))
    tk.check_access("lgdp_upload_show", context, data_dict)
    jobs.sweep([row])
    report = reports.report_of(row.id)
    return {**row.dictize(), "errors": upload_errors(row, report, limit=data_dict["limit"]), "report": reports.shortened(report)}


@validate(schema.validation_sweep)
def lgdp_validation_sweep(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Find uploads whose validation stopped (the worker died): retry them,
    or after the last attempt mark them "interrupted". It takes no parameters.

    :returns: ``{"retried": n, "interrupted": m}``
    """
    tk.check_access("lgdp_validation_sweep", context, data_dict)
    return jobs.sweep(uploads.in_progress())


@validate(schema.search_refresh)
def lgdp_search_refresh(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Refresh, now, the search documents of submissions whose state changed
    since they were indexed (a worker does it in batches after each step;
    this takes what a lost job or a Solr outage left). It takes no
    parameters.

    :returns: ``{"refreshed": n, "removed": m, "pending": k}`` (``pending``:
        documents still stale afterwards)
    """
    tk.check_access("lgdp_search_refresh", context, data_dict)
    result = indexing.refresh()
    return {**result, "pending": indexing.backlog()["pending"]}
