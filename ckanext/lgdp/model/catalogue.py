"""Reads and locks on CKAN's own tables that the platform's actions need:
a council by its GSS code, the submissions past their due date, and the
locks that keep two requests from writing one submission at once."""
from __future__ import annotations

import hashlib

import sqlalchemy as sa

from ckan import model


def council_by_gss(code: str | None) -> model.Group | None:
    """The active organisation whose ``gss_code`` is ``code`` (any case)."""
    if not code:
        return None
    extra = (model.Session.query(model.GroupExtra)
             .filter(model.GroupExtra.key == "gss_code", model.GroupExtra.value == code.strip().upper(),
                     model.GroupExtra.state == "active")
             .first())
    group = model.Group.get(extra.group_id) if extra is not None else None
    return group if group is not None and group.state == "active" else None


def past_due(dataset_type: str, today: str) -> list[str]:
    """The ids of the active datasets of a type whose ``due_date`` (ISO) is
    before ``today``."""
    rows = (model.Session.query(model.Package.id)
            .join(model.PackageExtra, model.PackageExtra.package_id == model.Package.id)
            .filter(model.Package.type == dataset_type, model.Package.state == "active")
            .filter(model.PackageExtra.key == "due_date", model.PackageExtra.value < today)
            .all())
    return [pkg_id for (pkg_id,) in rows]


def lock_name(name: str) -> None:
    """Hold a PostgreSQL advisory lock named ``name`` until the transaction ends."""
    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    model.Session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def lock_package(package_id: str) -> None:
    """Lock a dataset's row until the transaction ends (others wait)."""
    model.Session.execute(sa.text("SELECT id FROM package WHERE id = :id FOR UPDATE"), {"id": package_id})
