"""Claims of access tokens this process has already verified in full, kept until they expire.

Verifying an ES256 signature costs more than the rest of a small read. A client sends the
same token for up to its 15 minutes, so each worker remembers the claims of tokens it has
verified, keyed by the SHA-256 of the token (the token itself is not kept), bounded in
size, and never past the token's `exp`. A hit also requires the signing key (`kid`) to be
still in the key file, so removing a key ends its tokens here as it does on a full check,
and a cached token is held to the revocation list like any other
(`service.auth.revocation`): revoking its client or rotating its secret ends it within
seconds.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Verified:
    """What a full verification established about one token."""

    claims: dict[str, Any]
    kid: str
    expires: float


class VerifiedTokenCache:
    """A bounded, thread-safe map from token hash to its verified claims (LRU)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[bytes, Verified] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8")).digest()

    def get(self, token: str, now: float | None = None) -> Verified | None:
        """The verified claims of this token, unless unknown or expired."""
        key = self._key(token)
        now = time.time() if now is None else now
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry.expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, token: str, claims: dict[str, Any], kid: str) -> None:
        """Remember a token that has just passed full verification."""
        expires = claims.get("exp")
        if not isinstance(expires, int | float):
            return
        key = self._key(token)
        with self._lock:
            self._entries[key] = Verified(claims=claims, kid=kid, expires=float(expires))
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
