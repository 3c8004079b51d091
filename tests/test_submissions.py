"""Submissions: upload -> validate -> explain queries -> sign off -> submit ->
accept | return, through the HTTP API as the people who do it."""
from __future__ import annotations

import io

import pytest

from ckan import model

from ckanext.lgdp.model import AuditEntry
from tests.conftest import (
    COUNCIL_A_GSS, api, csv_bytes, ctas_rows, make_world, push, transition,
)

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


@pytest.fixture
def world():
    return make_world()


def _uploads(app, who, submission):
    return api(app, "lgdp_upload_list", headers=who["headers"], id=submission)["result"]


def test_a_push_starts_the_submission_and_validation_accepts_a_good_file(app, world, run_worker):
    people = world["people"]
    answer = push(app, people["a_editor"], csv_bytes(ctas_rows()))["result"]
    sub = answer["submission"]
    assert sub["type"] == "submission" and sub["private"] is True
    assert sub["organization"]["name"] == "aberdeen-city"
    assert sub["submission_status"] == "draft" and sub["period"] == "2023-24"
    assert sub["due_date"] == "2024-04-30"
    assert answer["upload"]["status"] == "pending" and answer["upload"]["version"] == 1

    run_worker("lgdp:validation")
    uploads = _uploads(app, people["a_member"], sub["name"])
    assert [u["status"] for u in uploads] == ["valid"], uploads
    assert uploads[0]["rows"] == 1 and uploads[0]["error_count"] == 0


def _accept_year(app, world, run_worker, period, dwellings=110000):
    people = world["people"]
    sub = push(app, people["a_editor"], csv_bytes(ctas_rows(period=period, dwellings=dwellings)), period=period)["result"]["submission"]
    run_worker("lgdp:validation")
    transition(app, people["a_admin"], sub["name"], "sign_off")
    transition(app, people["a_editor"], sub["name"], "submit")
    transition(app, people["x_editor"], sub["name"], "accept")
    return sub["name"]


def test_the_whole_flow_by_the_people_who_do_it(app, world, run_worker):
    """upload -> validate -> explain queries -> sign off -> submit -> accept."""
    people = world["people"]
    _accept_year(app, world, run_worker, "2022-23", dwellings=100000)

    # a jump of 90% in a countable total raises a query
    answer = push(app, people["a_editor"], csv_bytes(ctas_rows(dwellings=190000)))["result"]
    name = answer["submission"]["name"]
    run_worker("lgdp:validation")
    upload = _uploads(app, people["a_editor"], name)[0]
    assert upload["status"] == "valid"
    [query] = upload["queries"]
    assert query["field"] == "chargeable_dwellings" and "+90%" in query["message"] and "2022-23" in query["message"]

    # sign-off waits for the explanation; only an admin signs off; only an editor explains
    refused = transition(app, people["a_admin"], name, "sign_off", status=409)
    assert "queries need an explanation" in refused["error"]["action"][0]
    api(app, "lgdp_submission_explain", headers=people["a_member"]["headers"], status=403,
        id=name, query_id=query["id"], explanation="x")
    api(app, "lgdp_submission_explain", headers=people["a_editor"]["headers"],
        id=name, query_id=query["id"], explanation="New build estate added 90,000 dwellings")
    transition(app, people["a_editor"], name, "sign_off", status=403)
    signed = transition(app, people["a_admin"], name, "sign_off")["result"]
    assert signed["submission_status"] == "signed_off" and signed["signed_off_by"] == people["a_admin"]["name"]

    # members cannot submit; agencies cannot accept before submission
    transition(app, people["a_member"], name, "submit", status=403)
    transition(app, people["x_editor"], name, "accept", status=404)  # not theirs to see until submitted
    submitted = transition(app, people["a_editor"], name, "submit")["result"]
    assert submitted["submission_status"] == "submitted" and submitted["late"] == "yes"  # due 2024-04-30

    # a council cannot accept its own; an agency that did not ask for it cannot either
    transition(app, people["a_admin"], name, "accept", status=403)
    transition(app, people["y_editor"], name, "accept", status=404)  # not theirs: it does not exist for them
    transition(app, people["x_member"], name, "accept", status=403)
    accepted = transition(app, people["r_editor"], name, "accept")["result"]
    assert accepted["submission_status"] == "accepted"
    assert accepted["accepted_upload"] == upload["id"]

    # once accepted, no upload replaces it
    refused = push(app, people["a_editor"], csv_bytes(ctas_rows()), status=409)
    assert "accepted" in refused["error"]["upload"][0]

    trail = api(app, "lgdp_audit_list", headers=people["x_member"]["headers"], id=name)["result"]
    steps = [(r["action"], r["from_state"], r["to_state"], r["actor_name"]) for r in reversed(trail)]
    assert steps == [
        ("create", None, "expected", people["a_editor"]["name"]),
        ("upload", "expected", "draft", people["a_editor"]["name"]),
        ("explain", None, None, people["a_editor"]["name"]),
        ("sign_off", "draft", "signed_off", people["a_admin"]["name"]),
        ("submit", "signed_off", "submitted", people["a_editor"]["name"]),
        ("accept", "submitted", "accepted", people["r_editor"]["name"]),
    ]


def test_figures_a_thousand_times_smaller_are_queried_as_thousands(app, world, run_worker):
    people = world["people"]
    _accept_year(app, world, run_worker, "2022-23", dwellings=110000)
    name = push(app, people["a_editor"], csv_bytes(ctas_rows(dwellings=110)))["result"]["submission"]["name"]
    run_worker("lgdp:validation")
    [query] = _uploads(app, people["a_editor"], name)[0]["queries"]
    assert query["message"] == ("Chargeable dwellings is 110 against 110,000 in 2022-23: about 1,000 times smaller, "
                                "as if written in thousands. Write the figure in full, or explain the change")


def test_returned_then_resubmitted_keeps_both_versions(app, world, run_worker):
    people = world["people"]
    first = push(app, people["a_editor"], csv_bytes(ctas_rows()), filename="first.csv")["result"]
    name = first["submission"]["name"]
    run_worker("lgdp:validation")
    transition(app, people["a_admin"], name, "sign_off")
    transition(app, people["a_editor"], name, "submit")
    transition(app, people["x_editor"], name, "return", status=409)  # a reason is required
    returned = transition(app, people["x_editor"], name, "return", reason="Collected includes water charges")["result"]
    assert returned["submission_status"] == "returned"
    assert returned["return_reason"] == "Collected includes water charges"

    second = push(app, people["a_editor"], csv_bytes(ctas_rows(collected=119000000)), filename="second.csv")["result"]
    assert second["submission"]["submission_status"] == "draft" and second["submission"]["round"] == "2"
    run_worker("lgdp:validation")
    transition(app, people["a_admin"], name, "sign_off")
    transition(app, people["a_editor"], name, "submit")
    final = transition(app, people["coordinator"], name, "accept")["result"]

    uploads = _uploads(app, people["x_member"], name)
    assert [(u["version"], u["filename"], u["status"]) for u in uploads] == [
        (2, "second.csv", "valid"), (1, "first.csv", "valid")]
    assert final["accepted_upload"] == uploads[0]["id"]
    for upload in uploads:  # both files are still there for the agency
        got = app.get(f"/dataset/{final['id']}/resource/{upload['id']}/download", headers=people["x_member"]["headers"])
        assert got.status_code == 200 and b"S12000033" in got.data


def test_an_invalid_file_is_kept_flagged_and_explained_row_by_row(app, world, live_worker):
    people = world["people"]
    rows = ctas_rows()
    rows.append(["S12000034", "2023-24", "abc", "1", "1", "101"])
    answer = push(app, people["a_editor"], csv_bytes(rows), wait="true", status=409)
    error = answer["error"]
    assert error["status"] == "invalid"
    found = {(e["row"], e["field"], e["type"]) for e in error["errors"]}
    assert (3, "gss_code", "constraint-error") in found  # another council's code
    assert (3, "chargeable_dwellings", "type-error") in found
    assert (3, "in_year_collection_rate_pct", "constraint-error") in found
    # each error in plain words, from the standard's titles; Frictionless's own message stays beside it
    by_key = {(e["row"], e["field"], e["type"]): e for e in error["errors"]}
    wrong_council = by_key[(3, "gss_code", "constraint-error")]
    assert wrong_council["summary"] == (
        "Row 3, Council GSS code: 'S12000034' is the code of Aberdeenshire: this submission is for Aberdeen City, "
        "whose code is S12000033. Upload Aberdeenshire's figures to its own submission.")
    assert wrong_council["field_title"] == "Council GSS code" and 'constraint "enum"' in wrong_council["message"]
    assert by_key[(3, "chargeable_dwellings", "type-error")]["summary"] == (
        "Row 3, Chargeable dwellings: 'abc' should be a whole number, like 1234.")

    upload = api(app, "lgdp_upload_show", headers=people["a_member"]["headers"], id=error["upload_id"])["result"]
    assert upload["status"] == "invalid" and upload["error_count"] == len(error["errors"])
    assert upload["report"]["valid"] is False
    assert [e["summary"] for e in upload["errors"]] == [e["summary"] for e in error["errors"]]
    gaelic = app.get(f"/gd/api/3/action/lgdp_upload_show?id={error['upload_id']}",
                     headers=people["a_member"]["headers"]).json["result"]
    assert [e["message"] for e in gaelic["errors"]] == [e["message"] for e in upload["errors"]]
    assert "Ràgh 3, Chargeable dwellings: 'abc': bu chòir àireamh shlàn a bhith ann, mar 1234." in [
        e["summary"] for e in gaelic["errors"]]
    # ckanext-validation's own API reads the same report
    shown = api(app, "resource_validation_show", headers=people["a_editor"]["headers"], resource_id=error["upload_id"])["result"]
    assert shown["status"] == "failure"
    # the page lists the errors row by row
    sub = upload["submission_id"]
    page = app.get(f"/submission/{sub}/uploads/{error['upload_id']}", headers=people["a_editor"]["headers"]).get_data(as_text=True)
    assert "abc" in page and "S12000034" in page
    assert "is the code of Aberdeenshire" in page and "Chargeable dwellings" in page
    assert "does not conform to a constraint" not in page and "integer/default" not in page
    # and it cannot be signed off
    refused = transition(app, people["a_admin"], sub, "sign_off", status=409)
    assert "invalid" in refused["error"]["action"][0]


def test_a_long_cell_is_shortened_in_answers_and_pages_but_kept_in_the_file(app, world, live_worker):
    """A cell over the limit is refused at intake (test_hostile_corpus); one
    just under it is validated, and shown shortened."""
    from ckanext.lgdp import config

    people = world["people"]
    rows = ctas_rows()
    rows[1][2] = "9" * (config.limit_cell_chars() - 8)
    rows.append(rows[1][:2] + [rows[1][2]] * 4)  # a second row of long cells, repeating the key
    content = csv_bytes(rows)
    resp = app.post("/api/3/action/lgdp_submission_upload", headers=people["a_editor"]["headers"], status=409,
                    data={"data_return": "council-tax-collection", "council": "aberdeen-city", "period": "2023-24",
                          "wait": "true", "upload": (io.BytesIO(content), "huge.csv")})
    assert len(resp.data) < 100_000, len(resp.data)
    error = resp.json["error"]
    big = [e for e in error["errors"] if e["field"] == "chargeable_dwellings"][0]
    assert big["value"] == "9" * 200 + "…" and big["summary"].startswith("Row 2, Chargeable dwellings: '999")
    shown = app.get(f"/api/3/action/lgdp_upload_show?id={error['upload_id']}", headers=people["a_editor"]["headers"])
    assert len(shown.data) < 100_000, len(shown.data)
    upload = shown.json["result"]
    page = app.get(f"/submission/{upload['submission_id']}/uploads/{upload['id']}", headers=people["a_editor"]["headers"])
    assert len(page.data) < 100_000 and "9" * 200 + "…" in page.get_data(as_text=True)
    got = app.get(f"/dataset/{upload['submission_id']}/resource/{upload['id']}/download", headers=people["a_editor"]["headers"])
    assert got.data == content, "the file keeps the whole cell"


def test_uploads_are_never_overwritten_or_deleted(app, world, run_worker):
    people = world["people"]
    first = push(app, people["a_editor"], csv_bytes(ctas_rows()))["result"]
    rid = first["upload"]["id"]
    resp = app.post("/api/3/action/resource_update", headers=people["a_editor"]["headers"],
                    data={"id": rid, "upload": (io.BytesIO(b"x,y\n1,2\n"), "other.csv")}, status=403)
    assert "kept as they were sent" in resp.json["error"]["message"]
    resp = api(app, "resource_delete", headers=people["a_admin"]["headers"], status=403, id=rid)
    assert "kept" in resp["error"]["message"]
    api(app, "package_delete", headers=people["a_admin"]["headers"], status=403, id=first["submission"]["id"])
    # a direct package_create of a submission is refused: the actions check council, return and period
    api(app, "package_create", headers=people["a_editor"]["headers"], status=403, type="submission",
        name="sneaky", owner_org=world["orgs"]["council_a"]["id"])
    # and it changes only through the platform's actions
    resp = api(app, "package_patch", headers=people["a_editor"]["headers"], id=first["submission"]["id"], status=403,
               submission_status="accepted", notes="Our note")
    assert "lgdp_submission_transition" in resp["error"]["message"]
    shown = api(app, "package_show", headers=people["a_editor"]["headers"], id=first["submission"]["id"])["result"]
    assert shown["submission_status"] == "draft" and shown.get("notes") != "Our note"


def test_the_browser_path(app, world, run_worker):
    people = world["people"]
    sub = api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"],
              data_return="council-tax-collection", council="aberdeen-city", period="2023-24")["result"]
    assert sub["submission_status"] == "expected"
    page = app.get(f"/submission/{sub['name']}", headers=people["a_editor"]["headers"]).get_data(as_text=True)
    assert "Not yet received" in page and 'name="upload"' in page
    resp = app.post(f"/submission/{sub['name']}/upload", headers=people["a_editor"]["headers"],
                    data={"upload": (io.BytesIO(csv_bytes(ctas_rows())), "ctas.csv")})
    assert resp.status_code == 200
    run_worker("lgdp:validation")
    page = app.get(f"/submission/{sub['name']}", headers=people["a_admin"]["headers"]).get_data(as_text=True)
    assert "Valid" in page and 'value="sign_off"' in page
    app.post(f"/submission/{sub['name']}/transition", headers=people["a_admin"]["headers"], data={"action": "sign_off"})
    shown = api(app, "package_show", headers=people["a_admin"]["headers"], id=sub["name"])["result"]
    assert shown["submission_status"] == "signed_off"
    # an agency does not see a council's work in progress
    assert app.get(f"/submission/{sub['name']}", headers=people["x_editor"]["headers"]).status_code in (403, 404)


def test_a_file_someone_waits_for_is_validated_before_bulk_pushes(app, world, run_worker):
    """Files pushed in bulk queue in turn; one sent from the form (an officer
    at the screen) goes to the front of the validation queue."""
    from ckan.lib.jobs import get_queue

    from ckanext.lgdp.model import Upload

    people = world["people"]
    bulk = [push(app, people["a_editor"], csv_bytes(ctas_rows(period=p)), period=p)["result"]["upload"]["id"]
            for p in ("2021-22", "2022-23")]
    sub = api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"],
              data_return="council-tax-collection", council="aberdeen-city", period="2023-24")["result"]
    resp = app.post(f"/submission/{sub['name']}/upload", headers=people["a_editor"]["headers"],
                    data={"upload": (io.BytesIO(csv_bytes(ctas_rows())), "ctas.csv")})
    assert resp.status_code == 200
    form = api(app, "lgdp_upload_list", headers=people["a_editor"]["headers"], id=sub["name"])["result"][0]["id"]
    order = [model.Session.get(Upload, i).job_id for i in (form, *bulk)]
    queue = get_queue("lgdp:validation")
    assert [j for j in queue.job_ids if j.startswith("lgdp-validate-")] == order, [
        (j.id, j.func_name) for j in queue.jobs]
    run_worker("lgdp:validation")
    model.Session.expire_all()
    assert [model.Session.get(Upload, i).status for i in (form, *bulk)] == ["valid"] * 3


def test_bad_requests_get_clear_errors(app, world):
    people = world["people"]
    bad = api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"], status=409,
              data_return="council-tax-collection", council="aberdeen-city", period="2023-Q1")
    assert "not a annual period" in bad["error"]["period"][0] or "is not a" in bad["error"]["period"][0]
    api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"], status=404,
        data_return="no-such-return", council="aberdeen-city", period="2023-24")
    api(app, "lgdp_submission_create", headers=people["b_editor"]["headers"], status=403,
        data_return="council-tax-collection", council="aberdeen-city", period="2023-24")
    not_council = api(app, "lgdp_submission_create", headers=people["coordinator"]["headers"], status=409,
                      data_return="council-tax-collection", council="sepa", period="2023-24")
    assert "not a council" in not_council["error"]["council"][0]
    none = app.post("/api/3/action/lgdp_submission_upload", headers=people["a_editor"]["headers"],
                    data={"data_return": "council-tax-collection", "council": "aberdeen-city", "period": "2023-24"}, status=409)
    assert "Send a file" in none.json["error"]["upload"][0]


def test_expected_submissions_come_from_the_calendar(app, world):
    people = world["people"]
    api(app, "lgdp_submission_expect", headers=people["a_admin"]["headers"], status=403)
    result = api(app, "lgdp_submission_expect", headers=people["coordinator"]["headers"],
                 since="2023-01-01", until="2024-12-31")["result"]
    # 2022-23 and 2023-24 (due 30 April) x 2 councils, all past their due date
    assert result == {"created": 4, "existing": 0, "overdue_refreshed": 4}
    again = api(app, "lgdp_submission_expect", headers=people["coordinator"]["headers"],
                since="2023-01-01", until="2024-12-31")["result"]
    assert again == {"created": 0, "existing": 4, "overdue_refreshed": 4}
    found = api(app, "package_search", headers=people["a_member"]["headers"], fq="dataset_type:submission",
                include_private=True, **{"facet.field": '["submission_status", "timeliness"]'})["result"]
    assert found["count"] == 2  # council A's own only
    assert found["facets"]["submission_status"] == {"expected": 2}
    assert found["facets"]["timeliness"] == {"overdue": 2}
