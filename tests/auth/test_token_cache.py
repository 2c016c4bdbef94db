"""Verified tokens are remembered per process: never past exp, never once their key is gone."""

from __future__ import annotations

import datetime as dt

import pytest

from service.auth.keys import rotate_keyset
from service.auth.token_cache import VerifiedTokenCache
from tests.support.tokens import Service, age_key_file

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

def test_a_cached_token_stops_at_its_expiry() -> None:
    cache = VerifiedTokenCache()
    cache.put("header.payload.signature", {"sub": "c", "exp": 1_000}, "k1")
    assert cache.get("header.payload.signature", now=999.0) is not None
    assert cache.get("header.payload.signature", now=1_000.0) is None
    # ... and stays gone, whatever the clock says next.
    assert cache.get("header.payload.signature", now=10.0) is None


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    cache = VerifiedTokenCache(max_entries=2)
    for name in ("a", "b"):
        cache.put(name, {"exp": 2_000}, "k1")
    assert cache.get("a", now=1.0) is not None  # "b" is now the least recently used
    cache.put("c", {"exp": 2_000}, "k1")
    assert len(cache) == 2
    assert cache.get("b", now=1.0) is None
    assert cache.get("a", now=1.0) is not None and cache.get("c", now=1.0) is not None


def test_claims_without_an_expiry_are_not_cached() -> None:
    cache = VerifiedTokenCache()
    cache.put("t", {"sub": "c"}, "k1")
    assert cache.get("t", now=1.0) is None


def test_the_cache_holds_hashes_not_tokens() -> None:
    cache = VerifiedTokenCache()
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjIn0.c2lnbmF0dXJl"
    cache.put(token, {"exp": 2_000}, "k1")
    assert all(token not in repr(key) and len(key) == 32 for key in cache._entries)


def test_a_cached_token_is_refused_once_its_key_is_retired(own_keys: Service) -> None:  # noqa: F811
    ttl = dt.timedelta(seconds=own_keys.ctx.settings.token_ttl_seconds)
    old_token = own_keys.token()
    assert own_keys.status_with(old_token) == 200
    assert own_keys.ctx.verified_tokens.get(old_token) is not None  # remembered

    rotate_keyset(own_keys.key_file, ttl)
    age_key_file(own_keys.key_file, 2 * ttl + dt.timedelta(minutes=5))
    rotate_keyset(own_keys.key_file, ttl)  # retires the key that signed old_token

    assert own_keys.status_with(old_token) == 401


def test_a_changed_token_is_verified_in_full_even_when_the_original_is_cached(
    own_keys: Service,  # noqa: F811
) -> None:
    token = own_keys.token()
    assert own_keys.status_with(token) == 200
    head, payload, signature = token.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    assert own_keys.status_with(forged) == 401
    assert own_keys.status_with(token) == 200
