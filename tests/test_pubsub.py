"""Publish/subscribe: signed webhooks with retries and a dead-letter list,
filtered by the access policy; the events feed per return."""
from __future__ import annotations

import datetime
import json

import pytest

from ckan import model

from ckanext.lgdp.connectors import webhooks
from ckanext.lgdp.model import Delivery
from tests.conftest import api, csv_bytes, ctas_rows, make_world, push, transition

pytestmark = [pytest.mark.usefixtures("with_plugins", "clean_db", "clean_index")]


def _subscribe(app, who, url, **extra):
    return api(app, "lgdp_subscription_create", headers=who["headers"], channel="webhook", url=url, **extra)["result"]


def _submit(app, world, live=True):
    people = world["people"]
    sub = push(app, people["a_editor"], csv_bytes(ctas_rows()), wait="true")["result"]["submission"]
    transition(app, people["a_admin"], sub["name"], "sign_off")
    transition(app, people["a_editor"], sub["name"], "submit")
    return sub["name"]


def _due_now():
    """Make every waiting retry due (instead of waiting for its backoff)."""
    for row in model.Session.query(Delivery).filter(Delivery.status == "pending"):
        row.next_attempt_at = datetime.datetime(2000, 1, 1)
    model.repo.commit()


def test_a_signed_event_reaches_the_agency_and_never_an_agency_that_did_not_ask(app, receiver, live_worker, run_worker):
    world = make_world()
    people = world["people"]
    mine = _subscribe(app, people["x_editor"], receiver["url"], data_return="council-tax-collection")
    assert len(mine["secret"]) == 64
    _subscribe(app, people["y_editor"], receiver["url"] + "?y")  # every return Y may read
    _subscribe(app, people["b_editor"], receiver["url"] + "?b")  # another council
    name = _submit(app, world)
    run_worker("default")

    assert len(receiver["got"]) == 1, [g["headers"].get("x-lgdp-event") for g in receiver["got"]]
    sent = receiver["got"][0]
    assert webhooks.verify(mine["secret"], sent["body"], sent["headers"]["x-lgdp-signature"])
    event = json.loads(sent["body"])
    assert event["type"] == "submission.submitted" and event["subject"]["name"] == name
    assert sent["headers"]["idempotency-key"] == event["id"]
    assert event["data"]["period"] == "2023-24"
    delivered = api(app, "lgdp_delivery_list", headers=people["x_editor"]["headers"], id=mine["id"])["result"]
    assert [d["status"] for d in delivered] == ["delivered"]


def test_retries_on_500_then_the_dead_letter_list(app, receiver, live_worker, run_worker):
    world = make_world()
    people = world["people"]
    flaky = _subscribe(app, people["x_editor"], receiver["url"], event_types=["submission.submitted"])
    receiver["answers"].extend([500, 503])
    _submit(app, world)
    run_worker("default")
    [first] = api(app, "lgdp_delivery_list", headers=people["x_editor"]["headers"], id=flaky["id"])["result"]
    assert first["status"] == "pending" and first["attempts"] == 1 and first["last_status"] == 500
    retry_at = datetime.datetime.fromisoformat(first["next_attempt_at"])
    assert retry_at > datetime.datetime.utcnow() + datetime.timedelta(seconds=20)  # backed off

    for expected in ({"delivered": 0, "pending": 1, "dead": 0}, {"delivered": 1, "pending": 0, "dead": 0}):
        _due_now()
        assert api(app, "lgdp_delivery_run", headers=people["coordinator"]["headers"])["result"] == expected
    assert len(receiver["got"]) == 3
    keys = {g["headers"]["idempotency-key"] for g in receiver["got"]}
    assert len(keys) == 1, "every retry carries the same idempotency key"

    # a receiver that never answers well: dead-lettered after the last attempt
    dead = _subscribe(app, people["r_editor"], receiver["url"] + "?dead", event_types=["submission.accepted"])
    receiver["answers"].extend([500] * webhooks.MAX_ATTEMPTS)
    transition(app, people["x_editor"], "council-tax-collection--aberdeen-city--2023-24", "accept")
    run_worker("default")
    for _ in range(webhooks.MAX_ATTEMPTS - 1):
        _due_now()
        api(app, "lgdp_delivery_run", headers=people["coordinator"]["headers"])
    letters = app.post("/api/3/action/lgdp_delivery_list", headers=people["r_editor"]["headers"],
                       json={"id": dead["id"], "status": "dead"}).json["result"]
    assert len(letters) == 1 and letters[0]["attempts"] == webhooks.MAX_ATTEMPTS
    assert letters[0]["event_type"] == "submission.accepted" and "500" in letters[0]["last_error"]
    # nobody else reads that list
    api(app, "lgdp_delivery_list", headers=people["x_editor"]["headers"], id=dead["id"], status=404)


def test_the_feed_shows_each_reader_only_what_they_may_see(app, live_worker):
    world = make_world()
    people = world["people"]
    _submit(app, world)
    api(app, "lgdp_return_transition", headers=people["coordinator"]["headers"], id="council-tax-collection",
        to="under_review", reason="Five-yearly review")

    def types(who):
        resp = app.get("/return/council-tax-collection/events.json", headers=who["headers"])
        return [e["type"] for e in resp.json["events"]]

    assert types(people["x_member"]) == ["review.due", "submission.submitted"]
    assert types(people["a_member"]) == ["review.due", "submission.submitted"]
    assert types(people["y_editor"]) == ["review.due"]
    assert types(people["anonymous"]) == ["review.due"]
    atom = app.get("/return/council-tax-collection/events.atom", headers=people["x_member"]["headers"])
    assert atom.content_type.startswith("application/atom+xml") and "submission.submitted" in atom.get_data(as_text=True)


def test_bad_subscriptions_are_refused(app):
    world = make_world()
    editor = world["people"]["x_editor"]
    bad = api(app, "lgdp_subscription_create", headers=editor["headers"], status=409, channel="webhook",
              url="ftp://example.org", event_types=["submission.eaten"])["error"]
    assert "https://" in bad["url"][0] and "submission.eaten" in bad["event_types"][0]
    api(app, "lgdp_subscription_create", status=403, channel="email")
    api(app, "lgdp_subscription_create", headers=editor["headers"], status=403, channel="webhook",
        url="https://hooks.example.org/x", organization="aberdeen-city")


@pytest.fixture
def smtp_server():
    """A mail server on loopback that keeps what it is sent."""
    import socketserver
    import threading

    inbox: list[dict] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            self.wfile.write(b"220 test ESMTP\r\n")
            mail: dict = {"to": [], "data": b""}
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                cmd = line.strip().upper()
                if cmd.startswith(b"EHLO") or cmd.startswith(b"HELO"):
                    self.wfile.write(b"250 ok\r\n")
                elif cmd.startswith(b"RCPT TO"):
                    mail["to"].append(line.split(b":", 1)[1].strip(b" <>\r\n").decode())
                    self.wfile.write(b"250 ok\r\n")
                elif cmd == b"DATA":
                    self.wfile.write(b"354 go\r\n")
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        mail["data"] += chunk
                    inbox.append(dict(mail))
                    mail = {"to": [], "data": b""}
                    self.wfile.write(b"250 ok\r\n")
                elif cmd == b"QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 ok\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield {"port": server.server_address[1], "inbox": inbox}
    server.shutdown()


def test_reminders_go_to_the_councils_uploaders_before_and_after_the_due_date(app, ckan_config, monkeypatch, smtp_server):
    import email

    from tests.conftest import ckan_cli

    world = make_world()
    people = world["people"]
    for who in ("a_editor", "a_admin", "a_member", "b_editor"):
        model.User.get(people[who]["name"]).email = f"{people[who]['name']}@council.example"
    model.repo.commit()
    api(app, "lgdp_submission_create", headers=people["a_editor"]["headers"], data_return="council-tax-collection",
        council="aberdeen-city", period="2023-24")  # due 2024-04-30

    dry = ckan_cli("lgdp", "remind", "--dry-run", "--today", "2024-04-23")
    assert dry.returncode == 0 and "would remind aberdeen-city" in dry.stdout and "(due 2024-04-30)" in dry.stdout
    assert "no reminders today" in ckan_cli("lgdp", "remind", "--dry-run", "--today", "2024-04-24").stdout

    monkeypatch.setitem(ckan_config, "smtp.server", f"127.0.0.1:{smtp_server['port']}")
    monkeypatch.setitem(ckan_config, "smtp.mail_from", "platform@lgdp.example")
    api(app, "lgdp_reminder_run", headers=people["a_editor"]["headers"], status=403, today="2024-05-01")
    result = api(app, "lgdp_reminder_run", headers=people["coordinator"]["headers"], today="2024-05-01")["result"]
    [entry] = result["reminders"]
    assert entry["items"][0]["kind"] == "late" and entry["sent"] == 2 and entry["error"] is None
    recipients = sorted(r for m in smtp_server["inbox"] for r in m["to"])
    assert recipients == sorted(f"{people[w]['name']}@council.example" for w in ("a_editor", "a_admin"))
    message = email.message_from_bytes(smtp_server["inbox"][0]["data"])
    assert "overdue" in message["Subject"].lower()
