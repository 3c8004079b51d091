"""Who a user is to the platform: their organisations, each with its type
(council, agency, coordinator) and the user's capacity in it.

The access policy (issue: organisation-based access) is decided here, once,
for auth functions, permission labels and pages alike.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import flask
import sqlalchemy as sa

import ckan.authz as authz
from ckan import model
from ckan.lib.plugins import DefaultPermissionLabels

from ckanext.lgdp.model import submission_state

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
    """The Actor for a user name or id ('' or None: anonymous).

    Worked out once per web request (kept on ``flask.g``, see
    ``_request_actors``) and again only after a user, membership or
    organisation changes in the database session."""
    if not user:
        return Actor(name=None, user_id=None)
    known = _request_actors()
    if known is not None and user in known:
        return known[user]
    found = _load_actor(user)
    if known is not None:
        known[user] = found
    return found


_ACTORS = "lgdp_actors"
_PRINCIPALS = "lgdp_principals"
# The rows an Actor is read from: a change to any of them forgets the actors
# of the request, and their principals.
_ACTOR_SOURCES = (model.User, model.Member, model.Group, model.GroupExtra)
# The rows principals are also read from (a return's owner and requesting
# agencies): a change to any of them forgets the principals.
_PRINCIPAL_SOURCES = (model.Package, model.PackageExtra)


def _request_memo(key: str) -> dict[str, Any] | None:
    """What this web request has already worked out under ``key`` (None
    outside a request: a CLI command or a job sees each change as it is
    made)."""
    if not flask.has_request_context():
        return None
    if key not in flask.g:
        setattr(flask.g, key, {})
    return getattr(flask.g, key)


def _request_actors() -> dict[str, Actor] | None:
    return _request_memo(_ACTORS)


@sa.event.listens_for(model.Session, "after_flush")
def _forget_actors(session: Any, _flush_context: Any) -> None:
    if not flask.has_request_context():
        return
    changed = [*session.new, *session.dirty, *session.deleted]
    actors = any(isinstance(obj, _ACTOR_SOURCES) for obj in changed)
    if actors and _ACTORS in flask.g:
        getattr(flask.g, _ACTORS).clear()
    if (actors or any(isinstance(obj, _PRINCIPAL_SOURCES) for obj in changed)) and _PRINCIPALS in flask.g:
        getattr(flask.g, _PRINCIPALS).clear()


def _load_actor(user: str) -> Actor:
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


# ---------------------------------------------------------------- the policy
#
# Who reads what, as data. Each object is described by its kind and state;
# the policy names the audiences that read it. Search (permission labels),
# auth functions and pages all go through `readers`/`principals`/`can_read`
# below, so every channel answers the same question the same way.

EVERYONE = "everyone"
OWNER_ORG = "owner-organisation"  # for a submission: its council
RETURN_AGENCIES = "return-agencies"  # the return's owner and requesting agencies
COORDINATING_BODY = "coordinating-body"

RETURN_KIND = "data-return"
SUBMISSION_KIND = "submission"
TABLE_KIND = "return-table"

ANY_STATE = "*"
# Submission states an agency never sees: the council's work in progress.
COUNCIL_ONLY_STATES = ("expected", "draft", "signed_off")
SUBMITTED_STATES = ("submitted", "accepted", "returned")

POLICY: dict[tuple[str, str], frozenset[str]] = {
    (RETURN_KIND, "public"): frozenset({EVERYONE}),
    # a return its agency keeps private (e.g. while it drafts a proposal)
    (RETURN_KIND, "private"): frozenset({OWNER_ORG, COORDINATING_BODY}),
    **{(SUBMISSION_KIND, s): frozenset({OWNER_ORG, COORDINATING_BODY}) for s in COUNCIL_ONLY_STATES},
    **{
        (SUBMISSION_KIND, s): frozenset({OWNER_ORG, RETURN_AGENCIES, COORDINATING_BODY})
        for s in SUBMITTED_STATES
    },
    (TABLE_KIND, "unpublished"): frozenset({RETURN_AGENCIES, COORDINATING_BODY}),
    (TABLE_KIND, "published"): frozenset({EVERYONE}),
}

# Permission labels (CKAN's IPermissionLabels): a dataset carries the labels
# of its readers, a user the labels of what they are.
PUBLIC_LABEL = "public"
COORDINATOR_LABEL = "lgdp-coordinator"


def org_label(org_id: str) -> str:
    return f"lgdp-org-{org_id}"


def return_label(return_id: str) -> str:
    """Carried by the readers of a return's submitted data: its owner and
    requesting agencies. Resolved on the user's side at query time, so a
    change of requesting agencies changes access at once without reindexing."""
    return f"lgdp-return-{return_id}"


@dataclass(frozen=True)
class AccessObject:
    kind: str
    state: str
    owner_org: str | None
    return_id: str | None


def describe(pkg: "model.Package | None") -> AccessObject | None:
    """The policy's view of a dataset; None for datasets the policy does not
    govern (CKAN's own rules apply to them)."""
    if pkg is None:
        return None
    extras = pkg.extras
    if pkg.type == RETURN_KIND:
        return AccessObject(RETURN_KIND, "private" if pkg.private else "public", pkg.owner_org, pkg.id)
    if pkg.type == SUBMISSION_KIND:
        # the state as it stands now (lgdp_submission_state), not as the
        # search document last saw it
        return AccessObject(
            SUBMISSION_KIND, submission_state.status_of(pkg.id), pkg.owner_org, extras.get("data_return")
        )
    if pkg.type == TABLE_KIND:
        published = str(extras.get("published", "")).lower() in ("true", "yes", "1")
        return AccessObject(
            TABLE_KIND, "published" if published else "unpublished", pkg.owner_org, extras.get("data_return")
        )
    return None


def audiences(obj: AccessObject) -> frozenset[str]:
    return POLICY.get((obj.kind, obj.state)) or POLICY.get((obj.kind, ANY_STATE)) or frozenset()


def readers(obj: AccessObject) -> list[str]:
    """The permission labels of an object: who may read it."""
    labels: list[str] = []
    for audience in sorted(audiences(obj)):
        if audience == EVERYONE:
            labels.append(PUBLIC_LABEL)
        elif audience == OWNER_ORG and obj.owner_org:
            labels.append(org_label(obj.owner_org))
        elif audience == RETURN_AGENCIES and obj.return_id:
            labels.append(return_label(obj.return_id))
        elif audience == COORDINATING_BODY:
            labels.append(COORDINATOR_LABEL)
    return labels


def agency_names(value: Any) -> list[str]:
    """The requesting agencies of a return as a list, whether the value is a
    list, scheming's JSON text of one, or a single name."""
    if value in (None, "", []):
        return []
    if isinstance(value, list):
        return list(value)
    text = str(value)
    if text.startswith("["):
        try:
            return list(json.loads(text))
        except ValueError:
            pass
    return [text]


def return_agency_ids(return_id: str | None) -> list[str]:
    """The owner and requesting agencies of a return, as organisation ids."""
    pkg = model.Package.get(return_id) if return_id else None
    if pkg is None:
        return []
    names = agency_names(pkg.extras.get("requesting_agencies"))
    ids = [gid for (gid,) in model.Session.query(model.Group.id).filter(model.Group.name.in_(names))] if names else []
    return [pkg.owner_org, *ids] if pkg.owner_org else ids


def requested_returns(agency_ids: list[str]) -> list[str]:
    """Ids of the data returns owned or requested by any of these agencies."""
    if not agency_ids:
        return []
    names = {
        name
        for (name,) in model.Session.query(model.Group.name).filter(model.Group.id.in_(agency_ids))
    }
    rows = (
        model.Session.query(model.Package.id, model.Package.owner_org, model.PackageExtra.value)
        .outerjoin(
            model.PackageExtra,
            (model.PackageExtra.package_id == model.Package.id)
            & (model.PackageExtra.key == "requesting_agencies")
            & (model.PackageExtra.state == "active"),
        )
        .filter(model.Package.type == RETURN_KIND)
        .filter(model.Package.state == "active")
        .all()
    )
    ids = set(agency_ids)
    return sorted(
        pid for pid, owner, requesting in rows if owner in ids or names.intersection(agency_names(requesting))
    )


def principals(who: Actor) -> list[str]:
    """The permission labels of a user: what they are to the policy.

    Worked out once per web request and user (a page asks for them through
    CKAN's permission labels several times), and again after a change to a
    user, membership, organisation or dataset in the database session."""
    known = _request_memo(_PRINCIPALS) if who.user_id else None
    if known is not None and who in known:
        return list(known[who])
    labels = _principals(who)
    if known is not None:
        known[who] = tuple(labels)
    return labels


def _principals(who: Actor) -> list[str]:
    labels = [PUBLIC_LABEL]
    if who.anonymous:
        return labels
    labels.extend(org_label(m.org_id) for m in who.memberships)
    if who.orgs(COORDINATOR):
        labels.append(COORDINATOR_LABEL)
    labels.extend(return_label(rid) for rid in requested_returns([m.org_id for m in who.orgs(AGENCY)]))
    return labels


@dataclass(frozen=True)
class FlagScope:
    """Which quality flags a user reads: every one (``everything``), else
    those about their own councils and those of the returns their agencies
    own or request."""

    everything: bool
    council_codes: tuple[str, ...] = ()
    return_ids: tuple[str, ...] = ()

    def covers(self, return_id: str | None, council_gss: str | None) -> bool:
        return self.everything or return_id in self.return_ids or (
            council_gss is not None and council_gss in self.council_codes)


def flag_scope(who: Actor) -> FlagScope:
    if who.sysadmin or who.is_coordinator():
        return FlagScope(everything=True)
    groups = (model.Group.get(m.org_id) for m in who.orgs(COUNCIL))
    codes = tuple(g.extras["gss_code"] for g in groups if g is not None and g.extras.get("gss_code"))
    return FlagScope(everything=False, council_codes=codes,
                     return_ids=tuple(requested_returns([m.org_id for m in who.orgs(AGENCY)])))


def can_read(who: Actor, obj: AccessObject, labels: "frozenset[str] | None" = None) -> bool:
    """The one decision: may this user read this object? ``labels``: the
    user's principals, when the caller has worked them out already."""
    if who.sysadmin:
        return True
    return bool(set(readers(obj)) & (labels if labels is not None else set(principals(who))))


# ---------------------------------------------------------------- CKAN's hooks

def _default_labels() -> Any:
    return DefaultPermissionLabels()


def dataset_labels(pkg: "model.Package") -> list[str]:
    """IPermissionLabels.get_dataset_labels: the policy's readers for the
    objects it governs, CKAN's default labels for any other dataset."""
    obj = describe(pkg)
    if obj is None:
        return _default_labels().get_dataset_labels(pkg)
    return readers(obj)


def user_labels(user_obj: "model.User | None") -> list[str]:
    """IPermissionLabels.get_user_dataset_labels. For a visitor who is not
    signed in CKAN passes its anonymous user object (no id), and some views
    pass the user's name ('' when anonymous) instead of an object."""
    if isinstance(user_obj, str):
        user_obj = model.User.get(user_obj) if user_obj else None
    labels = list(_default_labels().get_user_dataset_labels(user_obj))
    if user_obj is not None and not getattr(user_obj, "is_anonymous", False):
        labels.extend(lab for lab in principals(actor(user_obj.id)) if lab not in labels)
    return labels


def package_read_decision(user: str | None, pkg: "model.Package") -> bool | None:
    """For auth functions: True/False when the policy governs the dataset,
    None when CKAN's own rules apply."""
    obj = describe(pkg)
    if obj is None:
        return None
    if pkg.state == "deleted":
        return actor(user).sysadmin
    return can_read(actor(user), obj)


# ---------------------------------------------------------------- writes
#
# Who may change what, as data: (object kind, action) -> the roles allowed.
# Every CKAN action (core or any plugin's) that names a governed object goes
# through `may_write` (ckanext.lgdp.gate applies it to the whole action
# registry). An action missing from the table is refused on governed
# objects: only the platform's own code (a context with ignore_auth, which an
# API caller can never set) writes them. CKAN's own auth functions still run
# after this rule for what it lets through.

SYSADMIN = "sysadmin"
GOVERNOR = "governor"  # an editor or admin of the coordinating body
OWNER_EDITOR = "owner-editor"  # an editor or admin of the object's organisation
READER = "reader"  # whoever may read the object

_RETURN_EDITORS = frozenset({SYSADMIN, GOVERNOR, OWNER_EDITOR})
_FOLLOW = ("follow_dataset", "unfollow_dataset")

WRITES: dict[tuple[str, str], frozenset[str]] = {
    # a return's own record and its documents (guidance, templates)
    **{(RETURN_KIND, action): _RETURN_EDITORS for action in (
        "package_create", "package_update", "package_patch", "package_revise",
        "package_resource_reorder", "package_create_default_resource_views",
        "resource_create", "resource_update", "resource_patch", "resource_delete",
        "resource_view_create", "resource_view_update", "resource_view_delete", "resource_view_reorder",
        "resource_create_default_resource_views", "member_create", "member_delete",
        "resource_validation_run", "resource_validation_delete",
    )},
    **{(RETURN_KIND, action): frozenset({SYSADMIN, GOVERNOR}) for action in (
        "package_delete", "package_owner_org_update", "bulk_update_private", "bulk_update_public",
        "bulk_update_delete",
    )},
    (RETURN_KIND, "dataset_purge"): frozenset({SYSADMIN}),
    # a submission is a record of what a council sent: its state, files and
    # council change only through the platform's actions (lgdp_submission_*)
    (SUBMISSION_KIND, "package_delete"): frozenset({SYSADMIN}),
    # a consolidated table is written by consolidation and published by
    # lgdp_table_publish, nothing else
    **{(kind, action): frozenset({READER}) for kind in (RETURN_KIND, SUBMISSION_KIND, TABLE_KIND)
       for action in _FOLLOW},
}


def roles(who: Actor, obj: AccessObject, labels: "frozenset[str] | None" = None) -> frozenset[str]:
    """What this user is to this object, in the terms of WRITES."""
    out = set()
    if who.sysadmin:
        out.add(SYSADMIN)
    if who.is_governor():
        out.add(GOVERNOR)
    if obj.owner_org and who.in_org(obj.owner_org, "editor"):
        out.add(OWNER_EDITOR)
    if obj.state == NEW_STATE or can_read(who, obj, labels):
        out.add(READER)
    return frozenset(out)


NEW_STATE = "new"  # an object that an action is about to create


def may_write(who: Actor, obj: AccessObject, action: str, labels: "frozenset[str] | None" = None) -> bool:
    """The one write decision: may this user run this action on this object?"""
    allowed = WRITES.get((obj.kind, action))
    return bool(allowed and allowed & roles(who, obj, labels))
