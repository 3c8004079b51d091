"""Every lgdp_ action validates its input with a navl schema: taken from
CKAN's own registry of actions (not a list kept here), each must carry one,
and each is fuzzed over HTTP with real users and API tokens: wrong types,
missing and unknown parameters, NUL characters, huge and non-ASCII values.
There is no 500; a 409 names a field; unknown objects answer 404 naming
which; a sample of answers is checked word for word."""
from __future__ import annotations

import inspect
import io

import pytest

import ckan.logic as logic
import ckan.plugins.toolkit as tk

from tests.conftest import COUNCIL_A_GSS, RETURN_NAME, api, csv_bytes, ctas_rows, make_world, push, transition

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

HUGE = "x" * 1_000_000
# Values of the wrong kind, or hostile, for any parameter.
VALUES = {
    "list": ["a", "b"],
    "object": {"a": 1},
    "list of objects": [{"a": 1}, "b"],
    "boolean": True,
    "number": 12345,
    "negative": -1,
    "float": 1e308,
    "NUL": "\x00",
    "NUL inside": "aberdeen\x00city",
    "huge": HUGE,
    "non-ASCII": "Äbérdeen café ✓ 日本 \u202e",
    "empty": "",
    "null": None,
}
# Checked with every user; the others with the sysadmin only (who passes
# every permission check, so reaches the deepest code; parameters are checked
# before permissions, so a huge value is refused alike for everyone).
EVERY_USER = ("list", "NUL inside", "non-ASCII")
USERS = ("sysadmin", "a_editor", "anonymous")


def registered_actions() -> dict[str, object]:
    """Every lgdp_ action of CKAN's registry, as CKAN registered it (the
    function under CKAN's own wrapper)."""
    tk.get_action("status_show")  # the registry is built on first use
    out = {}
    for name, func in logic._actions.items():
        if name.startswith("lgdp_"):
            out[name] = inspect.getclosurevars(func).nonlocals.get("_action", func)
    return out


def schema_of(func: object) -> dict[str, list]:
    schema_func = getattr(func, "lgdp_schema", None)
    assert callable(schema_func)
    return schema_func()


def names_a_field(error: dict) -> bool:
    # a bare "message" is what CKAN's own errors carry: no field
    fields = [k for k in error if k not in ("__type", "message")]
    return bool(fields) and all(isinstance(k, str) and k for k in fields)


def test_every_registered_action_has_a_schema():
    actions = registered_actions()
    from ckanext.lgdp.plugin import collect_actions

    own = {n for n in collect_actions() if n.startswith("lgdp_")}
    assert set(actions) == own and len(actions) >= 44, sorted(own ^ set(actions))
    missing = [name for name, func in actions.items() if not callable(getattr(func, "lgdp_schema", None))]
    assert missing == [], f"actions without a navl schema: {missing}"
    for name, func in actions.items():
        schema = schema_of(func)
        assert isinstance(schema, dict), name
        assert all(isinstance(v, list) for v in schema.values()), name


@pytest.fixture
def world(app):
    world = make_world()
    people = world["people"]
    upload = push(app, people["a_editor"], csv_bytes(ctas_rows()))["result"]
    world["submission"] = upload["submission"]
    world["upload"] = upload["upload"]
    return world


def _post(app, action, who, data):
    return app.post(f"/api/3/action/{action}", json=data, headers=who["headers"], expect_errors=True)


def test_no_action_answers_500_to_any_input(app, world):
    people = world["people"]
    failures: list[str] = []
    checked = 0

    def check(action, role, label, data):
        nonlocal checked
        checked += 1
        resp = _post(app, action, people[role], data)
        where = f"{action} as {role}, {label}"
        if resp.status_code >= 500:
            failures.append(f"{where}: {resp.status_code}")
            return
        body = resp.json
        if resp.status_code == 409 and not names_a_field(body["error"]):
            failures.append(f"{where}: 409 naming no field: {body['error']}")
        if resp.status_code == 404 and not body["error"].get("message", "").startswith("Not found: "):
            failures.append(f"{where}: 404 naming nothing: {body['error']}")
        if len(resp.data) > 200_000:
            failures.append(f"{where}: an answer of {len(resp.data)} bytes")

    for action, func in sorted(registered_actions().items()):
        fields = [k for k in schema_of(func) if not k.startswith("_")]
        for role in USERS:
            # nothing at all: the required parameters are missing
            check(action, role, "no parameters", {})
            # a typo of a parameter is refused, naming it
            resp = _post(app, action, people[role], {"councill": "aberdeen-city"})
            if resp.status_code != 409 or "councill" not in resp.json["error"]:
                failures.append(f"{action} as {role}: an unknown parameter gave {resp.status_code} {resp.data[:200]!r}")
            for field in fields:
                for label, value in VALUES.items():
                    if role == "sysadmin" or label in EVERY_USER:
                        check(action, role, f"{field}={label}", {field: value})
            # an unknown parameter with a huge name
            check(action, role, "a huge unknown name", {HUGE[:5000]: "x"})
    print(f"\nfuzz: {len(registered_actions())} actions, {checked} calls")
    assert failures == [], "\n".join(failures[:60])


def _bases(world):
    """For some actions, parameters that are right: each field is then
    fuzzed with the others right, so the action runs past its first check."""
    sub, upload = world["submission"]["name"], world["upload"]["id"]
    return {
        "lgdp_submission_create": {"data_return": RETURN_NAME, "council": "aberdeen-city", "period": "2023-24"},
        "lgdp_submission_transition": {"id": sub, "action": "sign_off", "reason": "x"},
        "lgdp_submission_explain": {"id": sub, "query_id": "q1", "explanation": "x"},
        "lgdp_upload_list": {"id": sub},
        "lgdp_upload_show": {"id": upload, "limit": 10},
        "lgdp_audit_list": {"id": RETURN_NAME, "limit": 10, "offset": 0},
        "lgdp_standard_version_list": {"id": RETURN_NAME},
        "lgdp_return_overlap": {"id": RETURN_NAME, "min_score": 0.5},
        "lgdp_calendar_show": {"organization": "aberdeen-city", "start": "2024-01-01", "end": "2024-12-31"},
        "lgdp_burden_show": {"organization": "aberdeen-city", "year": 2024},
        "lgdp_qa_flag_list": {"data_return": RETURN_NAME, "council": "aberdeen-city", "period": "2023-24",
                              "status": "open"},
        "lgdp_table_publish": {"data_return": RETURN_NAME, "published": False},
        "lgdp_dashboard_figures": {"indicator": f"{RETURN_NAME}:chargeable_dwellings", "council": COUNCIL_A_GSS},
        "lgdp_dashboard_create": {"title": "Mine", "indicators": [f"{RETURN_NAME}:chargeable_dwellings"]},
        "lgdp_subscription_create": {"channel": "email", "data_return": RETURN_NAME,
                                     "event_types": ["submission.accepted"]},
        "lgdp_event_list": {"data_return": RETURN_NAME, "limit": 5},
        "lgdp_connector_create": {"council": "aberdeen-city", "data_return": RETURN_NAME,
                                  "url": "https://127.0.0.1/ctas.csv", "interval_minutes": 60},
        "lgdp_reminder_run": {"dry_run": True, "today": "2024-05-01"},
        "lgdp_reviews_list": {"within_days": 10, "today": "2024-05-01"},
        "lgdp_reviews_run": {"dry_run": True, "today": "2024-05-01"},
    }


def test_no_action_answers_500_with_its_other_parameters_right(app, world):
    people = world["people"]
    failures: list[str] = []
    actions = registered_actions()
    for action, base in _bases(world).items():
        assert action in actions, action
        for field in schema_of(actions[action]):
            if field.startswith("_"):
                continue
            for role in ("sysadmin", "a_editor"):
                for label, value in VALUES.items():
                    if role != "sysadmin" and label not in EVERY_USER:
                        continue
                    resp = _post(app, action, people[role], {**base, field: value})
                    where = f"{action} as {role}, {field}={label}"
                    if resp.status_code >= 500:
                        failures.append(f"{where}: {resp.status_code}")
                    elif resp.status_code == 409 and not names_a_field(resp.json["error"]):
                        failures.append(f"{where}: 409 naming no field: {resp.json['error']}")
                    elif len(resp.data) > 200_000:
                        failures.append(f"{where}: an answer of {len(resp.data)} bytes")
    assert failures == [], "\n".join(failures[:60])


def test_upload_parameters_are_refused_before_anything_is_stored(app, world):
    people = world["people"]
    editor = people["a_editor"]
    before = api(app, "lgdp_upload_list", headers=editor["headers"], id=world["submission"]["name"])["result"]

    def upload(status, filename="ctas.csv", **extra):
        return push(app, editor, csv_bytes(ctas_rows()), filename=filename, status=status, **extra)["error"]

    assert upload(409, wait="banana")["wait"] == ["Must be true or false, not 'banana'"]
    assert upload(409, filename="ctas\x00.csv")["upload"] == [
        "The file's name contains a NUL character (a zero byte): rename the file and send it again"]
    assert upload(409, channel="pull")["channel"] == [
        "Set by the platform (api, url, browser or pull), never by the caller"]
    assert upload(409, councill="aberdeen-city")["councill"] == [
        "Not a parameter of this action; did you mean council?"]
    after = api(app, "lgdp_upload_list", headers=editor["headers"], id=world["submission"]["name"])["result"]
    assert [u["id"] for u in after] == [u["id"] for u in before], "nothing was stored"
    # the channel is the platform's: an API push is "api"
    assert after[0]["channel"] == "api"
    # wait=true works as before
    done = push(app, editor, csv_bytes(ctas_rows()), wait="false")["result"]
    assert done["upload"]["channel"] == "api"


def test_unknown_objects_answer_404_naming_them(app, world):
    people = world["people"]
    editor = people["a_editor"]

    def error(status, action, who=editor, **data):
        return api(app, action, headers=who["headers"], status=status, **data)["error"]

    def upload(status, who=editor, **data):
        file = {"upload": (io.BytesIO(csv_bytes(ctas_rows())), "ctas.csv")}
        resp = app.post("/api/3/action/lgdp_submission_upload", data={**data, **file}, headers=who["headers"],
                        status=status)
        return resp.json["error"]

    assert upload(404, data_return=RETURN_NAME, council="nowhere", period="2023-24")["message"] == \
        "Not found: No council nowhere"
    assert upload(404, data_return=RETURN_NAME, council=COUNCIL_A_GSS, period="2023-24")["message"] == \
        f"Not found: No council {COUNCIL_A_GSS}: name the council by its name (aberdeen-city), not its GSS code"
    assert upload(404, id="no-such-submission")["message"] == "Not found: No submission no-such-submission"
    assert upload(404, data_return="no-such-return", council="aberdeen-city", period="2023-24")["message"] == \
        "Not found: No data return no-such-return"
    assert upload(409, data_return=RETURN_NAME, period="2023-24")["council"] == [
        "Missing value: name the submission by its id, or by its data_return, council and period"]
    # a submission the caller may not read answers exactly as one that does not exist
    hidden = world["submission"]["name"]
    assert upload(404, who=people["b_editor"], id=hidden)["message"] == f"Not found: No submission {hidden}"
    assert error(404, "lgdp_upload_list", who=people["b_editor"], id=hidden)["message"] == \
        f"Not found: No submission {hidden}"
    # a real permission failure is a 403
    assert upload(403, who=people["b_editor"], data_return=RETURN_NAME, council="aberdeen-city",
                  period="2023-24")["message"] == "Access denied: Only the council's editors can upload its submissions"

    assert error(404, "lgdp_upload_show", id="no-such-upload")["message"] == "Not found: No upload no-such-upload"
    assert error(404, "lgdp_submission_explain", id="nope", query_id="q", explanation="x")["message"] == \
        "Not found: No submission nope"
    assert error(404, "lgdp_connector_run_list", id="nope")["message"] == "Not found: No connector nope"
    assert error(404, "lgdp_qa_flag_explain", id="nope", explanation="x")["message"] == \
        "Not found: No quality flag nope"
    assert error(404, "lgdp_dashboard_create", title="Mine", indicators=["x:y"], organization="nowhere")["message"] == \
        "Not found: No organisation nowhere"
    assert error(404, "lgdp_table_publish", who=people["x_editor"], data_return="nope")["message"] == \
        "Not found: No data return nope"


def test_bad_parameters_answer_409_naming_the_field(app, world):
    people = world["people"]
    sysadmin = people["sysadmin"]

    def error(name, who=sysadmin, **data):
        return api(app, name, headers=who["headers"], status=409, **data)["error"]

    sub = world["submission"]["name"]
    assert transition(app, sysadmin, sub, "fly", status=409)["error"]["action"] == [
        "Must be one of: sign_off, withdraw_sign_off, submit, accept, return"]
    assert error("lgdp_upload_show", id=world["upload"]["id"], limit="ten")["limit"] == [
        "Must be a whole number from 0 to 100000"]
    assert error("lgdp_upload_show", id=world["upload"]["id"], limit=10**9)["limit"] == [
        "Must be between 0 and 100000"]
    assert error("lgdp_upload_list", id=["a", "b"])["id"] == ["Must be text, not a list"]
    assert error("lgdp_upload_list", id="a\x00b")["id"] == ["Must not contain a NUL character (a zero byte)"]
    assert error("lgdp_upload_list", id=HUGE)["id"] == ["Must be at most 200 characters long (this is 1000000)"]
    assert error("lgdp_submission_create", data_return=RETURN_NAME, council="aberdeen-city") == {
        "period": ["Missing value"], "__type": "Validation Error"}
    assert error("lgdp_return_transition", id=RETURN_NAME, to="active", reason="   ")["reason"] == ["Missing value"]
    assert error("lgdp_reminder_run", today="31/03/2026")["today"] == [
        "Must be a date written YYYY-MM-DD, e.g. 2026-03-31"]
    assert error("lgdp_consolidate", qa="perhaps")["qa"] == ["Must be true or false, not 'perhaps'"]
    assert error("lgdp_status_show", verbose="yes")["verbose"] == ["Not a parameter: this action takes none"]
    assert error("lgdp_event_list", data_return=RETURN_NAME, limit=0)["limit"] == ["Must be between 1 and 1000"]
    assert error("lgdp_subscription_create", who=people["a_editor"], channel="pigeon")["channel"] == [
        "Must be one of: webhook, email"]
    # a browser's cache buster on a GET is no parameter of the action
    assert app.get("/api/3/action/lgdp_status_show?_=1733100000000", status=200).json["success"]


def test_a_retired_return_says_it_collects_nothing(app, world):
    people = world["people"]
    for to in ("under_review", "retired"):
        api(app, "lgdp_return_transition", headers=people["sysadmin"]["headers"], id=RETURN_NAME, to=to,
            reason="Replaced by the new return")
    for period in ("2024-25", "2024/25"):
        error = push(app, people["a_editor"], csv_bytes(ctas_rows(period=period)), period=period, status=409)["error"]
        assert error["data_return"] == [f"{RETURN_NAME} is not collecting data (it is retired)"], error
