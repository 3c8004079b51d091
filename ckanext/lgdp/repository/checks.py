"""The quality checks of a return's central table, as a service: read the
table (folded by the database where the checks allow), run the checks
(``repository/qa.py``, pure), and store their flags with their workflow
state: new ones open, ones found again refreshed, ones no longer found
resolved; each new flag is announced (``qa.flag_raised``).

Called by the QA job (``repository/jobs.py``), the actions and the CLI; the
flags' own workflow (explain, close) is in ``repository/actions.py``."""
from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ckan import model

from ckanext.lgdp import access
from ckanext.lgdp.events import announce
from ckanext.lgdp.model import QAFlag
from ckanext.lgdp.model import standards as standard_versions
from ckanext.lgdp.model.audit import now as _now
from ckanext.lgdp.register import returns
from ckanext.lgdp.repository import consolidate, qa, reference


def platform_councils() -> list[dict[str, str]]:
    """The councils on the platform, with their GSS codes: those expected to
    provide every return ("missing" is about them)."""
    names = reference.council_names()
    out = []
    for org in access.orgs_of_type(access.COUNCIL):
        gss = model.Group.get(org["id"]).extras.get("gss_code")
        if gss:
            out.append({"gss_code": gss, "name": names.get(gss, org["title"])})
    return out


def table_frame(return_pkg: model.Package, period: str | None = None) -> tuple[Any, dict[str, Any] | None]:
    """The return's consolidated rows (latest standard version) as a
    DataFrame: all of them, or those the checks of ``period`` need; folded
    into one row per council-period by the database where the checks allow
    (``qa.aggregation``)."""
    table = model.Package.get(consolidate.table_name(return_pkg.name))
    if table is None or table.state != "active":
        return pd.DataFrame(), None
    # from the database (consolidate.version_resources), not a search-index copy
    versions = consolidate.version_resources(table.id)
    if not versions:
        return pd.DataFrame(), None
    version = max(versions)
    latest = {"id": versions[version], "standard_version": version}
    row = standard_versions.version_of(return_pkg.id, version)
    schema = row.schema if row is not None else None
    folding = qa.aggregation(schema) if schema else None

    def read(periods: list[str] | None) -> Any:
        if folding is None:
            return consolidate.read_table(latest["id"], periods)
        return consolidate.read_council_periods(latest["id"], *folding, periods)

    periods = consolidate.check_periods(latest["id"], period) if period is not None else None
    frame = read(periods)
    if frame.empty and periods is not None:  # nobody reported the period: every council is missing
        frame = read(None)
    if "period_start" in frame:
        frame["period_start"] = frame["period_start"].astype(str)
    return frame, schema


def run_qa(return_id: str, period: str | None = None) -> dict[str, int]:
    """Run the checks on a return's table and store their flags: new ones
    open, ones found again refreshed, ones no longer found resolved."""
    return_pkg = returns.package(return_id)
    frame, schema = table_frame(return_pkg, period)
    if frame.empty or not schema:
        return {"raised": 0, "seen": 0, "resolved": 0}
    # the table stores each row's population and rates (consolidate.enrich):
    # the checks read them, as the dashboards do
    councils = platform_councils()
    flags = qa.run_checks(frame, schema, period=period, councils=councils)
    existing = {f.key: f for f in model.Session.query(QAFlag).filter(QAFlag.return_id == return_pkg.id)}
    now = _now()
    raised = seen = resolved = 0
    found_keys = set()
    new_flags: list[QAFlag] = []
    for flag in flags:
        found_keys.add(flag.key)
        row = existing.get(flag.key)
        values = dict(check=flag.check, severity=flag.severity, council_gss=flag.council_gss,
                      council_name=flag.council_name, period=flag.period, field=flag.field,
                      value=_num(flag.value), expected=_num(flag.expected), reason=flag.reason,
                      detail=_jsonable(flag.detail), last_seen_at=now)
        if row is None:
            row = QAFlag(return_id=return_pkg.id, key=flag.key, status="open", raised_at=now, **values)
            model.Session.add(row)
            new_flags.append(row)
            raised += 1
        else:
            for k, v in values.items():
                setattr(row, k, v)
            if row.status == "resolved":
                row.status = "open"
            seen += 1
    for key, row in existing.items():
        in_scope = period is None or row.period == period
        if in_scope and key not in found_keys and row.status in ("open", "explained"):
            row.status = "resolved"
            row.last_seen_at = now
            resolved += 1
    model.repo.commit()

    for row in new_flags:
        announce("qa.flag_raised", return_id=return_pkg.id, subject_kind="qa-flag", subject_id=row.id,
                 council_gss=row.council_gss, data={"check": row.check, "severity": row.severity,
                                                    "period": row.period, "reason": row.reason})
    return {"raised": raised, "seen": seen, "resolved": resolved}


def _num(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value or {}, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


# ---------------------------------------------------------------- a flag's parties


def flag_council(flag_id: str) -> model.Group | None:
    """The council a flag is about (its editors explain it)."""
    row = model.Session.get(QAFlag, flag_id or "")
    if row is None or not row.council_gss:
        return None
    extra = (model.Session.query(model.GroupExtra)
             .filter(model.GroupExtra.key == "gss_code", model.GroupExtra.value == row.council_gss,
                     model.GroupExtra.state == "active").first())
    return model.Group.get(extra.group_id) if extra is not None else None


def flag_receivers(flag_id: str) -> list[str]:
    """The agencies of a flag's return (as organisation ids): they close it,
    with the coordinating body."""
    row = model.Session.get(QAFlag, flag_id or "")
    return access.return_agency_ids(row.return_id) if row is not None else []
