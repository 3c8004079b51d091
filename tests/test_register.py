"""The register of data returns: the governance lifecycle, enforced by actions
for every role; the audit trail; versions of the data standard; reviews."""
from __future__ import annotations

import csv
import io
import json

import pytest
import sqlalchemy as sa

from ckan import model
from ckan.tests import factories
from ckan.tests.helpers import call_action

from ckanext.lgdp.register import lifecycle
from tests.conftest import api, ckan_cli, standard

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

STATES = ("proposed", "approved", "active", "under_review", "retired", "rejected")
# Written out here, not read from the code: the test states the rule itself.
LEGAL = {
    ("proposed", "approved"), ("proposed", "rejected"), ("approved", "active"),
    ("active", "under_review"), ("under_review", "active"), ("under_review", "retired"),
}
def _user(org=None, capacity="member", sysadmin=False):
    user = factories.SysadminWithToken() if sysadmin else factories.UserWithToken()
    if org:
        call_action("organization_member_create", id=org["id"], username=user["name"], role=capacity)
    return {"name": user["name"], "id": user["id"], "headers": {"Authorization": user["token"]}}


@pytest.fixture
def world():
    council = factories.Organization(org_type="council", gss_code="S12000047", name="fife")
    agency = factories.Organization(org_type="agency", name="sg-housing")
    other_agency = factories.Organization(org_type="agency", name="sepa")
    coordinator = factories.Organization(org_type="coordinator", name="coordination")
    people = {
        "anonymous": {"name": "", "headers": {}},
        "council_editor": _user(council, "editor"),
        "owner_admin": _user(agency, "admin"),
        "other_agency_admin": _user(other_agency, "admin"),
        "reviewer": _user(coordinator, "member"),
        "coordinator_editor": _user(coordinator, "editor"),
        "coordinator_admin": _user(coordinator, "admin"),
        "sysadmin": _user(sysadmin=True),
    }
    return {"council": council, "agency": agency, "other": other_agency, "coordinator": coordinator, "people": people}


GOVERNORS = {"coordinator_editor", "coordinator_admin", "sysadmin"}


def _propose(app, world, name="hl1-homelessness", schema=None):
    return api(
        app,
        "package_create",
        headers=world["people"]["owner_admin"]["headers"],
        type="data-return",
        name=name,
        title=name.replace("-", " ").title(),
        notes="Homelessness applications, assessments and temporary accommodation.",
        owner_org=world["agency"]["id"],
        frequency="quarterly",
        statutory="yes",
        legal_basis="Housing (Scotland) Act 1987",
        data_standard=json.dumps(schema or standard("hl1-homelessness.v1")),
    )["result"]


def _move(app, world, name, target, who="coordinator_admin", status=200, reason="Agreed at the data board"):
    return app.post(
        "/api/3/action/lgdp_return_transition",
        json={"id": name, "to": target, "reason": reason},
        headers=world["people"][who]["headers"],
        status=status,
    ).json


def _audit(name):
    return model.Session.execute(
        sa.text(
            "SELECT action, from_state, to_state, reason, actor_name, diff FROM lgdp_audit "
            "WHERE object_name = :n ORDER BY timestamp, id"
        ),
        {"n": name},
    ).all()


def test_a_proposal_starts_proposed_and_is_audited(app, world):
    created = _propose(app, world)
    assert created["lifecycle_status"] == "proposed"
    assert not created.get("standard_version")
    rows = _audit("hl1-homelessness")
    assert [(r.action, r.to_state, r.actor_name) for r in rows] == [
        ("create", "proposed", world["people"]["owner_admin"]["name"])
    ]


def test_a_council_cannot_own_a_return(app, world):
    resp = app.post(
        "/api/3/action/package_create",
        json={
            "type": "data-return", "name": "x", "title": "x", "notes": "x",
            "owner_org": world["council"]["id"], "frequency": "annual", "statutory": "no",
        },
        headers=world["people"]["council_editor"]["headers"],
        status=403,
    )
    assert resp.json["success"] is False


@pytest.mark.parametrize("start", STATES)
def test_every_transition_by_every_role(app, world, start):
    """From each state, every target state, by every role: legal moves by the
    coordinating body succeed (and are audited), others are refused."""
    name = f"return-{start.replace('_', '-')}"
    _propose(app, world, name=name)
    for step in lifecycle.path_to(start):
        _move(app, world, name, step)
    checked = 0
    for target in STATES:
        for who in world["people"]:
            if who == "anonymous":
                resp = _move(app, world, name, target, who=who, status=403)
                assert resp["success"] is False
            elif who not in GOVERNORS:
                _move(app, world, name, target, who=who, status=403)
            elif (start, target) not in LEGAL:
                resp = _move(app, world, name, target, who=who, status=409)
                assert "cannot move from" in resp["error"]["to"][0]
            else:
                continue
            checked += 1
        if (start, target) in LEGAL:
            before = len(_audit(name))
            moved = _move(app, world, name, target, who="coordinator_editor")["result"]
            assert moved["lifecycle_status"] == target
            last = _audit(name)[-1]
            assert len(_audit(name)) == before + 1
            assert (last.action, last.from_state, last.to_state, last.reason) == (
                "transition", start, target, "Agreed at the data board"
            )
            assert last.actor_name == world["people"]["coordinator_editor"]["name"]
            # back to the start state for the next target, when the machine allows
            if (target, start) in LEGAL:
                _move(app, world, name, start)
            else:
                break
    assert checked > 0


def test_a_transition_needs_a_reason(app, world):
    _propose(app, world)
    for reason in ("", "   "):
        resp = _move(app, world, "hl1-homelessness", "approved", status=409, reason=reason)
        assert resp["error"]["reason"] == ["Missing value"]
    assert api(app, "package_show", id="hl1-homelessness")["result"]["lifecycle_status"] == "proposed"


def test_status_cannot_be_edited_directly(app, world):
    _propose(app, world)
    for who in ("owner_admin", "coordinator_admin"):
        resp = app.post(
            "/api/3/action/package_patch",
            json={"id": "hl1-homelessness", "lifecycle_status": "active"},
            headers=world["people"][who]["headers"],
            status=409,
        ).json
        assert "lgdp_return_transition" in resp["error"]["lifecycle_status"][0]


def test_a_metadata_change_is_audited_with_its_diff(app, world):
    _propose(app, world)
    api(
        app, "package_patch", headers=world["people"]["owner_admin"]["headers"],
        id="hl1-homelessness", title="HL1 homelessness", burden_hours="6.5",
    )
    update = _audit("hl1-homelessness")[-1]
    assert update.action == "update"
    assert update.diff["title"] == {"from": "Hl1 Homelessness", "to": "HL1 homelessness"}
    assert update.diff["burden_hours"] == {"from": None, "to": "6.5"}
    assert set(update.diff) == {"title", "burden_hours"}


def test_standard_versions_follow_changes_of_an_approved_return(app, world):
    hl1 = standard("hl1-homelessness.v1")
    _propose(app, world, schema=hl1)
    # a proposal's standard is a draft: no version
    draft = json.loads(json.dumps(hl1))
    draft["fields"][2]["title"] = "Applications"
    api(app, "package_patch", headers=world["people"]["owner_admin"]["headers"], id="hl1-homelessness",
        data_standard=json.dumps(draft))
    assert api(app, "lgdp_standard_version_list", id="hl1-homelessness")["result"] == []

    _move(app, world, "hl1-homelessness", "approved")
    _move(app, world, "hl1-homelessness", "active")
    versions = api(app, "lgdp_standard_version_list", id="hl1-homelessness")["result"]
    assert [v["version"] for v in versions] == [1]

    changed = json.loads(json.dumps(draft))
    changed["fields"].append({"name": "repeat_applications", "type": "integer", "title": "Repeat applications"})
    changed["fields"][2]["constraints"]["minimum"] = 1
    updated = api(app, "package_patch", headers=world["people"]["owner_admin"]["headers"], id="hl1-homelessness",
                  data_standard=json.dumps(changed))["result"]
    assert updated["standard_version"] == 2
    versions = api(app, "lgdp_standard_version_list", id="hl1-homelessness")["result"]
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[0]["changes"]["added"] == ["repeat_applications"]
    assert versions[0]["changes"]["changed"] == {
        "applications": {"constraints": {"from": {"required": True, "minimum": 0}, "to": {"required": True, "minimum": 1}}}
    }
    assert versions[1]["schema"]["fields"][2]["title"] == "Applications"

    # an unchanged standard makes no version, and the version cannot be set by hand
    api(app, "package_patch", headers=world["people"]["owner_admin"]["headers"], id="hl1-homelessness",
        notes="Updated purpose.", standard_version="7")
    assert api(app, "package_show", id="hl1-homelessness")["result"]["standard_version"] == 2

    page = app.get("/return/hl1-homelessness/standard")
    assert "repeat_applications" in page.body and "Version 2" in page.body


def test_an_invalid_standard_is_refused(app, world):
    resp = app.post(
        "/api/3/action/package_create",
        json={
            "type": "data-return", "name": "bad", "title": "Bad", "notes": "x",
            "owner_org": world["agency"]["id"], "frequency": "annual", "statutory": "no",
            "data_standard": json.dumps({"fields": [{"name": "a", "type": "no-such-type"}]}),
        },
        headers=world["people"]["owner_admin"]["headers"],
        status=409,
    ).json
    assert "not a valid Table Schema" in resp["error"]["data_standard"][0]


def test_reviewers_read_the_audit_and_nobody_alters_it(app, world):
    _propose(app, world)
    _move(app, world, "hl1-homelessness", "approved")
    for who, status in [
        ("reviewer", 200), ("coordinator_admin", 200), ("sysadmin", 200), ("owner_admin", 200),
        ("council_editor", 403), ("other_agency_admin", 403), ("anonymous", 403),
    ]:
        resp = app.get(
            "/api/3/action/lgdp_audit_list", query_string={"id": "hl1-homelessness"},
            headers=world["people"][who]["headers"], status=status,
        ).json
        if status == 200:
            assert [r["action"] for r in resp["result"]] == ["transition", "create"]

    # the CSV export
    text = app.get("/return/hl1-homelessness/history.csv", headers=world["people"]["reviewer"]["headers"]).body
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["action"] for r in rows] == ["transition", "create"]
    assert rows[0]["reason"] == "Agreed at the data board"
    app.get("/return/hl1-homelessness/history", headers=world["people"]["council_editor"]["headers"], status=403)
    assert "Agreed at the data board" in app.get(
        "/return/hl1-homelessness/history", headers=world["people"]["reviewer"]["headers"]
    ).body

    # no action edits or deletes audit rows, for anybody
    for action in ("lgdp_audit_update", "lgdp_audit_delete", "lgdp_audit_patch"):
        app.post(f"/api/3/action/{action}", json={}, headers=world["people"]["sysadmin"]["headers"], status=400)
    # and the table itself refuses changes
    with pytest.raises(sa.exc.InternalError, match="cannot be changed"):
        model.Session.execute(sa.text("UPDATE lgdp_audit SET reason = 'x'"))
    model.Session.rollback()


def test_closed_returns_cannot_be_edited(app, world):
    _propose(app, world)
    _move(app, world, "hl1-homelessness", "rejected")
    for who in ("owner_admin", "coordinator_admin"):
        app.post(
            "/api/3/action/package_patch", json={"id": "hl1-homelessness", "title": "New"},
            headers=world["people"][who]["headers"], status=403,
        )


def test_reviews_move_overdue_returns_and_are_listed(app, world):
    _propose(app, world)
    _move(app, world, "hl1-homelessness", "approved")
    _move(app, world, "hl1-homelessness", "active")
    api(app, "package_patch", headers=world["people"]["owner_admin"]["headers"], id="hl1-homelessness",
        review_date="2020-03-31")
    _propose(app, world, name="ctas")
    for step in ("approved", "active"):
        _move(app, world, "ctas", step)
    api(app, "package_patch", headers=world["people"]["owner_admin"]["headers"], id="ctas", review_date="2099-01-01")

    listing = api(app, "lgdp_reviews_list", headers=world["people"]["reviewer"]["headers"],
                  today="2098-11-01")["result"]
    assert [i["name"] for i in listing["overdue"]] == ["hl1-homelessness"]
    assert [i["name"] for i in listing["due"]] == ["ctas"]
    app.get("/api/3/action/lgdp_reviews_list", headers=world["people"]["council_editor"]["headers"], status=403)
    page = app.get("/returns/reviews", headers=world["people"]["reviewer"]["headers"]).body
    assert "Hl1 Homelessness" in page

    dry = ckan_cli("lgdp", "reviews", "--dry-run")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "would move hl1-homelessness to under_review" in dry.stdout
    assert api(app, "package_show", id="hl1-homelessness")["result"]["lifecycle_status"] == "active"

    run = ckan_cli("lgdp", "reviews")
    assert run.returncode == 0, run.stderr[-2000:]
    assert "moved hl1-homelessness to under_review" in run.stdout
    model.Session.remove()
    assert api(app, "package_show", id="hl1-homelessness")["result"]["lifecycle_status"] == "under_review"
    assert api(app, "package_show", id="ctas")["result"]["lifecycle_status"] == "active"
    last = _audit("hl1-homelessness")[-1]
    assert (last.action, last.to_state, last.reason) == ("transition", "under_review", "Review date 2020-03-31 reached")


def test_the_review_runs_as_a_background_job(app, world, run_worker):
    _propose(app, world)
    for step in ("approved", "active"):
        _move(app, world, "hl1-homelessness", step)
    api(app, "package_patch", headers=world["people"]["owner_admin"]["headers"], id="hl1-homelessness",
        review_date="2021-06-30")
    queued = ckan_cli("lgdp", "reviews", "--enqueue")
    assert queued.returncode == 0, queued.stderr[-2000:]
    assert "queued job" in queued.stdout
    assert api(app, "package_show", id="hl1-homelessness")["result"]["lifecycle_status"] == "active"
    run_worker("default")
    model.Session.remove()
    assert api(app, "package_show", id="hl1-homelessness")["result"]["lifecycle_status"] == "under_review"


def test_return_id_only_is_honoured_and_still_audited(world):
    sysadmin = world["people"]["sysadmin"]["name"]
    result = call_action(
        "package_create", {"user": sysadmin, "return_id_only": True}, type="data-return", name="ctas",
        title="CTAS", notes="Council tax.", owner_org=world["agency"]["id"], frequency="annual",
        statutory="no", requesting_agencies=["sepa"],
    )
    assert isinstance(result, str)
    assert [(r.action, r.to_state) for r in _audit("ctas")] == [("create", "proposed")]
    with pytest.raises(Exception, match="not an agency"):
        call_action(
            "package_patch", {"user": sysadmin}, id="ctas", requesting_agencies=["fife"],
        )


def test_the_catalogue_facets_show_words_not_codes(app, world):
    call_action("organization_patch", {"user": world["people"]["sysadmin"]["name"]},
                id=world["agency"]["id"], title="Scottish Government: Housing Statistics")
    _propose(app, world)
    api(app, "package_patch", headers=world["people"]["owner_admin"]["headers"], id="hl1-homelessness",
        requesting_agencies=["sepa"], topic="housing")
    page = app.get("/data-return/").body
    for label in ("Scottish Government: Housing Statistics", "Quarterly", "Statutory", "Proposed",
                  "Housing and homelessness"):
        assert f'<span class="item-label">{label}</span>' in page, label
    for title in ("Owner agency", "Requesting agency", "Frequency", "Lifecycle status"):
        assert title in page
    found = api(app, "package_search", fq="vocab_requesting_agencies:sepa")["result"]
    assert [d["name"] for d in found["results"]] == ["hl1-homelessness"]
