"""Refused means nothing written; retries never duplicate.

lgdp_submission_upload takes an idempotency key (the Idempotency-Key header
or client_ref): the same key returns the first upload, another file or
submission with it is a 409, concurrent requests with it make one upload.
An upload during an outage that begins after the guard's check is either
refused with nothing stored (Solr: the index is part of the commit) or
stored and answered as a success, validated once Redis is back (the sweep).
Real users with API tokens over HTTP; Redis and Solr really stopped."""
from __future__ import annotations

import io
import os
import threading
import time
import uuid

import pytest
import requests
import sqlalchemy as sa

import ckan.plugins.toolkit as tk
from ckan import model

from ckanext.lgdp.ops import health
from ckanext.lgdp.submissions import normalised
from tests.conftest import RETURN_NAME, api, csv_bytes, ctas_rows, make_world, platform, push, transition

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]

SUBMISSION = f"{RETURN_NAME}--aberdeen-city--2023-24"


@pytest.fixture
def world():
    return make_world()


def keyed(who, key):
    return {**who, "headers": {**who["headers"], "Idempotency-Key": key}}


def stored(name=SUBMISSION):
    """What the database holds for a submission (read on a connection of its
    own), every idempotency key, and the files in the upload storage."""
    with model.meta.engine.connect() as conn:
        def count(sql):
            return conn.execute(sa.text(sql), {"n": name}).scalar_one()

        return {
            "submissions": count("SELECT count(*) FROM package WHERE name = :n AND state = 'active'"),
            "resources": count("SELECT count(*) FROM resource r JOIN package p ON p.id = r.package_id WHERE p.name = :n"),
            "uploads": count("SELECT count(*) FROM lgdp_upload u JOIN package p ON p.id = u.submission_id WHERE p.name = :n"),
            "keys": count("SELECT count(*) FROM lgdp_upload_key"),
            "files": _files(os.path.join(tk.config["ckan.storage_path"], "resources")),
            "normalised": _files(os.path.dirname(os.path.dirname(normalised.path_of("abc")))),
        }


def rows(name=SUBMISSION):
    return {k: v for k, v in stored(name).items() if k in ("submissions", "resources", "uploads", "keys")}


def _files(root):
    return sum(len(files) for _, _, files in os.walk(root)) if os.path.isdir(root) else 0


def nothing_more(before, after):
    return {k: after[k] - before[k] for k in before if after[k] != before[k]}


# ---------------------------------------------------------------- the key


def test_the_same_key_twice_returns_the_first_upload(app, world):
    people = world["people"]
    editor = keyed(people["a_editor"], "push-2023-24-" + uuid.uuid4().hex)
    content = csv_bytes(ctas_rows())
    first = push(app, editor, content)["result"]
    again = push(app, editor, content)["result"]
    assert again["upload"]["id"] == first["upload"]["id"]
    assert set(again) == set(first) == {"submission", "upload", "message", "errors"}
    assert again["upload"]["version"] == 1 and again["message"] == first["message"]
    assert again["submission"]["id"] == first["submission"]["id"]
    assert rows() == {"submissions": 1, "resources": 1, "uploads": 1, "keys": 1}
    # the upload's trail has one upload in it
    trail = api(app, "lgdp_audit_list", headers=people["sysadmin"]["headers"], id=SUBMISSION)["result"]
    assert [r["action"] for r in trail].count("upload") == 1

    # client_ref works as the header does, and both may be sent if they agree
    ref = "ctas-" + uuid.uuid4().hex
    by_field = push(app, people["a_editor"], content, client_ref=ref)["result"]
    assert by_field["upload"]["version"] == 2
    both = push(app, keyed(people["a_editor"], ref), content, client_ref=ref)["result"]
    assert both["upload"]["id"] == by_field["upload"]["id"]
    assert stored()["uploads"] == 2

    # keys are each user's: another editor of the council with the same key makes their own upload
    other = push(app, keyed(people["a_admin"], editor["headers"]["Idempotency-Key"]), content)["result"]
    assert other["upload"]["version"] == 3
    assert stored()["uploads"] == 3 and stored()["keys"] == 3


def test_the_same_key_with_another_file_or_submission_is_refused_naming_it(app, world):
    people = world["people"]
    key = "k-" + uuid.uuid4().hex
    editor = keyed(people["a_editor"], key)
    first = push(app, editor, csv_bytes(ctas_rows()), filename="first.csv")["result"]
    before = stored()

    other_file = push(app, editor, csv_bytes(ctas_rows(dwellings=120000)), filename="first.csv", status=409)["error"]
    assert other_file["Idempotency-Key"] == [
        f"The key {key} was already used for another file (upload 1 of this submission, first.csv): "
        "a new file needs a new key"]
    other_period = push(app, editor, csv_bytes(ctas_rows(period="2022-23")), period="2022-23", status=409)["error"]
    assert other_period["Idempotency-Key"] == [
        f"The key {key} was already used for an upload to another submission ({SUBMISSION}): "
        "a new upload needs a new key"]
    by_field = push(app, people["a_editor"], csv_bytes(ctas_rows(dwellings=1)), client_ref=key, status=409)["error"]
    assert "already used for another file" in by_field["client_ref"][0]
    assert nothing_more(before, stored()) == {}
    # nor was the other period's submission started
    assert stored(f"{RETURN_NAME}--aberdeen-city--2022-23")["submissions"] == 0

    # the header and client_ref must agree
    mixed = push(app, editor, csv_bytes(ctas_rows()), client_ref="another", status=409)["error"]
    assert mixed["client_ref"] == [
        "Differs from the Idempotency-Key header of the request: send one key, or the same in both"]
    # a key that is not one
    for bad, message in ((" spaced ", "Must be printable ASCII characters"), ("x" * 256, "Must be at most 255"),
                         ("café", "Must be printable ASCII characters")):
        error = push(app, people["a_editor"], csv_bytes(ctas_rows()), client_ref=bad, status=409)["error"]
        assert error["client_ref"][0].startswith(message), error
    bad_header = app.post("/api/3/action/lgdp_submission_upload", status=409,
                          headers={**people["a_editor"]["headers"], "Idempotency-Key": "x" * 300},
                          data={"id": SUBMISSION, "upload": (io.BytesIO(csv_bytes(ctas_rows())), "a.csv")}).json
    assert bad_header["error"]["Idempotency-Key"] == ["Must be at most 255 characters long (this is 300)"]
    assert nothing_more(before, stored()) == {}
    assert first["upload"]["version"] == 1


def test_without_a_key_two_pushes_are_two_uploads(app, world):
    editor = world["people"]["a_editor"]
    content = csv_bytes(ctas_rows())
    one = push(app, editor, content)["result"]
    two = push(app, editor, content)["result"]
    assert (one["upload"]["version"], two["upload"]["version"]) == (1, 2)
    assert stored()["uploads"] == 2 and stored()["keys"] == 0


def test_a_retry_of_a_refused_file_gets_the_same_refusal_and_no_second_upload(app, world):
    """A file that is not a readable table is kept and answered 409 with its
    upload: the retry with its key gets that answer again."""
    editor = keyed(world["people"]["a_editor"], "bad-" + uuid.uuid4().hex)
    first = push(app, editor, b"\x00\x01\x02 not a table", filename="ctas.csv", status=409)["error"]
    again = push(app, editor, b"\x00\x01\x02 not a table", filename="ctas.csv", status=409)["error"]
    assert first["upload_id"] and again == first
    assert stored()["uploads"] == 1


def test_the_commit_inside_a_savepoint_is_not_a_real_commit(app):
    """What makes an upload one transaction (submissions.actions.resource_create):
    CKAN's resource_create commits; inside a SAVEPOINT that commit only
    releases it. If a CKAN or SQLAlchemy upgrade changes this, this fails."""
    from ckanext.lgdp.model import UploadKey

    key = "savepoint-" + uuid.uuid4().hex
    model.Session.begin_nested()
    model.Session.add(UploadKey(user_id="u", key=key, fingerprint="f"))
    model.repo.commit()  # what CKAN's resource_create does
    with model.meta.engine.connect() as conn:
        seen = conn.execute(sa.text("SELECT count(*) FROM lgdp_upload_key WHERE key = :k"), {"k": key}).scalar_one()
    model.Session.rollback()
    assert seen == 0
    assert model.Session.query(UploadKey).filter_by(key=key).count() == 0


# ---------------------------------------------------------------- at once, against a live server


def _at_once(n, send):
    barrier = threading.Barrier(n)
    answers: list = [None] * n

    def run(i):
        barrier.wait()
        answers[i] = send(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


def _post(url, token, key, content, **data):
    headers = {"Authorization": token, **({"Idempotency-Key": key} if key else {})}
    resp = requests.post(f"{url}/api/3/action/lgdp_submission_upload", headers=headers, timeout=120,
                         data={"data_return": RETURN_NAME, "council": "aberdeen-city", "period": "2023-24", **data},
                         files={"upload": ("ctas.csv", content)})
    return resp.status_code, resp.json()


def test_concurrent_requests_with_the_same_key_make_one_upload(world, live_server):
    """Five requests with one key at once, to a submission not started yet:
    one submission, one upload, five answers naming it."""
    token = world["people"]["a_editor"]["token"]
    key = str(uuid.uuid4())
    content = csv_bytes(ctas_rows())
    answers = _at_once(5, lambda i: _post(live_server, token, key, content))
    assert [status for status, _ in answers] == [200] * 5, answers
    assert len({body["result"]["upload"]["id"] for _, body in answers}) == 1
    assert rows() == {"submissions": 1, "resources": 1, "uploads": 1, "keys": 1}


def test_concurrent_first_uploads_without_keys_start_one_submission(world, live_server):
    """Three different uploads at once to a submission not started yet: one
    submission, three uploads numbered 1, 2, 3."""
    token = world["people"]["a_editor"]["token"]
    answers = _at_once(3, lambda i: _post(live_server, token, None, csv_bytes(ctas_rows(dwellings=100000 + i))))
    assert [status for status, _ in answers] == [200] * 3, answers
    assert sorted(body["result"]["upload"]["version"] for _, body in answers) == [1, 2, 3]
    assert stored()["submissions"] == 1 and stored()["uploads"] == 3


# ---------------------------------------------------------------- outages after the guard's check


@pytest.fixture
def trusting_guard():
    """The guard trusts its last positive checks for an hour, so a service
    stopped after them is found by the write itself, not by the guard."""
    health._last_ok.clear()
    assert health.check("search") is None and health.check("jobs") is None
    yield
    health._last_ok.clear()


def _stop(service):
    stopped = platform("service", "stop", service)
    assert stopped.returncode == 0, stopped.stderr


def _start(service):
    started = platform("service", "start", service)
    assert started.returncode == 0, started.stdout + started.stderr


@pytest.mark.services
@pytest.mark.ckan_config("ckanext.lgdp.service_check_ttl", 3600)
def test_redis_lost_after_the_guard_stores_the_upload_and_the_sweep_validates_it(app, world, trusting_guard, run_worker):
    people = world["people"]
    editor = keyed(people["a_editor"], str(uuid.uuid4()))
    content = csv_bytes(ctas_rows())
    _stop("redis")
    try:
        first = push(app, editor, content, wait="true")["result"]  # accepted, not "refused but stored"
        assert first["upload"]["status"] == "pending"
        assert first["message"] == "Upload 1 is waiting for validation"
        again = push(app, editor, content, wait="true")["result"]  # the client's retry
        assert again["upload"]["id"] == first["upload"]["id"]
        assert stored()["uploads"] == 1
    finally:
        _start("redis")
    # the sweep queues what Redis missed (after its grace for a commit in flight)
    deadline = time.monotonic() + 90
    while True:
        swept = api(app, "lgdp_validation_sweep", headers=people["sysadmin"]["headers"])["result"]
        if swept["retried"]:
            break
        assert time.monotonic() < deadline, "the sweep never queued the upload"
        time.sleep(3)
    run_worker("lgdp:validation")
    shown = api(app, "lgdp_upload_show", headers=people["a_editor"]["headers"], id=first["upload"]["id"])["result"]
    assert shown["status"] == "valid" and shown["attempts"] == 1
    assert stored()["uploads"] == 1


@pytest.mark.services
@pytest.mark.ckan_config("ckanext.lgdp.service_check_ttl", 3600)
def test_redis_lost_after_the_guard_an_acceptance_is_stored_and_answered(app, world, trusting_guard, run_worker, receiver):
    """An acceptance commits consolidation_status "pending" and its event's
    deliveries; with Redis gone their jobs are not queued, and the answer is
    still the acceptance (deliveries go out with the next run)."""
    people = world["people"]
    name = push(app, people["a_editor"], csv_bytes(ctas_rows()))["result"]["submission"]["name"]
    run_worker("lgdp:validation")
    transition(app, people["a_admin"], name, "sign_off")
    transition(app, people["a_editor"], name, "submit")
    sub = api(app, "lgdp_subscription_create", headers=people["x_editor"]["headers"], channel="webhook",
              url=receiver["url"], event_types=["submission.accepted"])["result"]
    _stop("redis")
    try:
        accepted = transition(app, people["x_editor"], name, "accept")["result"]
        assert accepted["submission_status"] == "accepted" and accepted["consolidation_status"] == "pending"
        waiting = api(app, "lgdp_delivery_list", headers=people["x_editor"]["headers"], id=sub["id"])["result"]
        assert [d["status"] for d in waiting] == ["pending"]
    finally:
        _start("redis")
    ran = api(app, "lgdp_delivery_run", headers=people["coordinator"]["headers"])["result"]
    assert ran["delivered"] == 1 and len(receiver["got"]) == 1


@pytest.mark.services
@pytest.mark.ckan_config("ckanext.lgdp.service_check_ttl", 3600)
def test_solr_lost_after_the_guard_refuses_with_nothing_stored(app, world, trusting_guard):
    """An upload to a started submission and one that would start another:
    each refused request leaves no submission, resource, upload, key or
    file (the file CKAN stored before the failed commit is removed); the
    retries with the same keys make one upload each."""
    people = world["people"]
    push(app, people["a_editor"], csv_bytes(ctas_rows()))
    other = f"{RETURN_NAME}--aberdeen-city--2022-23"
    to_existing = keyed(people["a_editor"], str(uuid.uuid4()))
    to_new = keyed(people["a_editor"], str(uuid.uuid4()))
    content = csv_bytes(ctas_rows(dwellings=120000))
    earlier = csv_bytes(ctas_rows(period="2022-23"))
    before, before_other = stored(), stored(other)
    _stop("solr")
    try:
        for who, data, period in ((to_existing, content, "2023-24"), (to_new, earlier, "2022-23")):
            refused = push(app, who, data, period=period, status=503)["error"]
            assert "nothing was changed" in refused["message"] and "Solr" in refused["message"]
        assert nothing_more(before, stored()) == {}
        assert nothing_more(before_other, stored(other)) == {}
    finally:
        _start("solr")
    assert push(app, to_existing, content)["result"]["upload"]["version"] == 2
    assert push(app, to_new, earlier, period="2022-23")["result"]["upload"]["version"] == 1
    assert push(app, to_existing, content)["result"]["upload"]["version"] == 2  # and a retry after that
    assert nothing_more(before, stored()) == {"resources": 1, "uploads": 1, "keys": 2, "files": 2, "normalised": 2}
    assert rows(other) == {"submissions": 1, "resources": 1, "uploads": 1, "keys": 2}
