"""A real HTTP server for tests: uvicorn in a background thread, on a free loopback port.

Unlike the in-process TestClient, requests arrive on real sockets and are handled
concurrently by the server's worker threads, so races between requests are real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from service.app import create_app
from service.context import ServiceContext


@dataclass(frozen=True)
class LiveServer:
    """A running server: where it listens."""

    base_url: str

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this server, with a bearer token if given."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", 60.0)
        return httpx.Client(base_url=self.base_url, headers=headers, **kwargs)


@contextmanager
def live_server(ctx: ServiceContext, *, startup_timeout: float = 15.0) -> Iterator[LiveServer]:
    """Serve `create_app(ctx=ctx)` with uvicorn on 127.0.0.1 until the block ends.

    The lifespan is off: the context (and its database engine) belongs to the caller,
    who may go on using it after the server stops.
    """
    app = create_app(ctx=ctx)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        access_log=False,
        # Many simultaneous connections are the point of these tests.
        backlog=512,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run, name="rujukan-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if errors or not thread.is_alive():
            raise RuntimeError(f"the live server did not start: {errors!r}")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the live server did not start in time")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LiveServer(base_url=f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        if thread.is_alive():  # pragma: no cover - only when shutdown hangs
            server.force_exit = True
            thread.join(timeout=5)
