"""Webhook signing and delivery attempts against a local receiver (no
database: the subscription store is tested with the publish/subscribe
actions)."""
from __future__ import annotations

import pytest

from ckanext.lgdp.connectors import webhooks


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
