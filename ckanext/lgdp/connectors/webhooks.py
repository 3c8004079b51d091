"""Signed webhook deliveries: the pieces that need no database.

A delivery is an HTTP POST of a JSON event with these headers:

- ``X-LGDP-Event``: the event type, e.g. ``submission.accepted``
- ``Idempotency-Key``: the event's id; a receiver that sees it twice (after a
  retry) handles it once
- ``X-LGDP-Signature``: ``t=<unix time>,v1=<hex HMAC-SHA256>`` over
  ``"<t>.<body>"`` with the subscription's secret, so a receiver can check
  that the platform sent it and that it is fresh (see ``verify``)

A delivery goes through the platform's one fetcher (ckanext.lgdp.fetch: a
public https address, no redirect followed). It succeeds on any 2xx answer;
anything else (a 5xx, a redirect, a timeout, a refused connection or
address) is retried after ``backoff(attempt)`` until
``MAX_ATTEMPTS``, after which it goes to the subscriber's dead-letter list.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from ckanext.lgdp import fetch

MAX_ATTEMPTS = 6
BASE_DELAY = 30  # seconds before the first retry
MAX_DELAY = 6 * 3600
TOLERANCE = 300  # seconds a signature stays valid for a receiver
USER_AGENT = "LGDP-Webhooks/1.0"


def body_of(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, sorted JSON in UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time() if timestamp is None else timestamp)
    mac = hmac.new(secret.encode("utf-8"), f"{t}.".encode("ascii") + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, now: float | None = None, tolerance: int = TOLERANCE) -> bool:
    """What a receiver does: the signature matches the body and is fresh."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def backoff(attempt: int) -> int:
    """Seconds to wait before retry number `attempt` (1 = the first retry):
    30 s, 1 min, 2 min, 4 min, ... doubling, at most 6 hours."""
    return min(MAX_DELAY, BASE_DELAY * 2 ** max(0, attempt - 1))


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    error: str | None
    seconds: float


def post(url: str, event_type: str, event_id: str, payload: dict[str, Any], secret: str,
         timeout: float = 10.0) -> Outcome:
    """One delivery attempt."""
    body = body_of(payload)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-LGDP-Event": event_type,
        "Idempotency-Key": event_id,
        "X-LGDP-Signature": sign(secret, body),
    }
    start = time.monotonic()
    try:
        answer = fetch.post(url, body, headers=headers, timeout=timeout)
    except fetch.FetchError as e:
        return Outcome(False, None, e.message, time.monotonic() - start)
    ok = 200 <= answer.status < 300
    return Outcome(ok, answer.status, None if ok else f"the receiver answered {answer.status}",
                   time.monotonic() - start)
