"""Actions of the register of data returns: the governance lifecycle, the
audit trail, versions of data standards and periodic reviews."""
from __future__ import annotations

import contextlib
import datetime
from typing import Any, Iterator

import ckan.plugins.toolkit as tk
from ckan import model
from ckan.types import Action, Context, DataDict

from ckanext.lgdp.events import announce
from ckanext.lgdp.model import StandardVersion
from ckanext.lgdp.model import standards as standard_versions
from ckanext.lgdp.params import validate
from ckanext.lgdp.register import RETURN_TYPE, audit, lifecycle, standards
from ckanext.lgdp.register import schema as input_schema
from ckanext.lgdp.register.search import iter_returns

__all__ = [
    "lgdp_return_transition",
    "lgdp_audit_list",
    "lgdp_standard_version_list",
    "lgdp_reviews_list",
    "lgdp_reviews_run",
    "package_create",
    "package_update",
    "package_delete",
]

# States in which the data standard is versioned (a proposal's standard is a draft).
VERSIONED = ("approved", "active", "under_review")


def _site_user() -> str:
    return tk.get_action("get_site_user")({"ignore_auth": True}, {})["name"]


def _show(ident: str) -> dict[str, Any]:
    return tk.get_action("package_show")({"ignore_auth": True, "use_cache": False}, {"id": ident})


def _named(ident: str, kind: str | None = RETURN_TYPE) -> dict[str, Any]:
    """The dataset (of that type) a parameter names, or a 404 naming it."""
    try:
        pkg = _show(ident)
    except tk.ObjectNotFound:
        pkg = None
    if pkg is None or (kind and pkg.get("type") != kind):
        message = tk._("No data return {name}") if kind == RETURN_TYPE else tk._("No dataset {name}")
        raise tk.ObjectNotFound(message.format(name=ident))
    return pkg


def _is_return(data_dict: DataDict) -> bool:
    """Whether the dataset named by data_dict is a data return (a cheap
    look-up, as every dataset update passes through here)."""
    ident = data_dict.get("id") or data_dict.get("name")
    pkg = model.Package.get(ident) if ident else None
    return pkg is not None and pkg.type == RETURN_TYPE


@contextlib.contextmanager
def _one_commit(context: Context) -> Iterator[None]:
    """Run the core action and our own writes (audit rows, versions) in one
    transaction, committed at the end unless the caller defers the commit."""
    deferred = context.get("defer_commit")
    context["defer_commit"] = True
    try:
        yield
    finally:
        context["defer_commit"] = deferred
    if not deferred:
        model.repo.commit()


def _add_version(
    context: Context, return_id: str, version: int, schema: dict[str, Any], changes: dict[str, Any] | None = None
) -> None:
    """Store a version of a return's standard; version 1's changes are all its fields."""
    if changes is None:
        changes = standards.diff(None, schema)
    model.Session.add(
        StandardVersion(
            return_id=return_id,
            version=version,
            schema=schema,
            changes=changes,
            created_by=context.get("user") or None,
        )
    )


def _audit_return(context: Context, pkg: dict[str, Any], action: str, **fields: Any) -> None:
    """An audit row about a data return (see audit.record for the fields)."""
    audit.record(
        context,
        object_type=fields.pop("object_type", RETURN_TYPE),
        object_id=pkg["id"],
        object_name=pkg["name"],
        action=action,
        **fields,
    )


# ---------------------------------------------------------------- chained core actions


@tk.chained_action
def package_create(up_func: Action, context: Context, data_dict: DataDict) -> Any:
    """Data returns: record the creation in the audit trail; a return created
    past the proposal stage (an import by a sysadmin) gets version 1 of its standard."""
    if data_dict.get("type") != RETURN_TYPE:
        return up_func(context, data_dict)
    versioned = data_dict.get("lifecycle_status") in VERSIONED and bool(data_dict.get("data_standard"))
    data_dict["standard_version"] = 1 if versioned else None
    with _one_commit(context):
        result = up_func(context, data_dict)
        # core honours return_id_only: we still need the dict for the trail
        created = _show(result) if isinstance(result, str) else result
        schema = standards.load(created.get("data_standard"))
        if versioned and schema:
            _add_version(context, created["id"], 1, schema)
        _audit_return(
            context,
            created,
            "create",
            to_state=created.get("lifecycle_status"),
            diff=audit.package_diff({}, created),
        )
    return result


@tk.chained_action
def package_update(up_func: Action, context: Context, data_dict: DataDict) -> Any:
    """Data returns: every metadata change leaves an audit row with its
    field-level diff, and a changed standard of an approved or active return
    becomes a new version."""
    if not _is_return(data_dict):
        return up_func(context, data_dict)
    old = _show(data_dict.get("id") or data_dict.get("name"))

    transition = context.get(lifecycle.TRANSITION_FLAG)
    old_schema = standards.load(old.get("data_standard"))
    new_version = None
    if not transition:
        # the version is the platform's to set
        data_dict["standard_version"] = old.get("standard_version")
        if old.get("lifecycle_status") in VERSIONED and "data_standard" in data_dict:
            try:
                new_schema = standards.parse(data_dict["data_standard"]) if data_dict["data_standard"] else None
            except tk.Invalid as e:
                raise tk.ValidationError({"data_standard": [e.error]})
            change = standards.diff(old_schema, new_schema)
            if new_schema and not standards.is_empty(change):
                new_version = (int(old.get("standard_version") or 0) + 1, new_schema, change)
                data_dict["standard_version"] = new_version[0]

    with _one_commit(context):
        result = up_func(context, data_dict)
        updated = _show(result) if isinstance(result, str) else result
        if new_version:
            number, schema, change = new_version
            _add_version(context, updated["id"], number, schema, change)
            _audit_return(
                context,
                updated,
                "standard-version",
                object_type="standard",
                to_state=str(number),
                from_state=str(old.get("standard_version") or ""),
                diff=change,
            )
        if not transition:
            changes = audit.package_diff(old, updated)
            if changes:
                _audit_return(
                    context,
                    updated,
                    "update",
                    from_state=old.get("lifecycle_status"),
                    to_state=updated.get("lifecycle_status"),
                    diff=changes,
                )
    if new_version:

        announce("standard.changed", return_id=updated["id"], subject_kind="data-return", subject_id=updated["id"],
                 data={"version": new_version[0], "changes": new_version[2]})
    return result


@tk.chained_action
def package_delete(up_func: Action, context: Context, data_dict: DataDict) -> Any:
    if not _is_return(data_dict):
        return up_func(context, data_dict)
    old = _show(data_dict.get("id") or data_dict.get("name"))
    with _one_commit(context):
        result = up_func(context, data_dict)
        _audit_return(context, old, "delete", from_state=old.get("lifecycle_status"))
    return result


# ---------------------------------------------------------------- lifecycle


@validate(input_schema.return_transition)
def lgdp_return_transition(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Move a data return to another lifecycle state.

    :param id: the return's id or name
    :param to: the new state: approved, rejected, active, under_review or retired
    :param reason: why (required; kept in the audit trail)
    :returns: the updated return
    """
    tk.check_access("lgdp_return_transition", context, data_dict)
    data = data_dict
    pkg = _named(data["id"])
    current, target = pkg.get("lifecycle_status") or lifecycle.INITIAL, data["to"]
    if not lifecycle.allowed(current, target):
        options = ", ".join(lifecycle.TRANSITIONS.get(current, ())) or tk._("nothing (it is closed)")
        raise tk.ValidationError(
            {"to": [tk._("A return cannot move from {current} to {target}; from {current} it can move to: {options}").format(
                current=current, target=target, options=options)]}
        )

    patch: dict[str, Any] = {"id": pkg["id"], "lifecycle_status": target}
    schema = standards.load(pkg.get("data_standard"))
    first_version = target in VERSIONED and schema and not pkg.get("standard_version")
    if first_version:
        patch["standard_version"] = 1
    inner = {
        "user": context.get("user"),
        "ignore_auth": True,
        "defer_commit": True,
        lifecycle.TRANSITION_FLAG: True,
    }
    updated = tk.get_action("package_patch")(inner, patch)
    if first_version:
        _add_version(context, pkg["id"], 1, schema)
    _audit_return(
        context,
        pkg,
        "transition",
        from_state=current,
        to_state=target,
        reason=data["reason"],
        diff={"lifecycle_status": {"from": current, "to": target}},
    )
    model.repo.commit()
    if target == "under_review":

        announce("review.due", return_id=pkg["id"], subject_kind="data-return", subject_id=pkg["id"],
                 data={"reason": data["reason"], "review_date": pkg.get("review_date")})
    return updated


# ---------------------------------------------------------------- audit trail


@tk.side_effect_free
@validate(input_schema.audit_list)
def lgdp_audit_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """The audit trail, newest first. Read-only: no action changes audit rows.

    :param id: a data return's (or another dataset's) id or name (optional:
        every object when absent, for governance reviewers)
    :param limit: at most this many rows (default 1000, at most 10000)
    :param offset: skip this many rows
    """
    object_id = _named(data_dict["id"], kind=None)["id"] if data_dict.get("id") else None
    tk.check_access("lgdp_audit_list", context, data_dict)
    rows = audit.entries(object_id=object_id, limit=data_dict["limit"], offset=data_dict["offset"])
    return [row.dictize() for row in rows]


@tk.side_effect_free
@validate(input_schema.standard_version_list)
def lgdp_standard_version_list(context: Context, data_dict: DataDict) -> list[dict[str, Any]]:
    """Every version of a return's data standard, newest first, each with the
    field-level changes against the version before.

    :param id: the return's id or name
    """
    tk.check_access("lgdp_standard_version_list", context, data_dict)
    pkg = _named(data_dict["id"])
    return [row.dictize() for row in standard_versions.versions_of(pkg["id"])]


# ---------------------------------------------------------------- reviews


def _returns_with_review_dates() -> list[dict[str, Any]]:
    return [
        p for p in iter_returns({"ignore_auth": True}, states=lifecycle.COLLECTING) if p.get("review_date")
    ]


def _parse_date(value: Any, key: str) -> datetime.date:
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise tk.ValidationError({key: [tk._("Use a date like 2026-03-31")]})


@tk.side_effect_free
@validate(input_schema.reviews_list)
def lgdp_reviews_list(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Returns whose periodic review is overdue or due soon.

    :param within_days: how far ahead "due" looks (default 90)
    :param today: the date to count from (default today)
    :returns: {"overdue": [...], "due": [...]} each item with name, title,
        owner, review_date, lifecycle_status and days (negative when overdue)
    """
    tk.check_access("lgdp_reviews_list", context, data_dict)
    within = data_dict["within_days"]
    today = data_dict.get("today") or datetime.date.today()
    overdue, due = [], []
    for pkg in _returns_with_review_dates():
        review = _parse_date(pkg["review_date"], "review_date")
        item = {
            "name": pkg["name"],
            "title": pkg["title"],
            "owner": (pkg.get("organization") or {}).get("title"),
            "review_date": review.isoformat(),
            "lifecycle_status": pkg["lifecycle_status"],
            "days": (review - today).days,
        }
        if review <= today:
            overdue.append(item)
        elif (review - today).days <= within:
            due.append(item)
    return {
        "today": today.isoformat(),
        "overdue": sorted(overdue, key=lambda i: i["review_date"]),
        "due": sorted(due, key=lambda i: i["review_date"]),
    }


@validate(input_schema.reviews_run)
def lgdp_reviews_run(context: Context, data_dict: DataDict) -> dict[str, Any]:
    """Move every active return whose review date has passed to under_review.

    :param dry_run: only say what would move (default false)
    :param today: the date to count from (default today)
    :returns: {"moved": [names], "dry_run": bool}
    """
    tk.check_access("lgdp_return_transition", context, data_dict)
    dry_run = data_dict["dry_run"]
    listing = lgdp_reviews_list({**context, "ignore_auth": True}, {"today": data_dict.get("today")})
    moved = []
    for item in listing["overdue"]:
        if item["lifecycle_status"] != "active":
            continue
        moved.append(item["name"])
        if not dry_run:
            lgdp_return_transition(
                {"user": context.get("user") or _site_user(), "ignore_auth": True},
                {
                    "id": item["name"],
                    "to": "under_review",
                    "reason": tk._("Review date {date} reached").format(date=item["review_date"]),
                },
            )
    return {"moved": moved, "dry_run": dry_run}


def run_reviews_job() -> dict[str, Any]:
    """Background job: the periodic review (enqueued by `ckan lgdp reviews --enqueue`)."""
    site_user = _site_user()
    return lgdp_reviews_run({"user": site_user, "ignore_auth": True}, {})
