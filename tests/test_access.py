"""The access policy, enforced the same on every channel.

The expected answers are written out here from the policy in the README, not
read from ckanext.lgdp.access: the test states the rule itself.
"""
from __future__ import annotations

import itertools
import json
from typing import Any, Callable

import pytest

from ckan.tests.helpers import call_action

from ckanext.lgdp.submissions.states import PLATFORM_FLAG
from tests.conftest import (
    COUNCIL_B_GSS, RETURN_NAME, api, csv_bytes, ctas_rows, make_world, push, transition,
)

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

ROLES = (
    "anonymous", "a_member", "a_editor", "a_admin", "b_editor", "x_member", "x_editor",
    "r_editor", "y_editor", "coordinator", "reviewer", "sysadmin",
)
COUNCIL_ROLES = {"a": {"a_member", "a_editor", "a_admin"}, "b": {"b_editor"}}
# Members of the return's owner agency (x) and of an agency that requests it (r).
RETURN_AGENCY_ROLES = {"x_member", "x_editor", "r_editor"}
COORDINATOR_ROLES = {"coordinator", "reviewer"}
SUBMITTED = {"submitted", "accepted", "returned"}


def may_read(role: str, obj: dict[str, Any]) -> bool:
    """The policy table of the README."""
    if role == "sysadmin":
        return True
    if obj["kind"] == "return":
        return True
    if obj["kind"] == "table":
        return obj["published"] or role in RETURN_AGENCY_ROLES | COORDINATOR_ROLES
    # a submission
    if role in COORDINATOR_ROLES or role in COUNCIL_ROLES[obj["council"]]:
        return True
    return role in RETURN_AGENCY_ROLES and obj["state"] in SUBMITTED


# ---------------------------------------------------------------- the objects


def _submissions(app, world, run_worker) -> dict[str, dict[str, Any]]:
    """Submissions of council A in every state, and two of council B."""
    people = world["people"]
    plan = {
        "a-expected": ("a", "2018-19", []),
        "a-draft": ("a", "2019-20", []),
        "a-signed_off": ("a", "2020-21", ["sign_off"]),
        "a-submitted": ("a", "2021-22", ["sign_off", "submit"]),
        "a-accepted": ("a", "2022-23", ["sign_off", "submit", "accept"]),
        "a-returned": ("a", "2023-24", ["sign_off", "submit", "return"]),
        "b-draft": ("b", "2022-23", []),
        "b-submitted": ("b", "2023-24", ["sign_off", "submit"]),
    }
    names = {}
    for key, (council, period, _steps) in plan.items():
        council_name = "aberdeen-city" if council == "a" else "aberdeenshire"
        if key == "a-expected":
            sub = api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"],
                      data_return=RETURN_NAME, council=council_name, period=period)["result"]
        else:
            gss = COUNCIL_B_GSS if council == "b" else None
            rows = ctas_rows(gss, period) if gss else ctas_rows(period=period)
            sub = push(app, people[f"{council}_editor"], csv_bytes(rows), period=period, council=council_name)["result"]["submission"]
        names[key] = sub["name"]
    run_worker("lgdp:validation")
    actors = {"sign_off": "{c}_admin", "submit": "{c}_editor", "accept": "x_editor", "return": "r_editor"}
    out = {}
    for key, (council, _period, steps) in plan.items():
        for step in steps:
            transition(app, people[actors[step].format(c=council)], names[key], step, reason="Figures do not match the ledger")
        sub = api(app, "package_show", headers=people["sysadmin"]["headers"], id=names[key])["result"]
        assert sub["submission_status"] == key.split("-", 1)[1], (key, sub["submission_status"])
        out[key] = {"kind": "submission", "council": council, "state": sub["submission_status"], "pkg": sub}
    # the search documents follow the steps in the worker's batch
    run_worker("lgdp:validation")
    return out


def _table(world, published: bool) -> dict[str, Any]:
    """A consolidated table of the return (a DataStore table on a dataset of
    type return-table), as the central repository keeps it."""
    sysadmin = world["people"]["sysadmin"]["name"]
    name = f"{RETURN_NAME}-table{'-published' if published else ''}"
    pkg = call_action(
        "package_create",
        context={"user": sysadmin, PLATFORM_FLAG: True},
        type="return-table",
        name=name,
        title=f"Council Tax Collection: all councils, {'published' if published else 'in preparation'}",
        owner_org=world["orgs"]["coordinator"]["id"],
        data_return=world["return"]["id"],
        published="yes" if published else "no",
    )
    ds = call_action(
        "datastore_create",
        context={"user": sysadmin},
        resource={"package_id": pkg["id"], "name": "All councils"},
        fields=[{"id": "gss_code", "type": "text"}, {"id": "chargeable_dwellings", "type": "int"}],
        records=[{"gss_code": "S12000033", "chargeable_dwellings": 110000}],
    )
    pkg = call_action("package_show", context={"user": sysadmin}, id=pkg["id"])
    return {"kind": "table", "published": published, "pkg": pkg, "resource_id": ds["resource_id"]}


@pytest.fixture
def objects(app, run_worker):
    world = make_world()
    # the return definition carries a guidance document
    call_action("resource_create", context={"user": world["people"]["sysadmin"]["name"]},
                package_id=world["return"]["id"], name="Guidance", url="https://www.gov.scot/ctas-guidance.pdf")
    objs = {"return": {"kind": "return", "pkg": call_action("package_show", id=world["return"]["id"])}}
    objs.update(_submissions(app, world, run_worker))
    objs["table-unpublished"] = _table(world, published=False)
    objs["table-published"] = _table(world, published=True)
    return world, objs


# ---------------------------------------------------------------- the channels


def _ok(resp) -> bool:
    if resp.status_code in (200, 302):
        return True
    assert resp.status_code in (401, 403, 404), (resp.status_code, resp.request.path if hasattr(resp, "request") else "")
    return False


def _api_get(app, who, action, **params):
    return app.get(f"/api/3/action/{action}", query_string=params, headers=who["headers"])


def ch_package_show(app, who, obj):
    return _ok(_api_get(app, who, "package_show", id=obj["pkg"]["name"]))


def ch_resource_show(app, who, obj):
    return _ok(_api_get(app, who, "resource_show", id=obj["pkg"]["resources"][0]["id"]))


def ch_download(app, who, obj):
    res = obj["pkg"]["resources"][0]
    if obj["kind"] == "table":
        url = f"/datastore/dump/{res['id']}"
    else:
        url = f"/dataset/{obj['pkg']['id']}/resource/{res['id']}/download"
    return _ok(app.get(url, headers=who["headers"], follow_redirects=False))


def ch_search(app, who, obj):
    resp = _api_get(app, who, "package_search", fq=f"id:{obj['pkg']['id']}", include_private="true",
                    rows=1)
    assert resp.status_code == 200
    return resp.json["result"]["count"] == 1


def ch_activity(app, who, obj):
    return _ok(_api_get(app, who, "package_activity_list", id=obj["pkg"]["id"]))


def ch_page(app, who, obj):
    kind = {"return": "data-return", "submission": "submission", "table": "return-table"}[obj["kind"]]
    return _ok(app.get(f"/{kind}/{obj['pkg']['name']}", headers=who["headers"]))


def ch_dcat(app, who, obj):
    return _ok(app.get(f"/dataset/{obj['pkg']['name']}.rdf", headers=who["headers"]))


def ch_uploads(app, who, obj):
    return _ok(_api_get(app, who, "lgdp_upload_list", id=obj["pkg"]["name"]))


def ch_history(app, who, obj):
    return _ok(_api_get(app, who, "lgdp_audit_list", id=obj["pkg"]["name"]))


def ch_datastore_search(app, who, obj):
    return _ok(_api_get(app, who, "datastore_search", resource_id=obj["resource_id"]))


def ch_datastore_sql(app, who, obj):
    sql = f'SELECT count(*) FROM "{obj["resource_id"]}"'
    resp = _api_get(app, who, "datastore_search_sql", sql=sql)
    if resp.status_code == 409:  # a table the user may not read does not exist for them
        assert "does not exist" in resp.get_data(as_text=True)
        return False
    return _ok(resp)


COMMON: dict[str, Callable[..., bool]] = {
    "package_show": ch_package_show,
    "resource_show": ch_resource_show,
    "download": ch_download,
    "package_search": ch_search,
    "activity": ch_activity,
    "page": ch_page,
    "dcat": ch_dcat,
}
CHANNELS = {
    "return": COMMON,
    "submission": {**COMMON, "uploads": ch_uploads, "history": ch_history},
    "table": {**COMMON, "datastore_search": ch_datastore_search, "datastore_search_sql": ch_datastore_sql},
}


def test_the_access_matrix(app, objects):
    world, objs = objects
    checks, mismatches = 0, []
    for role, (key, obj) in itertools.product(ROLES, objs.items()):
        who = world["people"][role]
        expected = may_read(role, obj)
        for channel, check in CHANNELS[obj["kind"]].items():
            if channel in ("resource_show", "download") and not obj["pkg"].get("resources"):
                continue  # an expected submission has no file yet
            got = check(app, who, obj)
            checks += 1
            if got != expected:
                mismatches.append(f"{role} x {key} x {channel}: expected {expected}, got {got}")
    print(f"\naccess matrix: {len(ROLES)} roles x {len(objs)} objects x channels = {checks} checks, "
          f"{len(mismatches)} mismatches")
    assert checks >= 1000
    assert not mismatches, "\n".join(mismatches[:60])


def test_search_reveals_nothing_of_what_a_user_may_not_see(app, objects):
    world, objs = objects
    hidden_titles = {
        role: [o["pkg"]["title"] for o in objs.values() if not may_read(role, o)]
        for role in ROLES
    }
    for role in ROLES:
        who = world["people"][role]
        visible = {o["pkg"]["id"] for o in objs.values() if may_read(role, o)}
        for q in ("*:*", "Aberdeen", "Council Tax", "2021-22"):
            resp = _api_get(app, who, "package_search", q=q, include_private="true", rows=1000,
                            **{"facet.field": json.dumps(["organization", "submission_status", "return_title", "period", "res_format"])})
            result = resp.json["result"]
            ids = {p["id"] for p in result["results"]}
            assert ids <= visible, (role, q, ids - visible)
            assert result["count"] == len(ids), (role, q)
            facets = json.dumps(result["search_facets"])
            for title in hidden_titles[role]:
                assert title not in json.dumps(result["results"]), (role, title)
            if role in ("y_editor", "anonymous", "b_editor"):
                # nothing of council A's unpublished work shows in facets either
                hidden_a = [o for o in objs.values() if o["kind"] == "submission" and o["council"] == "a" and not may_read(role, o)]
                if hidden_a:
                    assert "aberdeen-city" not in facets, (role, q, facets)
        # the search page (HTML) and the DCAT catalogue list no hidden title either
        page = app.get("/submission/", headers=who["headers"]).get_data(as_text=True)
        catalog = app.get("/catalog.ttl", headers=who["headers"]).get_data(as_text=True)
        assert "dcat:Catalog" in catalog
        for title in hidden_titles[role]:
            assert title not in page, (role, title)
            assert title not in catalog, (role, title)


def test_revoked_tokens_and_removed_members_lose_access_at_once(app, objects):
    world, objs = objects
    people = world["people"]
    draft = objs["a-draft"]["pkg"]["name"]
    editor = people["a_editor"]
    assert _api_get(app, editor, "package_show", id=draft).status_code == 200
    tokens = call_action("api_token_list", context={"user": editor["name"]}, user_id=editor["name"])
    for token in tokens:
        api(app, "api_token_revoke", headers=editor["headers"], jti=token["id"])
    assert _api_get(app, editor, "package_show", id=draft).status_code == 404  # it does not exist for them

    member = people["a_member"]
    assert _api_get(app, member, "package_show", id=draft).status_code == 200
    api(app, "organization_member_delete", headers=people["a_admin"]["headers"],
        id="aberdeen-city", username=member["name"])
    assert _api_get(app, member, "package_show", id=draft).status_code == 404  # it does not exist for them
    found = _api_get(app, member, "package_search", q="*:*", fq="dataset_type:submission", include_private="true")
    assert found.json["result"]["count"] == 0


def test_access_follows_the_requesting_agencies_of_the_return(app, objects):
    world, objs = objects
    people = world["people"]
    submitted = objs["a-submitted"]["pkg"]
    r_editor, y_editor = people["r_editor"], people["y_editor"]

    def sees(who):
        shown = _api_get(app, who, "package_show", id=submitted["name"]).status_code == 200
        found = _api_get(app, who, "package_search", fq=f"id:{submitted['id']}", include_private="true").json["result"]["count"]
        assert shown == (found == 1)
        return shown

    assert sees(r_editor) and not sees(y_editor)
    api(app, "package_patch", headers=people["coordinator"]["headers"], id=RETURN_NAME,
        requesting_agencies=[world["orgs"]["agency_y"]["name"]])
    assert sees(y_editor) and not sees(r_editor)


def test_a_submission_leaves_an_agencys_view_while_it_is_a_draft_again(app, objects, run_worker):
    world, objs = objects
    people = world["people"]
    returned = objs["a-returned"]["pkg"]
    assert _api_get(app, people["r_editor"], "package_show", id=returned["name"]).status_code == 200
    push(app, people["a_editor"], csv_bytes(ctas_rows(period="2023-24")), period="2023-24")
    assert _api_get(app, people["r_editor"], "package_show", id=returned["name"]).status_code == 404
    found = _api_get(app, people["r_editor"], "package_search", fq=f"id:{returned['id']}", include_private="true")
    assert found.json["result"]["count"] == 0
