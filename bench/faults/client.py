"""A careful API client, as a council system or an agency's should be.

- It retries on a connection error and on 500, 502, 503 and 504, with
  exponential backoff and jitter (honouring Retry-After, up to the backoff
  cap), until its deadline.
- One logical upload carries one ``Idempotency-Key`` header, the same on
  every retry, and the same bytes.
- A transition retried after an answer it never got may find the step
  already done: a 409 on a retry whose submission already is in the target
  state (or past it) counts as done.

Every HTTP request and every answer (by status, 0 for no answer) is
counted; answers that show a traceback or a debugger page are counted too.
"""
from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

RETRY_STATUSES = (0, 500, 502, 503, 504)
LEAKS = ("Traceback (most recent call last)", "Werkzeug Debugger", "werkzeug.debug", "__debugger__")


@dataclass
class Tally:
    """Requests sent and answers received, thread-safe."""

    requests: int = 0
    answers: Counter = field(default_factory=Counter)
    leaks: int = 0
    samples: list[str] = field(default_factory=list)
    sampled: Counter = field(default_factory=Counter)
    # steps a 503 refused ("nothing was changed") that were done all the same
    written_though_refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int, text: str) -> None:
        with self.lock:
            self.requests += 1
            self.answers[status] += 1
            if any(mark in text for mark in LEAKS):
                self.leaks += 1
            if status != 200 and self.sampled[status] < 3:
                self.sampled[status] += 1
                self.samples.append(f"{status}: {text[:200]}")

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "answers": {str(k): v for k, v in sorted(self.answers.items())},
                "leaks": self.leaks}


@dataclass
class Outcome:
    status: int
    body: dict[str, Any] | None
    attempts: int
    error: str = ""
    history: list[int] = field(default_factory=list)  # the status of every attempt, 0 for no answer


class Client:
    def __init__(self, base: str, tally: Tally, deadline_s: float = 120.0, max_backoff: float = 8.0) -> None:
        self.base = base
        self.tally = tally
        self.deadline_s = deadline_s
        self.max_backoff = max_backoff
        self.local = threading.local()

    def _session(self) -> requests.Session:
        if not hasattr(self.local, "s"):
            self.local.s = requests.Session()
        return self.local.s

    def _send(self, action: str, token: str, headers: dict[str, str] | None = None,
              **kw: Any) -> tuple[int, Any, str, dict]:
        try:
            r = self._session().post(f"{self.base}/api/3/action/{action}", timeout=90,
                                     headers={"Authorization": token, **(headers or {})}, **kw)
        except requests.RequestException as e:
            self.local.s = requests.Session()  # a fresh connection next time
            self.tally.record(0, repr(e))
            return 0, None, repr(e)[:300], {}
        text = r.text
        self.tally.record(r.status_code, text)
        try:
            body = r.json()
        except ValueError:
            body = None
        return r.status_code, body, text[:300], dict(r.headers)

    def _pause(self, attempt: int, headers: dict[str, str]) -> float:
        wait = min(self.max_backoff, 0.5 * 2 ** (attempt - 1))
        after = headers.get("Retry-After", "")
        if after.isdigit():
            wait = max(wait, min(self.max_backoff, float(after)))
        return wait * random.uniform(0.7, 1.3)

    def call(self, action: str, token: str, headers: dict[str, str] | None = None,
             done_already: Callable[[], bool] | None = None, **kw: Any) -> Outcome:
        """POST one logical request, retried the careful way."""
        deadline = time.monotonic() + self.deadline_s
        attempt = 0
        before: list[int] = []
        while True:
            attempt += 1
            status, body, text, got = self._send(action, token, headers, **kw)
            if status == 409 and attempt > 1 and done_already is not None and done_already():
                if before and all(s == 503 for s in before):
                    with self.tally.lock:
                        self.tally.written_though_refused.append(
                            f"{action} {json.dumps(kw.get('json') or kw.get('data'), default=str)[:160]}: "
                            f"answered {before}, then found done")
                return Outcome(200, body, attempt, "done by an earlier attempt", [*before, status])
            before.append(status)
            if status in RETRY_STATUSES and time.monotonic() < deadline:
                time.sleep(self._pause(attempt, got))
                continue
            return Outcome(status, body, attempt, "" if status == 200 else text, before)

    def upload(self, token: str, data_return: str, council: str, period: str, filename: str,
               content: bytes) -> tuple[str, Outcome]:
        """One logical upload (multipart): its key and its outcome."""
        key = str(uuid.uuid4())

        def files() -> dict[str, Any]:
            return {"upload": (filename, content, "text/csv")}

        # requests consumes nothing of a bytes body: the same bytes each time
        outcome = self.call("lgdp_submission_upload", token, headers={"Idempotency-Key": key},
                            data={"data_return": data_return, "council": council, "period": period},
                            files=files())
        return key, outcome

    def transition(self, token: str, submission: str, action: str, done_already: Callable[[], bool]) -> Outcome:
        return self.call("lgdp_submission_transition", token, done_already=done_already,
                         json={"id": submission, "action": action})
