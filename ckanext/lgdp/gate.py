"""The access policy applied to every action CKAN knows, and to every page.

CKAN builds one registry of actions from its core and every plugin's
IActions. `wrap_registry` puts one gate in front of each of them, so the
policy does not depend on anyone having listed the channel:

- an action that only reads sees governed objects the user may read; one the
  user may not read does not exist for them: the action answers exactly as
  it does for a name that does not exist;
- an action that lists things (package_list, member_list, activity streams,
  ...) has what the user may not read taken out of its answer;
- an action that writes a governed object runs only where access.WRITES
  allows it;
- an action nobody classified is refused on governed objects, and the start-up
  log names it. A new CKAN or plugin version therefore opens no door.

Calls from the platform's own code (a context with ``ignore_auth``, which no
API caller can set) pass: the platform's actions decide for themselves.

Pages go through the same resolution (`register`): a page whose address
names a governed object the user may not read is served as for a name that
does not exist.
"""
from __future__ import annotations

import functools
import importlib
import logging
import re
import uuid
from typing import Any, Callable, Iterable

from flask import Flask, g, request

import ckan.plugins as p
import ckan.plugins.toolkit as tk
from ckan import authz, model
from ckan.types import Context, DataDict

from ckanext.lgdp import access
from ckanext.lgdp.model import submission_state

log = logging.getLogger(__name__)

GOVERNED_TYPES = (access.RETURN_KIND, access.SUBMISSION_KIND, access.TABLE_KIND)

# ---------------------------------------------------------------- classes

NONE = "none"  # cannot name a governed object (users, tags, site settings...)
SEARCH = "search"  # answers from the search index, filtered by permission labels
READ = "read"  # reads the objects it names
LIST = "list"  # answers a list: what the user may not read is taken out
SQL = "sql"  # datastore_search_sql: the tables its statement names
WRITE = "write"  # writes the objects it names: access.WRITES decides
OWN = "own"  # the platform's own actions: they apply the policy themselves
UNCLASSIFIED = "unclassified"  # refused on governed objects

_NONE = """
    user_list user_show user_autocomplete user_create user_invite user_update user_patch user_delete
    user_follower_count user_follower_list am_following_user follow_user unfollow_user
    user_followee_count user_followee_list
    api_token_list api_token_create api_token_revoke
    group_list group_list_authz group_autocomplete group_create group_update group_patch group_delete
    group_purge group_member_create group_member_delete group_follower_count group_follower_list
    am_following_group follow_group unfollow_group group_followee_count group_followee_list
    organization_list organization_list_for_user organization_autocomplete organization_create
    organization_update organization_patch organization_delete organization_purge
    organization_member_create organization_member_delete organization_follower_count
    organization_follower_list organization_followee_count organization_followee_list
    tag_list tag_show tag_search tag_autocomplete tag_create tag_delete
    vocabulary_list vocabulary_show vocabulary_create vocabulary_update vocabulary_delete
    license_list format_autocomplete member_roles_list help_show status_show get_site_user
    config_option_show config_option_list config_option_update
    term_translation_show term_translation_update term_translation_update_many
    job_list job_show job_clear job_cancel followee_count
    scheming_dataset_schema_list scheming_dataset_schema_show scheming_organization_schema_list
    scheming_organization_schema_show
    dashboard_mark_activities_old dashboard_new_activities_count send_email_notifications
    datastore_function_create datastore_function_delete dataset_followee_count
"""
_SEARCH = "package_search dcat_catalog_search dcat_catalog_show"
_READ = """
    package_show resource_show resource_view_show resource_view_list package_relationships_list
    package_collaborator_list dataset_follower_count dataset_follower_list am_following_dataset
    package_activity_list activity_show activity_data_show activity_diff
    datastore_search datastore_info dcat_dataset_show resource_validation_show task_status_show
"""
_LIST = """
    package_list current_package_list_with_resources package_autocomplete resource_search member_list
    recently_changed_packages_activity_list organization_activity_list group_activity_list
    user_activity_list dashboard_activity_list followee_list dataset_followee_list group_package_show
    package_collaborator_list_for_user group_show organization_show
"""
_WRITE = """
    package_create package_update package_patch package_revise package_delete dataset_purge
    package_owner_org_update package_resource_reorder package_create_default_resource_views
    package_relationship_create package_relationship_update package_relationship_delete
    package_collaborator_create package_collaborator_delete
    resource_create resource_update resource_patch resource_delete
    resource_view_create resource_view_update resource_view_delete resource_view_reorder resource_view_clear
    resource_create_default_resource_views
    member_create member_delete bulk_update_private bulk_update_public bulk_update_delete
    follow_dataset unfollow_dataset
    task_status_update task_status_update_many task_status_delete
    activity_create
    datastore_create datastore_upsert datastore_delete datastore_records_delete datastore_run_triggers
    resource_validation_run resource_validation_delete resource_validation_run_batch
"""

CLASSES: dict[str, str] = {
    **{name: cls for cls, names in ((NONE, _NONE), (SEARCH, _SEARCH), (READ, _READ), (LIST, _LIST),
                                    (WRITE, _WRITE)) for name in names.split()},
    "datastore_search_sql": SQL,
}
# Actions that can change governed objects without naming any: only a
# sysadmin runs them.
GLOBAL_WRITES = frozenset({"resource_validation_run_batch"})


def classify(name: str) -> str:
    if name in CLASSES:
        return CLASSES[name]
    return OWN if name.startswith("lgdp_") else UNCLASSIFIED


# ---------------------------------------------------------------- resolution

# Keys whose values are data, never names of objects.
_DATA_KEYS = frozenset({"records", "fields", "filters", "q", "fq", "sort", "sql", "query", "plugin_data"})
# Keys of a nested dict (a resource of datastore_create, the match of
# package_revise, ...) that name an object.
_REF_KEYS = ("id", "name", "package_id", "resource_id", "object", "subject")
_MAX_CANDIDATES = 2000


def candidates(data_dict: DataDict) -> set[str]:
    """Every string in the parameters that could name an object."""
    out: set[str] = set()

    def add(value: Any) -> None:
        # text with a NUL character names nothing (and the database refuses it)
        if isinstance(value, str) and 0 < len(value) <= 200 and "\x00" not in value and len(out) < _MAX_CANDIDATES:
            out.add(value)

    def nested(value: dict[str, Any]) -> None:
        for key in _REF_KEYS:
            add(value.get(key))

    for key, value in (data_dict or {}).items():
        if key in _DATA_KEYS:
            continue
        if isinstance(value, str):
            add(value)
        elif isinstance(value, dict):
            nested(value)
        elif isinstance(value, (list, tuple)):
            for item in list(value)[:_MAX_CANDIDATES]:
                if isinstance(item, dict):
                    nested(item)
                else:
                    add(item)
    return out


def governed(idents: Iterable[str]) -> dict[str, model.Package]:
    """ident -> the governed dataset it names: a dataset by id or name, a
    resource, a resource view or an activity of one."""
    idents = {i for i in idents if i}
    if not idents:
        return {}
    found: dict[str, str] = {}  # ident -> package id
    q = model.Session.query(model.Package.id, model.Package.name).filter(
        model.Package.type.in_(GOVERNED_TYPES)
    )
    for pid, name in q.filter(model.Package.id.in_(idents) | model.Package.name.in_(idents)):
        for ident in (pid, name):
            if ident in idents:
                found[ident] = pid
    for rid, pid in model.Session.query(model.Resource.id, model.Resource.package_id).filter(
            model.Resource.id.in_(idents)):
        found.setdefault(rid, pid)
    for vid, pid in (
        model.Session.query(model.ResourceView.id, model.Resource.package_id)
        .join(model.Resource, model.Resource.id == model.ResourceView.resource_id)
        .filter(model.ResourceView.id.in_(idents))
    ):
        found.setdefault(vid, pid)
    for aid, pid in _activity_objects(idents - set(found)):
        found.setdefault(aid, pid)
    if not found:
        return {}
    pkgs = {
        pkg.id: pkg
        for pkg in model.Session.query(model.Package).filter(model.Package.id.in_(set(found.values())))
        .filter(model.Package.type.in_(GOVERNED_TYPES))
    }
    return {ident: pkgs[pid] for ident, pid in found.items() if pid in pkgs}


def _activity_objects(idents: set[str]) -> list[tuple[str, str]]:
    if not idents or not p.plugin_loaded("activity"):
        return []
    # the activity plugin's model, imported only when that plugin is loaded
    from ckanext.activity.model import Activity

    return list(model.Session.query(Activity.id, Activity.object_id).filter(Activity.id.in_(idents)))


def readable(who: access.Actor, pkg: model.Package, labels: frozenset[str]) -> bool:
    if who.sysadmin:
        return True
    if pkg.state == "deleted":
        return False
    obj = access.describe(pkg)
    return obj is not None and access.can_read(who, obj, labels)


def _new_objects(name: str, data_dict: DataDict) -> list[access.AccessObject]:
    """Governed objects an action would create or turn a dataset into."""
    if name not in ("package_create", "package_update", "package_patch", "package_revise"):
        return []
    values = [data_dict, *(v for v in (data_dict.get("update"),) if isinstance(v, dict))]
    out = []
    for values_dict in values:
        kind = values_dict.get("type")
        if kind in GOVERNED_TYPES:
            owner = model.Group.get(values_dict.get("owner_org") or "")
            out.append(access.AccessObject(kind, access.NEW_STATE, owner.id if owner else None, None))
    return out


# ---------------------------------------------------------------- the gate


def _actor(context: Context) -> access.Actor:
    return access.actor(context.get("user"))


def _not_found(action: Callable[..., Any], context: Context, data_dict: DataDict,
               hidden: Iterable[str]) -> Any:
    """Answer as the action answers for names that do not exist: run it with
    each hidden name replaced by a fresh one, then put the names back in
    its message."""
    fakes = {ident: str(uuid.uuid4()) for ident in hidden}
    try:
        return action(context, _substitute(data_dict, fakes))
    except (tk.ObjectNotFound, tk.NotAuthorized) as e:
        raise type(e)(_restore(str(e), fakes)) from None
    except tk.ValidationError as e:
        raise tk.ValidationError(_restore_deep(e.error_dict, fakes)) from None


def _substitute(value: Any, fakes: dict[str, str]) -> Any:
    if isinstance(value, str):
        if value in fakes:
            return fakes[value]
        for ident, fake in fakes.items():
            if ident in value:
                value = value.replace(ident, fake)
        return value
    if isinstance(value, dict):
        return {k: _substitute(v, fakes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, fakes) for v in value)
    return value


def _restore(text: str, fakes: dict[str, str]) -> str:
    for ident, fake in fakes.items():
        text = text.replace(fake, ident)
    return text


def _restore_deep(value: Any, fakes: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _restore(value, fakes)
    if isinstance(value, dict):
        return {k: _restore_deep(v, fakes) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore_deep(v, fakes) for v in value]
    return value


# CKAN's DataStore serves "_table_metadata", the list of every table (those
# of unpublished returns with the rest), as if it were a resource, to anyone:
# here it is a resource that does not exist, for everyone.
_TABLE_LIST = "_table_metadata"


def gate(name: str, cls: str, action: Callable[..., Any], context: Context, data_dict: DataDict | None) -> Any:
    """Run one action call through the policy."""
    data_dict = data_dict if data_dict is not None else {}
    if context.get("ignore_auth") or cls == NONE:
        return action(context, data_dict)
    if cls == SEARCH:
        if name == "package_search":
            data_dict = hide_stale(_actor(context), data_dict)
        return action(context, data_dict)
    if cls == LIST:
        return filter_answer(name, _actor(context), action(context, data_dict))
    who = _actor(context)
    if name in GLOBAL_WRITES and not who.sysadmin:
        raise tk.NotAuthorized(tk._("Only a sysadmin can run {action}").format(action=name))
    idents = candidates(data_dict)
    if cls == SQL:
        idents |= sql_tables(who, context, data_dict.get("sql"))
    found = governed(idents)
    news = _new_objects(name, data_dict)
    labels = frozenset(access.principals(who)) if found or news else frozenset()
    hidden = [ident for ident, pkg in found.items() if not readable(who, pkg, labels)]
    if _TABLE_LIST in idents and name.startswith("datastore_"):
        hidden.append(_TABLE_LIST)
    if cls == SQL:
        hidden += _hidden_tables(context, idents - set(found))
    if hidden:
        return _not_found(action, context, data_dict, hidden)
    if (not found and not news) or cls in (READ, OWN, SQL):
        return action(context, data_dict)
    objs = [access.describe(pkg) for pkg in {pkg.id: pkg for pkg in found.values()}.values()] + news
    for obj in objs:
        if obj is not None and not access.may_write(who, obj, name, labels):
            if cls == UNCLASSIFIED:
                log.warning("refused %s on a %s: the action is not classified by the access policy",
                            name, obj.kind)
            raise tk.NotAuthorized(_refusal(name, obj))
    return action(context, data_dict)


def hide_stale(who: access.Actor, data_dict: DataDict) -> DataDict:
    """A search that leaves out the documents older than their dataset's
    state (a submission's step waits for the batch refresh,
    submissions/indexing.py) that the current state denies this user: a
    stale document's permission labels may still let them in."""
    pending = submission_state.pending_search_ids()
    if not pending or who.sysadmin:
        return data_dict
    labels = frozenset(access.principals(who))
    submission_state.states_of(pending)  # one query: describe() then finds each state in the session
    hidden = [pkg.id for pkg in model.Session.query(model.Package).filter(model.Package.id.in_(pending))
              if not readable(who, pkg, labels)]
    if not hidden:
        return data_dict
    fq_list = data_dict.get("fq_list")
    fq_list = list(fq_list) if isinstance(fq_list, (list, tuple)) else ([fq_list] if fq_list else [])
    return {**data_dict, "fq_list": [*fq_list, f"-id:({' OR '.join(hidden)})"]}


def _refusal(name: str, obj: access.AccessObject) -> str:
    what = {
        access.SUBMISSION_KIND: tk._("A submission changes only through the platform's submission actions "
                                     "(lgdp_submission_upload, lgdp_submission_transition); its files are kept "
                                     "as they were sent"),
        access.TABLE_KIND: tk._("A consolidated table is written only by consolidation and published only "
                                "with lgdp_table_publish"),
        access.RETURN_KIND: tk._("Only the owner agency's editors and the coordinating body change a data return"),
    }[obj.kind]
    return tk._("{what}: {action} is not allowed").format(what=what, action=name)


# ---------------------------------------------------------------- lists


def _refs(item: Any) -> list[str]:
    """The object names one list item stands for."""
    if isinstance(item, str):
        return [item]
    if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
        return [item[0]]  # member_list: (id, type, capacity)
    if isinstance(item, dict):
        return [item[k] for k in ("id", "name", "package_id", "object_id") if isinstance(item.get(k), str)]
    return []


def _walk_refs(value: Any, out: set[str], depth: int = 0) -> None:
    if depth > 3:
        return
    if isinstance(value, list):
        for item in value:
            out.update(_refs(item))
            if isinstance(item, dict):
                _walk_refs(item, out, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, (list, dict)):
                _walk_refs(item, out, depth + 1)


def _drop(value: Any, hidden: set[str], depth: int = 0) -> Any:
    if depth > 3:
        return value
    if isinstance(value, list):
        return [_drop(item, hidden, depth + 1) for item in value if not hidden.intersection(_refs(item))]
    if isinstance(value, dict):
        return {k: (_drop(v, hidden, depth + 1) if isinstance(v, (list, dict)) else v) for k, v in value.items()}
    return value


def filter_answer(name: str, who: access.Actor, answer: Any) -> Any:
    """An answer with every governed object the user may not read taken out."""
    if who.sysadmin:
        return answer
    refs: set[str] = set()
    if isinstance(answer, dict):
        refs.update(_refs(answer))
    _walk_refs(answer, refs)
    found = governed(refs)
    if not found:
        return answer
    labels = frozenset(access.principals(who))
    hidden = {ident for ident, pkg in found.items() if not readable(who, pkg, labels)}
    if not hidden:
        return answer
    out = _drop(answer, hidden)
    if name == "resource_search" and isinstance(out, dict):
        out["count"] = out.get("count", 0) - (len(answer.get("results", [])) - len(out.get("results", [])))
    return out


# ---------------------------------------------------------------- SQL

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# What a statement may not name unless a sysadmin runs it: the catalogues
# describe every table, hidden ones included; escapes and casts to object
# identifiers name a table without writing its name.
_CATALOGUE = re.compile(r"information_schema|pg_[a-z_]*|_table_metadata|\breg[a-z]+\b", re.I)
_ESCAPES = re.compile(r"\bu&['\"]|\buescape\b|\be'", re.I)


def sql_tables(who: access.Actor, context: Context, sql: Any) -> set[str]:
    """The table names (resource ids) a statement mentions anywhere; refuses
    what would name a table without writing its name."""
    if not isinstance(sql, str) or who.sysadmin:
        return set()
    if _ESCAPES.search(sql):
        raise tk.ValidationError({"sql": [tk._("Escaped strings and identifiers (U&'...', E'...') "
                                               "cannot be used in a query")]})
    if _CATALOGUE.search(sql):
        raise tk.ValidationError({"sql": [tk._("The database's catalogues (information_schema, pg_*) "
                                               "cannot be queried; datastore_info describes a table")]})
    return {m.group(0).lower() for m in _UUID.finditer(sql)}


def _hidden_tables(context: Context, idents: Iterable[str]) -> list[str]:
    """Resource ids that the user may not read, by CKAN's own rule (for
    tables of datasets the policy does not govern)."""
    ids = [i for i in idents if _UUID.fullmatch(i)]
    if not ids:
        return []
    hidden = []
    for (rid,) in model.Session.query(model.Resource.id).filter(model.Resource.id.in_(ids)):
        try:
            tk.check_access("resource_show", {"user": context.get("user")}, {"id": rid})
        except (tk.NotAuthorized, tk.ObjectNotFound):
            hidden.append(rid)
    return hidden


# ---------------------------------------------------------------- the registry


def _core_actions() -> dict[str, Any]:
    out = {}
    for module_name in ("get", "create", "update", "delete", "patch"):
        module = importlib.import_module(f"ckan.logic.action.{module_name}")
        for name, func in authz.get_local_functions(module):
            out[name] = (func, module_name == "get" or getattr(func, "side_effect_free", False))
    return out


def _other_actions(own_plugin: str) -> dict[str, Any]:
    out = {}
    before = True
    for plugin in p.PluginImplementations(p.IActions):
        if plugin.name == own_plugin:
            before = False
            continue
        chained = sorted(n for n, f in plugin.get_actions().items() if getattr(f, "chained_action", False))
        if before and chained:
            # CKAN makes the first plugin's chained action the outermost
            log.error("%s is listed before %s in ckan.plugins and chains %s: its code runs before the "
                      "access gate; list %s first", plugin.name, own_plugin, " ".join(chained), own_plugin)
        for name, func in plugin.get_actions().items():
            if not getattr(func, "chained_action", False):
                out[name] = (func, getattr(func, "side_effect_free", False))
    return out


def _chained_gate(name: str, side_effect_free: bool) -> Any:
    cls = classify(name)

    @tk.chained_action
    def gated(next_action: Any, context: Context, data_dict: DataDict | None = None) -> Any:
        return gate(name, cls, next_action, context, data_dict)

    gated.__name__ = name
    gated.lgdp_gate = True  # type: ignore[attr-defined]
    if side_effect_free:
        gated.side_effect_free = True  # type: ignore[attr-defined]
    return gated


def _own_gate(name: str, func: Any) -> Any:
    cls = classify(name)
    if getattr(func, "chained_action", False):
        def chained(next_action: Any, context: Context, data_dict: DataDict | None = None) -> Any:
            return gate(name, cls, functools.partial(func, next_action), context, data_dict)

        wrapped: Any = chained
    else:
        def plain(context: Context, data_dict: DataDict | None = None) -> Any:
            return gate(name, cls, func, context, data_dict)

        wrapped = plain
    for attribute, value in func.__dict__.items():
        setattr(wrapped, attribute, value)
    wrapped.__name__ = name
    wrapped.__doc__ = func.__doc__
    wrapped.lgdp_gate = True
    return wrapped


def wrap_registry(own: dict[str, Any], own_plugin: str = "lgdp") -> dict[str, Any]:
    """The platform's actions, each behind the gate, and a gate chained in
    front of every other action of CKAN and the loaded plugins."""
    others = {**_core_actions(), **_other_actions(own_plugin)}
    out = {name: _own_gate(name, func) for name, func in own.items()}
    for name, (_func, side_effect_free) in others.items():
        if name not in out:
            out[name] = _chained_gate(name, side_effect_free)
    unclassified = sorted(n for n in {*own, *others} if classify(n) == UNCLASSIFIED)
    if unclassified:
        log.warning("actions not classified by the access policy, refused on governed objects: %s",
                    " ".join(unclassified))
    return out


def registry_report(names: Iterable[str]) -> dict[str, list[str]]:
    """class -> the action names of that class."""
    out: dict[str, list[str]] = {}
    for name in sorted(names):
        out.setdefault(classify(name), []).append(name)
    return out


# ---------------------------------------------------------------- pages

_SKIP_ENDPOINTS = ("api.", "static", "webassets", "_debug_toolbar")
# Pages whose `id` names a dataset (or, for /dataset/changes/, an activity).
_DATASET_PAGES = ("/dataset/", "/submission/", "/data-return/", "/return-table/", "/return/", "/qa/return/")


def _names_nothing(ident: str) -> bool:
    if model.Session.query(model.Package.id).filter(
            (model.Package.id == ident) | (model.Package.name == ident)).first():
        return False
    return not _activity_objects({ident})


def _before_request() -> Any:
    endpoint = request.endpoint or ""
    args = request.view_args or {}
    if not args or endpoint.startswith(_SKIP_ENDPOINTS):
        return None
    rule = request.url_rule.rule if request.url_rule is not None else ""
    ident = args.get("id")
    if isinstance(ident, str) and rule.startswith(_DATASET_PAGES) and _names_nothing(ident):
        # one answer for every page of a name that does not exist (some of
        # CKAN's own pages would fail on it), and so for a hidden one
        return tk.abort(404, tk._("Dataset not found"))
    values = {v for v in args.values() if isinstance(v, str)}
    found = governed(values)
    if not found:
        return None
    user = tk.current_user
    who = access.actor(user.name if user.is_authenticated else None)
    labels = frozenset(access.principals(who))
    hidden = {ident for ident, pkg in found.items() if not readable(who, pkg, labels)}
    if not hidden:
        return None
    if rule.startswith(_DATASET_PAGES) and args.get("id") in hidden:
        return tk.abort(404, tk._("Dataset not found"))
    fakes = {ident: str(uuid.uuid4()) for ident in hidden}
    g.lgdp_hidden = fakes
    request.view_args = {k: fakes.get(v, v) if isinstance(v, str) else v for k, v in args.items()}
    return None


def _after_request(response: Any) -> Any:
    fakes = g.pop("lgdp_hidden", None)
    if fakes and not response.is_streamed:
        response.set_data(_restore(response.get_data(as_text=True), fakes))
    return response


def register(app: Flask) -> None:
    """Pages that name an object the user may not read answer as for a name
    that does not exist."""
    app.before_request(_before_request)
    app.after_request(_after_request)
