"""A webhook receiver on loopback that can be taken down (its port closed:
connections are refused) and brought up again on the same port. It records
every delivery it answers 2xx, by ``Idempotency-Key``, and checks the
signature of each with the subscription's secret."""
from __future__ import annotations

import http.server
import socket
import threading
from collections import Counter
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.keys: Counter = Counter()
        self.bad_signatures = 0
        self.secret = ""
        self.server: http.server.ThreadingHTTPServer | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> None:
        if self.server is not None:
            return
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                from ckanext.lgdp.connectors.webhooks import verify

                ok = not receiver.secret or verify(receiver.secret, body, self.headers.get("X-LGDP-Signature", ""))
                with receiver.lock:
                    if ok:
                        receiver.keys[self.headers.get("Idempotency-Key", "")] += 1
                    else:
                        receiver.bad_signatures += 1
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is None:
            return
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def received(self) -> Counter:
        with self.lock:
            return Counter(self.keys)
