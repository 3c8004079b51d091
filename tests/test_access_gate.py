"""The access policy decided by construction: every action in CKAN's own
registry is classified and gated, every write to a governed object follows
the write table, every listing channel hides what a user may not read, and a
hidden object answers exactly as a name that does not exist.

The expected answers are written out here from the policy in the README, not
read from ckanext.lgdp.access.
"""
from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest

import ckan.logic as logic
import ckan.plugins.toolkit as tk
from ckan.tests.helpers import call_action

from ckanext.lgdp import gate
from tests.conftest import api
from tests.test_access import ROLES, _api_get, may_read, objects  # noqa: F401 (fixture)

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

# The roles that may change a data return's record and documents: the owner
# agency's editors (x_editor) and the coordinating body's editors.
RETURN_EDITORS = {"x_editor", "coordinator", "sysadmin"}
RETURN_ADMIN_ACTIONS = {"package_delete", "package_owner_org_update", "bulk_update_private",
                        "bulk_update_public", "bulk_update_delete"}
RETURN_EDIT_ACTIONS = {
    "package_create", "package_update", "package_patch", "package_revise", "package_resource_reorder",
    "package_create_default_resource_views", "resource_create", "resource_update", "resource_patch",
    "resource_delete", "resource_view_create", "resource_view_update", "resource_view_delete",
    "resource_view_reorder", "resource_create_default_resource_views", "member_create", "member_delete",
    "resource_validation_run", "resource_validation_delete",
}


def may_write(role: str, obj: dict[str, Any], action: str) -> bool:
    """The write table of the README."""
    if action in ("follow_dataset", "unfollow_dataset"):
        return may_read(role, obj)
    if obj["kind"] == "return":
        if action in RETURN_EDIT_ACTIONS:
            return role in RETURN_EDITORS
        if action in RETURN_ADMIN_ACTIONS:
            return role in {"coordinator", "sysadmin"}
        return action == "dataset_purge" and role == "sysadmin"
    if obj["kind"] == "submission":
        return action == "package_delete" and role == "sysadmin"
    return False  # a consolidated table: consolidation and lgdp_table_publish only


def _registry() -> dict[str, Any]:
    tk.get_action("status_show")  # builds the registry
    return dict(logic._actions)


def test_every_registered_action_is_classified(app):
    names = _registry()
    report = gate.registry_report(names)
    print(f"\nregistered actions: {len(names)}")
    for cls, members in sorted(report.items()):
        print(f"  {cls}: {len(members)}: {' '.join(members)}")
    assert len(names) > 150
    assert not report.get(gate.UNCLASSIFIED), report.get(gate.UNCLASSIFIED)
    # every core write and every plugin's is in the write class
    for name in ("package_patch", "package_revise", "bulk_update_delete", "datastore_upsert",
                 "datastore_records_delete", "resource_validation_run", "activity_create", "member_create",
                 "package_owner_org_update", "dataset_purge"):
        assert gate.classify(name) == gate.WRITE, name


def test_the_gate_is_the_first_code_every_action_runs(app):
    """Structure, not behaviour: the function CKAN's registry calls for each
    action is the gate (chained actions of other plugins run inside it)."""
    names = _registry()
    outside = []
    for name, fn in names.items():
        cells = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ())))
        if not getattr(cells.get("_action"), "lgdp_gate", False):
            outside.append(name)
    print(f"\n{len(names)} actions, {len(names) - len(outside)} behind the gate")
    assert not outside, outside


def _target(obj: dict[str, Any]) -> dict[str, Any]:
    """Parameters that name the object in every way an action may take them."""
    pkg = obj["pkg"]
    res = (pkg.get("resources") or [{}])[0].get("id") or obj.get("resource_id") or pkg["id"]
    return {"package_id": pkg["id"], "resource_id": res, "object": pkg["id"], "object_type": "package",
            "datasets": [pkg["id"]], "org_id": pkg.get("owner_org"), "subject": pkg["id"],
            "entity_id": pkg["id"], "match": {"id": pkg["id"]}, "resource": {"package_id": pkg["id"]},
            "records": [{"gss_code": "S12000033", "chargeable_dwellings": 1}], "force": True}


def _ghost(data: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """The same parameters naming objects that do not exist."""
    names = {obj["pkg"]["id"], obj["pkg"]["name"], *(r["id"] for r in obj["pkg"].get("resources") or []),
             *([obj["resource_id"]] if obj.get("resource_id") else [])}
    fakes = {n: str(uuid.uuid4()) for n in names}
    return json.loads(re.sub("|".join(re.escape(n) for n in names), lambda m: fakes[m.group(0)], json.dumps(data)))


def test_the_write_matrix(app, objects):
    """Every write action x every role x every governed object kind."""
    world, objs = objects
    writes = sorted(n for n in _registry() if gate.classify(n) == gate.WRITE)
    sample = {k: objs[k] for k in ("return", "a-accepted", "a-draft", "b-submitted", "table-unpublished",
                                   "table-published")}
    checks, mismatches = 0, []
    for action in writes:
        for key, obj in sample.items():
            base = _target(obj)
            ident = base["resource_id"] if action.startswith(("resource_", "datastore_")) else obj["pkg"]["id"]
            data = {**base, "id": ident}
            for role in ROLES:
                who = world["people"][role]
                readable = may_read(role, obj)
                expected = may_write(role, obj, action)
                checks += 1
                if expected:
                    # allowed: the gate lets the call through to the action
                    # (checked without running it, so the objects stay)
                    reached = []
                    gate.gate(action, gate.WRITE, lambda c, d: reached.append(1), {"user": who["name"]}, data)
                    got = "allowed" if reached else "refused"
                    want = "allowed"
                else:
                    resp = app.post(f"/api/3/action/{action}", json=data, headers=who["headers"])
                    body = resp.get_data(as_text=True)
                    if readable or action in gate.GLOBAL_WRITES:
                        want = "refused"
                        refused = resp.status_code == 403 and ("is not allowed" in body or "Only a sysadmin" in body)
                        got = "refused" if refused else f"{resp.status_code}: {body[:200]}"
                    else:
                        # it does not exist for them: the answer for names that do not exist
                        want = "hidden"
                        ghost = app.post(f"/api/3/action/{action}", json=_ghost(data, obj), headers=who["headers"])
                        got = "hidden" if (resp.status_code == ghost.status_code and resp.status_code != 200
                                           or resp.status_code == ghost.status_code == 200 and action.startswith("bulk_")) \
                            else f"{resp.status_code} (unknown name: {ghost.status_code}): {body[:200]}"
                if got != want:
                    mismatches.append(f"{role} x {key} x {action}: expected {want}, got {got}")
    print(f"\nwrite matrix: {len(writes)} write actions x {len(sample)} objects x {len(ROLES)} roles = "
          f"{checks} checks, {len(mismatches)} mismatches")
    assert checks >= 2000
    assert not mismatches, "\n".join(mismatches[:60])
    # nothing changed: the accepted submission still has its file, the table its rows
    accepted = call_action("package_show", id=objs["a-accepted"]["pkg"]["id"])
    assert [r["id"] for r in accepted["resources"]] == [r["id"] for r in objs["a-accepted"]["pkg"]["resources"]]
    assert accepted["submission_status"] == "accepted" and accepted["private"] is True
    rows = call_action("datastore_search", resource_id=objs["table-unpublished"]["resource_id"])
    assert rows["total"] == 1 and rows["records"][0]["chargeable_dwellings"] == 110000


def test_the_attacks_that_were_found_are_refused(app, objects):
    world, objs = objects
    people = world["people"]
    accepted = objs["a-accepted"]["pkg"]
    table = objs["table-unpublished"]
    # an accepted file cannot be removed, repointed or replaced
    for payload in ({"resources": []}, {"resources": [{**accepted["resources"][0], "url": "https://evil.example/x.csv"}]}):
        resp = api(app, "package_patch", headers=people["a_editor"]["headers"], status=403, id=accepted["id"], **payload)
        assert "kept as they were sent" in resp["error"]["message"]
    api(app, "package_revise", headers=people["a_admin"]["headers"], status=403,
        match={"id": accepted["id"]}, update={"resources": []})
    # nor the submission deleted, made public, or moved
    for action in ("bulk_update_delete", "bulk_update_public"):
        api(app, action, headers=people["a_admin"]["headers"], status=403,
            datasets=[accepted["id"]], org_id=world["orgs"]["council_a"]["id"])
    api(app, "package_patch", headers=people["a_admin"]["headers"], status=403, id=accepted["id"], private=False)
    api(app, "package_owner_org_update", headers=people["a_admin"]["headers"], status=403,
        id=accepted["id"], organization_id=world["orgs"]["council_b"]["id"])
    # the owner agency cannot forge or delete consolidated rows, nor publish around the audit
    for action, extra in (("datastore_upsert", {"records": [{"gss_code": "S12000033", "chargeable_dwellings": 1}],
                                                "method": "insert"}),
                          ("datastore_records_delete", {"filters": {}}), ("datastore_delete", {"force": True})):
        api(app, action, headers=people["x_editor"]["headers"], status=403, resource_id=table["resource_id"], **extra)
    api(app, "package_patch", headers=people["x_editor"]["headers"], status=403, id=table["pkg"]["id"], published="yes")
    shown = call_action("package_show", id=accepted["id"])
    assert len(shown["resources"]) == len(accepted["resources"]) and shown["private"] is True
    assert shown["owner_org"] == world["orgs"]["council_a"]["id"] and shown["state"] == "active"
    assert call_action("datastore_search", resource_id=table["resource_id"])["total"] == 1
    # a plain dataset cannot be turned into a submission
    own = api(app, "package_create", headers=people["a_editor"]["headers"], name="our-notes",
              owner_org=world["orgs"]["council_a"]["id"])["result"]
    api(app, "package_patch", headers=people["a_editor"]["headers"], status=403, id=own["id"], type="submission")


def test_upload_authority_is_decided_on_the_submission_written(app, objects):
    world, objs = objects
    people = world["people"]
    from tests.conftest import csv_bytes, ctas_rows, push

    b_own = objs["b-draft"]["pkg"]
    before = call_action("package_search", fq="dataset_type:submission", include_private=True, rows=1000)["count"]
    # naming B's own submission on the side is no parameter of the upload: refused
    resp = push(app, people["b_editor"], csv_bytes(ctas_rows(period="2016-17")), period="2016-17",
                council="aberdeen-city", status=409, submission_id=b_own["id"])
    assert "Not a parameter" in resp["error"]["submission_id"][0]
    resp = push(app, people["b_editor"], csv_bytes(ctas_rows(period="2016-17")), period="2016-17",
                council="aberdeen-city", status=403)
    assert "council's editors" in resp["error"]["message"]
    after = call_action("package_search", fq="dataset_type:submission", include_private=True, rows=1000)["count"]
    assert after == before  # nothing was created in council A's name


# ---------------------------------------------------------------- listing channels


def _names(value: Any) -> str:
    return json.dumps(value)


def test_the_datastore_list_of_tables_is_a_resource_that_does_not_exist(app, objects):
    """CKAN's DataStore answers datastore_search on "_table_metadata" with
    every table's name, those of unpublished returns with the rest: no
    role gets it, and each is told it does not exist (never a 500)."""
    world, objs = objects
    tables = {o["resource_id"] for o in objs.values() if o["kind"] == "table"}
    assert tables
    answers = []
    for role in ROLES:
        who = world["people"][role]
        for action, param in (("datastore_search", "resource_id"), ("datastore_info", "id")):
            resp = _api_get(app, who, action, **{param: "_table_metadata"})
            body = resp.get_data(as_text=True)
            answers.append((role, action, resp.status_code))
            assert resp.status_code == 404, (role, action, resp.status_code, body[:300])
            assert "_table_metadata" in resp.json["error"]["message"], (role, action, body[:300])
            assert not any(t in body for t in tables), (role, action, "a table named")
    assert len(answers) == 2 * len(ROLES)


def _private_return(world) -> dict[str, Any]:
    from tests.conftest import standard

    return call_action(
        "package_create", context={"user": world["people"]["sysadmin"]["name"]}, type="data-return",
        name="draft-proposal", title="A proposal the agency keeps to itself", private=True,
        owner_org=world["orgs"]["agency_x"]["id"], frequency="annual", period_basis="financial", statutory="no",
        lifecycle_status="proposed", notes="Draft.", data_standard=json.dumps(standard("council-tax-collection.v1")))


def test_every_listing_channel_hides_what_a_user_may_not_read(app, objects):
    world, objs = objects
    people = world["people"]
    private = _private_return(world)
    objs = {**objs, "private-return": {"kind": "return-private", "pkg": private}}

    def readable(role: str, obj: dict[str, Any]) -> bool:
        if obj["kind"] == "return-private":
            return role in {"x_member", "x_editor", "coordinator", "reviewer", "sysadmin"}
        return may_read(role, obj)

    activities = {key: call_action("package_activity_list", id=o["pkg"]["id"]) for key, o in objs.items()}
    checks, mismatches = 0, []

    def check(role: str, key: str, channel: str, got_visible: bool) -> None:
        nonlocal checks
        checks += 1
        want = readable(role, objs[key])
        if got_visible and not want:
            mismatches.append(f"{role} x {key} x {channel}: shown")
        if channel in STRICT and not got_visible and want:
            mismatches.append(f"{role} x {key} x {channel}: not shown to a reader")

    # channels every reader gets (the details of changes, activity_data_show
    # and activity_diff, are CKAN's: for editors only)
    STRICT = {"activity_show", "datastore_info", "feed"}
    for role in ROLES:
        who = people[role]
        lists = {
            "package_list": _api_get(app, who, "package_list"),
            "current_package_list_with_resources": _api_get(app, who, "current_package_list_with_resources"),
            "resource_search": _api_get(app, who, "resource_search", query="name:"),
            "package_autocomplete": _api_get(app, who, "package_autocomplete", q="a"),
            "recently_changed": _api_get(app, who, "recently_changed_packages_activity_list"),
            "user_show": _api_get(app, who, "user_show", id=people["a_editor"]["name"], include_datasets="true"),
        }
        for org in ("council_a", "council_b", "agency_x", "coordinator"):
            oid = world["orgs"][org]["id"]
            lists[f"member_list {org}"] = _api_get(app, who, "member_list", id=oid, object_type="package")
            lists[f"organization_show {org}"] = _api_get(app, who, "organization_show", id=oid, include_datasets="true")
            lists[f"organization_activity_list {org}"] = _api_get(app, who, "organization_activity_list", id=oid)
        for channel, resp in lists.items():
            assert resp.status_code in (200, 403), (channel, resp.status_code)
            text = resp.get_data(as_text=True)
            for key, obj in objs.items():
                pkg = obj["pkg"]
                shown = pkg["id"] in text or f'"{pkg["name"]}"' in text or any(
                    r["id"] in text for r in pkg.get("resources") or [])
                check(role, key, channel, shown)
        for key, obj in objs.items():
            for activity in activities[key][:1]:
                for channel, params in (("activity_show", {"id": activity["id"]}),
                                        ("activity_data_show", {"id": activity["id"]}),
                                        ("activity_diff", {"id": activity["id"], "object_type": "package"})):
                    resp = _api_get(app, who, channel, **params)
                    ghost = _api_get(app, who, channel, **{**params, "id": str(uuid.uuid4())})
                    if not readable(role, obj):
                        _same_as_unknown(resp, ghost, activity["id"], None)
                    check(role, key, channel, resp.status_code == 200)
            if obj["kind"] == "table":
                rid = obj["resource_id"]
                for channel, call in (
                    ("datastore_info", lambda r: _api_get(app, who, "datastore_info", id=r)),
                    ("dump", lambda r: app.get(f"/datastore/dump/{r}", headers=who["headers"])),
                    ("sql where false", lambda r: _api_get(app, who, "datastore_search_sql",
                                                           sql=f'SELECT * FROM "{r}" WHERE false')),
                ):
                    resp, ghost_id = call(rid), str(uuid.uuid4())
                    visible = resp.status_code == 200
                    if not readable(role, obj):
                        _same_as_unknown(resp, call(ghost_id), rid, ghost_id)
                    check(role, key, channel, visible)
            if obj["kind"].startswith("return"):
                resp = app.get(f"/return/{obj['pkg']['name']}/events.atom", headers=who["headers"])
                if not readable(role, obj):
                    ghost = app.get("/return/no-such-return/events.atom", headers=who["headers"])
                    _same_as_unknown(resp, ghost, obj["pkg"]["name"], "no-such-return")
                check(role, key, "feed", resp.status_code == 200)
        # the database's catalogues describe every table: only a sysadmin asks them
        for sql in ("SELECT table_name FROM information_schema.tables",
                    "SELECT relname FROM pg_catalog.pg_class", "SELECT relname FROM pg_class",
                    f"SELECT '{objs['table-unpublished']['resource_id']}'::regclass",
                    'SELECT * FROM U&"\\0061"', "SELECT * FROM _table_metadata"):
            resp = _api_get(app, who, "datastore_search_sql", sql=sql)
            checks += 1
            if role != "sysadmin" and resp.status_code == 200:
                mismatches.append(f"{role} x datastore_search_sql {sql!r}: answered")
    print(f"\nlisting channels: {len(ROLES)} roles x {len(objs)} objects = {checks} checks, "
          f"{len(mismatches)} mismatches")
    assert checks >= 1500
    assert not mismatches, "\n".join(mismatches[:60])


def _same_as_unknown(resp, ghost, name: str, ghost_name: str | None) -> None:
    """A hidden object's answer is the answer for a name that does not exist."""
    assert resp.status_code == ghost.status_code, (resp.status_code, ghost.status_code, resp.get_data(as_text=True)[:300])
    body, other = resp.get_data(as_text=True), ghost.get_data(as_text=True)
    if ghost_name:
        body, other = body.replace(name, "NAME"), other.replace(ghost_name, "NAME")
    strip = re.compile(r'(csrf[^"]*"\s*(content|value)=")[^"]*|[0-9a-f]{8}-[0-9a-f-]*')
    assert strip.sub("", body) == strip.sub("", other)


# ---------------------------------------------------------------- pages


CRAWL_ROLES = ("anonymous", "a_editor", "a_admin", "b_editor", "x_member", "r_editor", "y_editor", "reviewer",
               "sysadmin")
CRAWL_OBJECTS = ("return", "a-draft", "a-accepted", "b-submitted", "table-unpublished", "table-published")


def _page_rules(app, dataset_type: str) -> list[Any]:
    """Every GET page of the app whose address names a dataset of this type
    (and its resource): the type's own pages, the /dataset/ pages only the
    /dataset/ prefix has, and the platform's pages."""
    own = {rule.rule.replace(f"/{dataset_type}/", "/dataset/") for rule in app.flask_app.url_map.iter_rules()
           if rule.rule.startswith(f"/{dataset_type}/")}
    out, seen = [], set()
    for rule in app.flask_app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint.startswith(("api.", "static", "webassets")):
            continue
        args = set(rule.arguments)
        if not (args and args <= {"id", "package_type", "resource_id"} and "id" in args):
            continue
        if rule.rule.startswith(("/user/", "/feeds/", "/benchmarking/", "/qa/council/")):
            continue  # not a dataset's page
        if rule.rule.startswith("/dataset/") and rule.rule in own:
            continue  # the same view under the type's own prefix
        if rule.rule.startswith(("/data-return/", "/submission/", "/return-table/")) and \
                not rule.rule.startswith(f"/{dataset_type}/"):
            continue
        if rule.rule not in seen:
            seen.add(rule.rule)
            out.append(rule)
    return out


def _fill(rule, obj: dict[str, Any], ident: str) -> str | None:
    pkg = obj["pkg"]
    values = {"id": ident, "package_type": pkg["type"]}
    if "resource_id" in rule.arguments:
        if not pkg.get("resources"):
            return None
        values["resource_id"] = pkg["resources"][0]["id"]
    try:
        return rule.build(values, append_unknown=False)[1]
    except Exception:
        return None


def test_every_dataset_page_answers_every_role_without_a_500(app, objects):
    world, objs = objects
    checks, problems = 0, []
    for role in CRAWL_ROLES:
        who = world["people"][role]
        for key in CRAWL_OBJECTS:
            obj = objs[key]
            rules = _page_rules(app, obj["pkg"]["type"])
            for rule in rules:
                url = _fill(rule, obj, obj["pkg"]["name"])
                if url is None:
                    continue
                resp = app.get(url, headers=who["headers"], follow_redirects=False)
                checks += 1
                if resp.status_code >= 500:
                    problems.append(f"{role} {url}: {resp.status_code}")
                elif not may_read(role, obj) and resp.status_code not in (404,):
                    # what they may not read does not exist for them
                    ghost = app.get(url.replace(obj["pkg"]["name"], "no-such-dataset"), headers=who["headers"],
                                    follow_redirects=False)
                    if ghost.status_code != resp.status_code:
                        problems.append(f"{role} {url}: {resp.status_code}, an unknown name {ghost.status_code}")
    print(f"\npage crawl: {len(CRAWL_OBJECTS)} objects x {len(CRAWL_ROLES)} roles x their pages = {checks} pages, "
          f"{len(problems)} problems")
    assert checks >= 600
    assert not problems, "\n".join(problems[:60])


def test_the_anonymous_activity_and_changes_pages(app, objects):
    """No 500 for a visitor: CKAN's own rule (public_activity_stream_detail
    off) keeps the details of changes to signed-in readers."""
    world, objs = objects
    ret = objs["return"]["pkg"]
    assert app.get(f"/dataset/activity/{ret['name']}").status_code == 200
    activity = call_action("package_activity_list", id=ret["id"])[0]
    assert app.get(f"/dataset/changes/{activity['id']}").status_code == 403
    # the stock call without include_data: the activity without its data
    shown = api(app, "activity_show", id=activity["id"])["result"]
    assert shown["object_id"] == ret["id"]
    reader = world["people"]["coordinator"]  # CKAN shows the details of changes to editors
    assert app.get(f"/dataset/changes/{activity['id']}", headers=reader["headers"]).status_code == 200
    shown = api(app, "activity_show", headers=reader["headers"], id=activity["id"])["result"]
    assert shown["object_id"] == ret["id"]
