"""A webhook receiver on loopback (standard library only), for the tests and the benchmark.

It records every request (event id, type, body, signature check, arrival time) and answers with
the next scripted status (``answers``), else ``status``. ``gate`` holds answers until it is set (a
slow receiver); ``stop`` and ``start`` on the same port make it go down and come back.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from scheduler.services.webhooks import (
    EVENT_ID_HEADER,
    EVENT_TYPE_HEADER,
    SIGNATURE_HEADER,
    verify_signature,
)


@dataclass(frozen=True)
class Received:
    event_id: str
    event_type: str
    body: bytes
    signature: str
    valid: bool
    answered: int
    at: float  # time.time() on arrival

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class Receiver:
    def __init__(self, secret: str | None = None, *, host: str = "127.0.0.1") -> None:
        self.secret = secret
        self.host = host
        self.port = 0
        self.status = 200
        self.answers: deque[int] = deque()
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Event()
        self.received: list[Received] = []
        self.clock = time.time  # what "now" is when a signature's timestamp is checked
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.arrived.set()
                receiver.gate.wait(timeout=600)
                with receiver._lock:
                    answer = receiver.answers.popleft() if receiver.answers else receiver.status
                    header = self.headers.get(SIGNATURE_HEADER, "")
                    valid = receiver.secret is not None and verify_signature(
                        receiver.secret, header, body, now=receiver.clock()
                    )
                    receiver.received.append(
                        Received(
                            event_id=self.headers.get(EVENT_ID_HEADER, ""),
                            event_type=self.headers.get(EVENT_TYPE_HEADER, ""),
                            body=body,
                            signature=header,
                            valid=valid,
                            answered=answer,
                            at=time.time(),
                        )
                    )
                self.send_response(answer)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: connections to the port are refused until ``start`` is called again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def accepted(self) -> list[Received]:
        """Requests answered with a 2xx, in arrival order."""
        with self._lock:
            return [r for r in self.received if 200 <= r.answered < 300]
