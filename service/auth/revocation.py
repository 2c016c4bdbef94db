"""Tokens of revoked clients, and tokens issued before a secret rotation, stop counting.

An access token is checked without the database (its signature, and the verified-token
cache), so on its own it would stay valid until it expires, up to an hour. Each process
keeps instead the short list of clients whose tokens were cut off (client id -> the issue
time before which they no longer count: infinite once revoked, the time of the new secret
after a rotation), and reads it again from the database at most every REFRESH_SECONDS:
one small query per process every two seconds, never one per request. A revocation or a
rotation therefore ends the tokens already issued within REFRESH_SECONDS (plus the time of
one query). A token's `iat` has whole seconds, so tokens issued in the second of a rotation
itself, just before it, still count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("rujukan.auth")

REFRESH_SECONDS = 2.0


class RevokedClients:
    """The cut-off issue times of this service's clients, re-read every REFRESH_SECONDS."""

    def __init__(
        self,
        read: Callable[[], dict[str, float]],
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._cutoffs: dict[str, float] = {}
        self._due = float("-inf")
        self._lock = threading.Lock()

    def due(self) -> bool:
        """Whether the list is old enough to be read again (cheap: no I/O)."""
        return self._clock() >= self._due

    def refresh(self) -> None:
        """Read the list again if it is due (blocking: a database query).

        One caller reads while the others go on with the list they have; a failed read keeps
        the old list and is tried again after the interval.
        """
        if not self._lock.acquire(blocking=False):
            return
        try:
            if not self.due():
                return
            self._due = self._clock() + self._refresh_seconds
            try:
                self._cutoffs = self._read()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not fail requests
                log.warning(
                    "could not read the revoked clients; using the last list",
                    extra={"error_type": type(exc).__name__},
                )
        finally:
            self._lock.release()

    def refuses(self, subject: str, issued_at: Any) -> bool:
        """Whether a token of this client, issued at `issued_at`, no longer counts."""
        cutoff = self._cutoffs.get(subject)
        if cutoff is None:
            return False
        return not isinstance(issued_at, int | float) or issued_at < cutoff
