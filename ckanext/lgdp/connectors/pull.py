"""Pull connectors: the platform fetches a council's return from its own
system on a schedule and submits it as an upload like any other.

A run fetches the connector's URL through the platform's fetcher
(ckanext.lgdp.fetch: a public https address only, redirects checked), with
its stored, encrypted auth header and the last ETag; it skips content it has
seen (304, or the same SHA-256), and otherwise uploads it to the council's
submission for the latest ended period, where it is validated as usual.
Every run is recorded; a failure (timeout, a refused address, TLS, 4xx/5xx,
too large, a file the intake refuses) is retried with a growing delay and
shown to the council. The council's editors disable, enable and delete their
connectors; a disabled one is never run.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import io
import logging
import os
from typing import Any

from cryptography.fernet import Fernet
from werkzeug.datastructures import FileStorage

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import Context, DataDict

from ckanext.lgdp import access, config, fetch
from ckanext.lgdp.connectors import schema
from ckanext.lgdp.connectors.auth import council_editor
from ckanext.lgdp.model import Connector, ConnectorRun
from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.params import validate
from ckanext.lgdp.register import audit, returns
from ckanext.lgdp.register import calendar as cal

log = logging.getLogger(__name__)

__all__ = [
    "lgdp_connector_create", "lgdp_connector_list", "lgdp_connector_run", "lgdp_connector_run_list",
    "lgdp_connector_disable", "lgdp_connector_enable", "lgdp_connector_delete",
]

AUDIT_TYPE = "connector"
# The context key the upload action reads its channel from (no API caller can
# set a context; ckanext.lgdp.submissions.actions.CHANNEL_KEY).
UPLOAD_CHANNEL_KEY = "lgdp_upload_channel"

RETRY_BASE_MINUTES = 5


# ---------------------------------------------------------------- secrets


def _fernet() -> Any:
    secret = tk.config.get("ckanext.lgdp.connector_key") or tk.config.get("SECRET_KEY") or tk.config.get("beaker.session.secret")
    if not secret:
        raise tk.ValidationError({"auth_secret": [tk._("The platform has no key to encrypt secrets with")]})
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(str(secret).encode()).digest()))


def encrypt(value: str) -> str:
    return _fernet().encrypt(value.encode()).decode()


def decrypt(value: str) -> str:
    return _fernet().decrypt(value.encode()).decode()


# ---------------------------------------------------------------- a run


def target_period(return_pkg: model.Package, today: datetime.date) -> cal.Period | None:
    """The latest period that has ended: the one a scheduled pull fills."""
    frequency = return_pkg.extras.get("frequency") or ""
    basis = return_pkg.extras.get("period_basis")
    current = cal.period_containing(frequency, basis, today)
    if current is None:
        return None
    return cal.period_containing(frequency, basis, current.start - datetime.timedelta(days=1))


def _fail(conn: Connector, run: ConnectorRun, error: str, status: int | None = None) -> ConnectorRun:
    run.outcome, run.error, run.http_status = "failed", error, status
    conn.failures += 1
    delay = min(conn.interval_minutes, RETRY_BASE_MINUTES * 2 ** (conn.failures - 1))
    conn.next_run_at = _now() + datetime.timedelta(minutes=delay)
    return run


def run_connector(conn: Connector, today: datetime.date | None = None) -> ConnectorRun:
    today = today or datetime.date.today()
    run = ConnectorRun(connector_id=conn.id, started_at=_now(), outcome="running")
    model.Session.add(run)
    return_pkg = model.Package.get(conn.return_id)
    council = model.Group.get(conn.council_id)
    period = target_period(return_pkg, today) if return_pkg is not None else None
    run.period = period.label if period else None
    try:
        if period is None or council is None:
            return _fail(conn, run, tk._("The return has no period to fill"))
        headers = {"User-Agent": "LGDP-Connector/1.0"}
        if conn.auth_secret:
            headers[conn.auth_header or "Authorization"] = decrypt(conn.auth_secret)
        if conn.last_etag:
            headers["If-None-Match"] = conn.last_etag
        try:
            answer = fetch.get(conn.url, headers=headers, max_bytes=config.max_upload_bytes(),
                               timeout=config.download_timeout_seconds())
        except fetch.FetchError as e:
            return _fail(conn, run, e.message)
        run.http_status = answer.status
        if answer.status == 304:
            run.outcome = "unchanged"
            return run
        if answer.status >= 300:
            return _fail(conn, run, tk._("The council's server answered {status}").format(status=answer.status),
                         answer.status)
        etag = answer.headers.get("ETag")
        content = answer.body
        digest = hashlib.sha256(content).hexdigest()
        if digest == conn.last_sha256:
            run.outcome = "unchanged"
            conn.last_etag = etag or conn.last_etag
            return run
        filename = os.path.basename(conn.url.split("?", 1)[0]) or "pull.csv"
        try:
            result = tk.get_action("lgdp_submission_upload")(
                {"user": conn.created_by, UPLOAD_CHANNEL_KEY: "pull"},
                {"data_return": return_pkg.name, "council": council.name, "period": period.label,
                 "upload": FileStorage(io.BytesIO(content), filename=filename),
                 "description": tk._("Fetched from {url}").format(url=conn.url)},
            )
        except tk.NotAuthorized:
            return _fail(conn, run, tk._("{user}, who set up this connector, can no longer upload for the council").format(
                user=conn.created_by))
        except tk.ValidationError as e:
            run.upload_id = e.error_dict.get("upload_id")
            message = "; ".join(e.error_dict.get("upload") or []) or str(e.error_dict)
            if run.upload_id is None:  # the submission takes no upload now (submitted or accepted)
                run.outcome, run.error = "skipped", message
                conn.next_run_at = _now() + datetime.timedelta(minutes=conn.interval_minutes)
                return run
            conn.last_sha256 = digest
            return _fail(conn, run, message)
        run.outcome, run.upload_id = "created", result["upload"]["id"]
        conn.last_sha256, conn.last_etag = digest, etag
        conn.failures = 0
        conn.next_run_at = _now() + datetime.timedelta(minutes=conn.interval_minutes)
        return run
    finally:
        if run.outcome in ("unchanged",):
            conn.failures = 0
            conn.next_run_at = _now() + datetime.timedelta(minutes=conn.interval_minutes)
        run.finished_at = _now()
        model.Session.commit()


def due_connectors(now: datetime.datetime | None = None) -> list[Connector]:
    now = now or _now()
    return (model.Session.query(Connector)
            .filter(Connector.active.is_(True), Connector.next_run_at <= now)
            .order_by(Connector.next_run_at).all())


# ---------------------------------------------------------------- actions


@validate(schema.connector_create)
def lgdp_connector_create(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Set up a scheduled pull for one council and return.

    :param council: the council's id or name (you must be one of its editors)
    :param data_return: the return's id or name
    :param url: where the council's system publishes the file (https)
    :param auth_header: header name for a token (default Authorization)
    :param auth_secret: the header's value; stored encrypted, never shown again
    :param interval_minutes: how often (default 1440: daily; from 5 minutes
        to a year)
    """
    tk.check_access("lgdp_connector_create", context, data_dict)
    group = model.Group.get(data_dict.get("council") or "")
    if group is None or access.org_type(group.id) != access.COUNCIL:
        raise tk.ObjectNotFound(tk._("No council {name}").format(name=data_dict.get("council")))
    if not council_editor(context, group.id):
        raise tk.NotAuthorized(tk._("Only the council's editors set up its connectors"))
    pkg = returns.package(data_dict.get("data_return"))
    url = data_dict["url"].strip()
    interval = data_dict["interval_minutes"]
    conn = Connector(council_id=group.id, return_id=pkg.id, url=url, auth_header=data_dict.get("auth_header") or None,
                     auth_secret=encrypt(data_dict["auth_secret"]) if data_dict.get("auth_secret") else None,
                     interval_minutes=interval, active=True, next_run_at=_now(), failures=0,
                     created_by=access.context_actor(context).name or "", created=_now())
    model.Session.add(conn)
    model.repo.commit()
    return conn.dictize()


@tk.side_effect_free
@validate(schema.no_parameters)
def lgdp_connector_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """The connectors of the councils you belong to (all, for the
    coordinating body), each with its latest run. It takes no parameters."""
    tk.check_access("lgdp_connector_list", context, data_dict)
    who = access.context_actor(context)
    if who.anonymous:
        raise tk.NotAuthorized(tk._("Sign in to see connectors"))
    rows = model.Session.query(Connector).order_by(Connector.created).all()
    out = []
    for conn in rows:
        if who.is_coordinator() or who.in_org(conn.council_id):
            last = (model.Session.query(ConnectorRun).filter(ConnectorRun.connector_id == conn.id)
                    .order_by(ConnectorRun.started_at.desc()).first())
            out.append({**conn.dictize(), "last_run": last.dictize() if last else None})
    return out


def _connector(context: Context, ident: str | None) -> Connector:
    conn = model.Session.get(Connector, ident or "")
    who = access.context_actor(context)
    if conn is None or not (who.is_coordinator() or who.in_org(conn.council_id)):
        raise tk.ObjectNotFound(tk._("No connector {id}").format(id=ident))
    return conn


@validate(schema.connector_run)
def lgdp_connector_run(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Run a connector now (a council editor; or every due one, for the
    coordinating body, with ``due=true``).

    :param id: the connector's id (unless ``due``)
    :param due: true to run every connector that is due (default false)
    """
    tk.check_access("lgdp_connector_run", context, data_dict)
    if data_dict["due"]:
        if not access.context_actor(context).is_governor():
            raise tk.NotAuthorized(tk._("Only the coordinating body runs every due connector"))
        runs = [run_connector(c).dictize() for c in due_connectors()]
        return {"runs": runs}
    if not data_dict.get("id"):
        raise tk.ValidationError({"id": [tk._("Missing value: give the connector's id, or due=true")]})
    conn = _connector(context, data_dict["id"])
    if not council_editor(context, conn.council_id):
        raise tk.NotAuthorized(tk._("Only the council's editors run its connectors"))
    if not conn.active:
        raise tk.ValidationError({"id": [tk._("This connector is disabled: enable it to run it")]})
    return run_connector(conn).dictize()


@tk.side_effect_free
@validate(schema.connector_id)
def lgdp_connector_run_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """Every run of a connector, newest first.

    :param id: the connector's id
    """
    tk.check_access("lgdp_connector_run_list", context, data_dict)
    conn = _connector(context, data_dict.get("id"))
    rows = (model.Session.query(ConnectorRun).filter(ConnectorRun.connector_id == conn.id)
            .order_by(ConnectorRun.started_at.desc()).limit(500))
    return [r.dictize() for r in rows]


def _switch(context: Context, data_dict: DataDict, active: bool) -> dict[str, Any]:
    """Disable or enable a connector, with an audit row when that changes it."""
    conn = _connector(context, data_dict.get("id"))
    tk.check_access("lgdp_connector_enable" if active else "lgdp_connector_disable", context, data_dict)
    if conn.active != active:
        states = {True: "active", False: "disabled"}
        audit.record(context, object_type=AUDIT_TYPE, object_id=conn.id, object_name=conn.url,
                     action="enable" if active else "disable", from_state=states[conn.active],
                     to_state=states[active], reason=data_dict.get("reason") or None)
        conn.active = active
        if active:  # due at once, with a clean slate
            conn.next_run_at, conn.failures = _now(), 0
        model.repo.commit()
    return conn.dictize()


@validate(schema.connector_switch)
def lgdp_connector_disable(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Stop a connector: the scheduler no longer runs it, nor can it be run by
    hand; its settings and runs are kept (lgdp_connector_enable starts it
    again). A council's editors.

    :param id: the connector's id
    :param reason: why (optional; kept in the audit trail)
    """
    return _switch(context, data_dict, False)


@validate(schema.connector_switch)
def lgdp_connector_enable(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Start a disabled connector again; it is due at once.

    :param id: the connector's id
    :param reason: why (optional; kept in the audit trail)
    """
    return _switch(context, data_dict, True)


@validate(schema.connector_switch)
def lgdp_connector_delete(context: Context, data_dict: DataDict) -> None:
    """Remove a connector for good, with its stored secret and its run
    history; the uploads it made stay on their submissions, and the audit
    trail keeps what it was. A council's editors.

    :param id: the connector's id
    :param reason: why (optional; kept in the audit trail)
    """
    conn = _connector(context, data_dict.get("id"))
    tk.check_access("lgdp_connector_delete", context, data_dict)
    runs = model.Session.query(ConnectorRun).filter(ConnectorRun.connector_id == conn.id)
    audit.record(context, object_type=AUDIT_TYPE, object_id=conn.id, object_name=conn.url, action="delete",
                 from_state="active" if conn.active else "disabled", to_state="deleted",
                 reason=data_dict.get("reason") or None,
                 diff={"council_id": {"from": conn.council_id, "to": None},
                       "return_id": {"from": conn.return_id, "to": None},
                       "runs": {"from": runs.count(), "to": 0}})
    runs.delete(synchronize_session=False)
    model.Session.delete(conn)
    model.repo.commit()
