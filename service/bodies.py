"""Request bodies: how large one may be, how long it may take to arrive, and how many bytes of
bodies one process holds at once.

Uvicorn buffers little of a body (it stops reading a connection at 64 KiB until the app asks
for more) and has no time limit for it; the app reads a whole body into memory before it
validates it. So a client that declares a large body, sends most of it and stalls would hold
that memory for as long as it liked. Here a body must arrive in full within
`body_timeout_seconds` (else 408), and the bodies being held by a process's requests may not
add up to more than `body_budget_bytes` (beyond it, 503 with Retry-After, before reading).
"""

from __future__ import annotations

import threading
import time

import anyio
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from service.errors import LocalizedHTTPException
from service.i18n import msg

MAX_BODY_BYTES = 1024 * 1024
# Seconds a client is told to wait before it sends a body again when the budget is spent.
RETRY_AFTER_SECONDS = 1


class BodyBudget:
    """Bytes of request bodies held by a process's requests in flight."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        # Several event loops can share one app (a test client runs its own).
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Reserve `size` bytes if the budget has them."""
        with self._lock:
            if self.held + size > self.limit:
                return False
            self.held += size
            return True

    def give(self, size: int) -> None:
        """Return bytes reserved with `take`."""
        with self._lock:
            self.held -= size


def too_large() -> HTTPException:
    """413: over MAX_BODY_BYTES (by Content-Length, or as the chunks arrive)."""
    return LocalizedHTTPException(
        413, msg("Request bodies are limited to {limit} bytes.", limit=MAX_BODY_BYTES)
    )


def too_slow(timeout: float) -> HTTPException:
    """408: the body did not arrive in time; the connection is closed after the answer."""
    return LocalizedHTTPException(
        408,
        msg("The request body did not arrive within {seconds} seconds.", seconds=f"{timeout:g}"),
        headers={"Connection": "close"},
    )


def budget_spent() -> HTTPException:
    """503: the process holds as many bytes of request bodies as it may; retry shortly."""
    return LocalizedHTTPException(
        503,
        msg("The service is receiving too many request bodies at once; retry shortly."),
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), "Connection": "close"},
    )


class BodyGuard:
    """The receive channel of one request, with its body's size, time and budget limits.

    Make it with `declared` (the Content-Length, already checked against MAX_BODY_BYTES) once
    `budget.take(declared)` succeeded; call `release` when the request is over.
    """

    def __init__(
        self, receive: Receive, budget: BodyBudget, timeout: float, declared: int
    ) -> None:
        self._receive = receive
        self._budget = budget
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout
        self.reserved = declared
        self._received = 0
        self._complete = False

    async def receive(self) -> Message:
        """The next message, within the request's deadline until the body is complete.

        Raises an HTTPException (a problem document in the error handler; FastAPI lets it
        through its body parsing) for a body too large, too slow or over the budget.
        """
        if self._complete:
            # After the body only a disconnect can come, which the app may await freely.
            return await self._receive()
        try:
            with anyio.fail_after(max(self._deadline - time.monotonic(), 0)):
                message = await self._receive()
        except TimeoutError:
            raise too_slow(self._timeout) from None
        if message["type"] != "http.request":
            self._complete = True
            return message
        self._received += len(message.get("body", b""))
        if self._received > MAX_BODY_BYTES:
            raise too_large()
        if self._received > self.reserved:
            # A body sent in chunks, without Content-Length: reserved as it arrives.
            more = self._received - self.reserved
            if not self._budget.take(more):
                raise budget_spent()
            self.reserved += more
        if not message.get("more_body", False):
            self._complete = True
        return message

    def release(self) -> None:
        """Give the reserved bytes back to the budget."""
        self._budget.give(self.reserved)
        self.reserved = 0
