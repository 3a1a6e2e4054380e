"""A real webhook receiver for the tests: an HTTP server on loopback that checks
every delivery's Standard Webhooks signature with the ``standardwebhooks``
library, records what it accepted, and can be taken down and brought back on
the same port."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Delivery:
    msg_id: str
    payload: dict[str, Any]
    received: float


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops concurrent connects (1 s SYN retries)


@dataclass
class Receiver:
    """Verifies with *secret* (set once the endpoint is registered)."""

    port: int
    secret: str | None = None
    accepted: list[Delivery] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    status: int = 204  # what a verified delivery is answered with
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _open: set[socket.socket] = field(default_factory=set)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver._open.add(self.connection)

            def finish(self) -> None:
                super().finish()
                with receiver._lock:
                    receiver._open.discard(self.connection)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    assert receiver.secret is not None
                    payload = Webhook(receiver.secret).verify(body, headers)
                except (WebhookVerificationError, AssertionError) as exc:
                    with receiver._lock:
                        receiver.rejected.append(str(exc))
                    self.send_response(400)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                status = receiver.status
                if 200 <= status < 300:
                    with receiver._lock:
                        receiver.accepted.append(
                            Delivery(headers["webhook-id"], payload, time.monotonic())
                        )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: connections are refused until :meth:`start` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:  # kept-alive connections go down too, as in a crash
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return [d.payload for d in self.accepted]

    def unique(self) -> dict[str, Delivery]:
        """Accepted deliveries by webhook-id (repeats are allowed: at-least-once)."""
        with self._lock:
            return {d.msg_id: d for d in self.accepted}


def dumps(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True)
