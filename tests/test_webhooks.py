"""Webhook signing and delivery attempts against a local receiver (no
database: the subscription store is tested with the publish/subscribe
actions)."""
from __future__ import annotations

import http.server
import threading
import time

import pytest

from ckanext.lgdp.connectors import webhooks


@pytest.fixture
def receiver():
    got: list[dict] = []
    answers: list[int] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            status = answers.pop(0) if answers else 200
            if status == 0:  # hang past the sender's timeout
                time.sleep(2)
                status = 200
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{server.server_address[1]}/hook", "got": got, "answers": answers}
    server.shutdown()


def test_a_signature_verifies_and_a_changed_body_or_stale_time_does_not():
    body = webhooks.body_of({"event": "submission.accepted", "submission": "x"})
    header = webhooks.sign("s3cret", body, timestamp=1_800_000_000)
    assert webhooks.verify("s3cret", body, header, now=1_800_000_010)
    assert not webhooks.verify("other", body, header, now=1_800_000_010)
    assert not webhooks.verify("s3cret", body + b" ", header, now=1_800_000_010)
    assert not webhooks.verify("s3cret", body, header, now=1_800_000_000 + webhooks.TOLERANCE + 1)
    assert not webhooks.verify("s3cret", body, "garbage")


def test_backoff_doubles_to_a_ceiling():
    delays = [webhooks.backoff(n) for n in range(1, 12)]
    assert delays[:4] == [30, 60, 120, 240]
    assert delays == sorted(delays) and max(delays) == webhooks.MAX_DELAY


def test_a_delivery_is_signed_keyed_and_judged_by_the_answer(receiver):
    payload = {"event": "submission.accepted", "return": "council-tax-collection"}
    ok = webhooks.post(receiver["url"], "submission.accepted", "evt-1", payload, "s3cret")
    assert ok.ok and ok.status == 200
    sent = receiver["got"][0]
    assert sent["headers"]["x-lgdp-event"] == "submission.accepted"
    assert sent["headers"]["idempotency-key"] == "evt-1"
    assert webhooks.verify("s3cret", sent["body"], sent["headers"]["x-lgdp-signature"])

    receiver["answers"].append(500)
    failed = webhooks.post(receiver["url"], "submission.accepted", "evt-2", payload, "s3cret")
    assert not failed.ok and failed.status == 500 and "500" in failed.error

    receiver["answers"].append(0)
    slow = webhooks.post(receiver["url"], "submission.accepted", "evt-3", payload, "s3cret", timeout=0.5)
    assert not slow.ok and slow.status is None and "no answer" in slow.error

    refused = webhooks.post("http://127.0.0.1:9/hook", "submission.accepted", "evt-4", payload, "s3cret", timeout=2)
    assert not refused.ok and "could not reach" in refused.error
