"""A real webhook receiver for tests: an HTTP server on a free loopback port, in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Records every POST and answers with `status(n)` for the n-th request (from 0)."""

    def __init__(self, status: Callable[[int], int] = lambda n: 204, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    number = len(receiver.requests)
                    receiver.requests.append(
                        Received(
                            {k.lower(): v for k, v in self.headers.items()}, body, time.time()
                        )
                    )
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status(number))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests once at least `count` have arrived (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} of {count} webhooks arrived")
            time.sleep(0.02)
        return list(self.requests)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
