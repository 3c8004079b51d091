"""Writing and reading the audit trail of governed objects."""
from __future__ import annotations

from typing import Any

from ckan import model

from ckanext.lgdp import access
from ckanext.lgdp.model import AuditEntry

# Keys that change on every write or are derived: not metadata changes.
IGNORED = {
    "metadata_modified", "metadata_created", "revision_id", "num_resources", "num_tags",
    "organization", "relationships_as_object", "relationships_as_subject", "groups",
    "tracking_summary", "isopen", "license_title", "license_url", "creator_user_id",
    "resources", "tags", "state",
}


def _comparable(pkg: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in pkg.items() if k not in IGNORED}
    out["tags"] = sorted(t["name"] for t in pkg.get("tags") or [])
    out["resources"] = sorted(
        (r.get("name") or r.get("id"), r.get("url"), r.get("format")) for r in pkg.get("resources") or []
    )
    return out


def package_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Field-level difference of two package dicts: {field: {"from": a, "to": b}}."""
    before, after = _comparable(old), _comparable(new)
    return {
        key: {"from": before.get(key), "to": after.get(key)}
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    }


def record(
    context: dict[str, Any],
    *,
    object_type: str,
    object_id: str,
    action: str,
    object_name: str | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    reason: str | None = None,
    diff: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit row to the session (committed with the caller's change)."""
    actor = access.context_actor(context)
    entry = AuditEntry(
        object_type=object_type,
        object_id=object_id,
        object_name=object_name,
        action=action,
        actor_id=actor.user_id,
        actor_name=actor.name or context.get("user") or None,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
        diff=diff or {},
    )
    model.Session.add(entry)
    return entry


def entries(object_id: str | None = None, object_type: str | None = None, limit: int = 1000, offset: int = 0) -> list[AuditEntry]:
    q = model.Session.query(AuditEntry)
    if object_id:
        q = q.filter(AuditEntry.object_id == object_id)
    if object_type:
        q = q.filter(AuditEntry.object_type == object_type)
    return q.order_by(AuditEntry.timestamp.desc(), AuditEntry.id).offset(offset).limit(limit).all()
