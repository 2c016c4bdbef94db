"""Client secrets cost microseconds to check, right or wrong, known client or not.

A client secret is random and made by the service, so it is stored as a keyed HMAC (the key
derived from the data key file, outside the database), not a slow password hash: a stranger
sending secrets at POST /oauth/token must not make the server run Argon2. Clients stored
with an Argon2 hash before keep working and are moved to the keyed hash on their next success.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from service.auth.models import ApiClient
from service.context import ServiceContext
from tests.support import writer_session
from tests.support.tokens import form_token, register


def stored_hash(ctx: ServiceContext, client_id: str) -> str:
    with ctx.db.reader() as session:
        return session.execute(
            select(ApiClient.secret_hash).where(ApiClient.client_id == client_id)  # type: ignore[arg-type]
        ).scalar_one()


# Argon2 at its lowest cost: a hash carries its parameters, and the service's check reads them
# from it, so the test runs in milliseconds what the default parameters make take a second.
CHEAP_ARGON2 = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def store_legacy_hash(ctx: ServiceContext, client_id: str, secret: str) -> None:
    """Store the client's secret as the service did before: an Argon2 hash."""
    with writer_session(ctx.db) as session:
        session.execute(
            update(ApiClient)
            .where(ApiClient.client_id == client_id)  # type: ignore[arg-type]
            .values(secret_hash=CHEAP_ARGON2.hash(secret))
        )
        session.commit()


@pytest.fixture
def argon2_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every Argon2 verification from now on, by the hash it checked against."""
    runs: list[str] = []
    verify: Callable[..., Any] = PasswordHasher.verify

    def counting(self: PasswordHasher, stored: str | bytes, secret: str | bytes) -> Any:
        runs.append(str(stored))
        return verify(self, stored, secret)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    yield runs


def test_wrong_secrets_and_unknown_ids_never_run_argon2(
    ctx: ServiceContext, http: TestClient, argon2_runs: list[str]
) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    assert form_token(http, cid, "not-the-secret").status_code == 401
    assert form_token(http, "lpsk-0000000000000000", "a-guess").status_code == 401
    assert form_token(http, "nobody-at-all", secret).status_code == 401
    assert form_token(http, cid, secret).status_code == 200
    assert argon2_runs == []


def test_the_keyed_hash_is_bound_to_its_client(ctx: ServiceContext, http: TestClient) -> None:
    """Copying one client's stored hash onto another (a database write, no key) does not
    let the first client's secret act as the second."""
    mine, my_secret = register(ctx, "LPSK", "referrals:read")
    theirs, _ = register(ctx, "KEMENSOS", "referrals:read")
    with writer_session(ctx.db) as session:
        session.execute(
            update(ApiClient)
            .where(ApiClient.client_id == theirs)  # type: ignore[arg-type]
            .values(secret_hash=stored_hash(ctx, mine))
        )
        session.commit()
    assert form_token(http, theirs, my_secret).status_code == 401
    assert form_token(http, mine, my_secret).status_code == 200


def test_a_legacy_argon2_hash_is_replaced_on_the_first_success(
    ctx: ServiceContext, http: TestClient, argon2_runs: list[str]
) -> None:
    cid, secret = register(ctx, "KEMENHAM", "referrals:read")
    store_legacy_hash(ctx, cid, secret)

    # A wrong secret is checked the slow way and changes nothing.
    assert form_token(http, cid, "not-the-secret").status_code == 401
    assert stored_hash(ctx, cid).startswith("$argon2")
    assert len(argon2_runs) == 1

    assert form_token(http, cid, secret).status_code == 200
    assert len(argon2_runs) == 2
    upgraded = stored_hash(ctx, cid)
    assert upgraded.startswith("hmac-sha256$")
    assert secret not in upgraded

    # From now on the client is checked in microseconds, and only its secret works.
    assert form_token(http, cid, secret).status_code == 200
    assert form_token(http, cid, "not-the-secret").status_code == 401
    assert len(argon2_runs) == 2
