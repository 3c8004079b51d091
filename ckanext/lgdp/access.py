"""Who a user is to the platform: their organisations, each with its type
(council, agency, coordinator) and the user's capacity in it.

The access policy (issue: organisation-based access) is decided here, once,
for auth functions, permission labels and pages alike.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ckan.authz as authz
from ckan import model

COUNCIL = "council"
AGENCY = "agency"
COORDINATOR = "coordinator"

# Capacities, weakest first.
RANKS = {"member": 1, "editor": 2, "admin": 3}


@dataclass(frozen=True)
class Membership:
    org_id: str
    org_name: str
    org_type: str
    capacity: str

    def at_least(self, capacity: str) -> bool:
        return RANKS.get(self.capacity, 0) >= RANKS[capacity]


@dataclass(frozen=True)
class Actor:
    """A user as the access policy sees them."""

    name: str | None
    user_id: str | None
    sysadmin: bool = False
    memberships: tuple[Membership, ...] = field(default_factory=tuple)

    @property
    def anonymous(self) -> bool:
        return self.user_id is None

    def orgs(self, org_type: str, capacity: str = "member") -> list[Membership]:
        return [m for m in self.memberships if m.org_type == org_type and m.at_least(capacity)]

    def in_org(self, org_id: str, capacity: str = "member") -> bool:
        return any(m.org_id == org_id and m.at_least(capacity) for m in self.memberships)

    def is_coordinator(self, capacity: str = "member") -> bool:
        return self.sysadmin or bool(self.orgs(COORDINATOR, capacity))

    def is_governor(self) -> bool:
        """May take governance actions: a sysadmin, or an editor or admin of
        the coordinating body."""
        return self.is_coordinator("editor")

    def is_reviewer(self) -> bool:
        """May read every return's metadata and audit trail: any member of
        the coordinating body (its plain members are the governance reviewers)."""
        return self.is_coordinator("member")


def actor(user: str | None) -> Actor:
    """The Actor for a user name or id ('' or None: anonymous)."""
    if not user:
        return Actor(name=None, user_id=None)
    obj = model.User.get(user)
    if obj is None or obj.state != "active":
        return Actor(name=None, user_id=None)
    rows = (
        model.Session.query(model.Member.capacity, model.Group.id, model.Group.name)
        .join(model.Group, model.Group.id == model.Member.group_id)
        .filter(model.Member.table_name == "user")
        .filter(model.Member.table_id == obj.id)
        .filter(model.Member.state == "active")
        .filter(model.Group.state == "active")
        .filter(model.Group.is_organization.is_(True))
        .all()
    )
    types = org_types([gid for _, gid, _ in rows])
    memberships = tuple(
        Membership(org_id=gid, org_name=gname, org_type=types.get(gid, ""), capacity=capacity)
        for capacity, gid, gname in rows
    )
    return Actor(
        name=obj.name,
        user_id=obj.id,
        sysadmin=authz.is_sysadmin(obj.name),
        memberships=memberships,
    )


def org_types(org_ids: list[str]) -> dict[str, str]:
    """org id -> org_type (a scheming field, stored as a group extra)."""
    if not org_ids:
        return {}
    rows = (
        model.Session.query(model.GroupExtra.group_id, model.GroupExtra.value)
        .filter(model.GroupExtra.group_id.in_(org_ids))
        .filter(model.GroupExtra.key == "org_type")
        .filter(model.GroupExtra.state == "active")
        .all()
    )
    return dict(rows)


def org_type(org_id: str) -> str:
    return org_types([org_id]).get(org_id, "")


def context_actor(context: dict[str, Any]) -> Actor:
    return actor(context.get("user"))


def orgs_of_type(kind: str) -> list[dict[str, str]]:
    """Active organisations of one type: [{"id", "name", "title"}], by title."""
    rows = (
        model.Session.query(model.Group.id, model.Group.name, model.Group.title)
        .join(model.GroupExtra, model.GroupExtra.group_id == model.Group.id)
        .filter(model.GroupExtra.key == "org_type")
        .filter(model.GroupExtra.value == kind)
        .filter(model.GroupExtra.state == "active")
        .filter(model.Group.state == "active")
        .filter(model.Group.is_organization.is_(True))
        .all()
    )
    return sorted(
        ({"id": gid, "name": name, "title": title or name} for gid, name, title in rows),
        key=lambda o: o["title"].lower(),
    )
