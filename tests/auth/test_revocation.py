"""Revoking a client, or rotating its secret, ends the tokens it already holds within seconds.

Each process re-reads the list of cut-off clients at most every REFRESH_SECONDS (2): the tests
drive that clock instead of sleeping.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from service.auth import clients
from service.auth.revocation import REFRESH_SECONDS, RevokedClients
from service.context import ServiceContext
from tests.support import writer_session
from tests.support.tokens import form_token, register, sign_es256, valid_claims


class Clock:
    """A monotonic clock the test moves by hand, and the times the list was read."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.reads: list[float] = []

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The context's revocation list, on a clock the test drives; its reads are counted."""
    driven = Clock()

    def read() -> dict[str, float]:
        driven.reads.append(driven.now)
        return ctx.read_token_cutoffs()

    monkeypatch.setattr(ctx, "revoked_clients", RevokedClients(read, clock=driven))
    return driven


def token(http: TestClient, client_id: str, secret: str) -> str:
    response = form_token(http, client_id, secret)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]  # type: ignore[no-any-return]


def status_with(http: TestClient, access_token: str) -> int:
    return http.get("/v1/agencies", headers={"Authorization": f"Bearer {access_token}"}).status_code


def test_a_revoked_clients_tokens_stop_within_seconds(
    ctx: ServiceContext, http: TestClient, clock: Clock
) -> None:
    assert REFRESH_SECONDS <= 3, "revocation must reach every process well within 5 seconds"
    cid, secret = register(ctx, "LPSK", "referrals:read")
    used = token(http, cid, secret)  # verified once below, then served from the cache
    unused = token(http, cid, secret)  # first shown after the revocation: verified in full
    for _ in range(5):
        assert status_with(http, used) == 200
    assert len(clock.reads) == 1  # not a query per request

    with writer_session(ctx.db) as session:  # what `rujukan client revoke` does
        clients.revoke_client(session, cid)
        session.commit()
    clock.now += REFRESH_SECONDS

    assert status_with(http, used) == 401
    assert status_with(http, unused) == 401
    refused = http.get("/v1/agencies", headers={"Authorization": f"Bearer {used}"})
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "revoked" in refused.json()["detail"]


def test_a_rotated_secret_ends_the_tokens_issued_before_it(
    ctx: ServiceContext, http: TestClient, clock: Clock
) -> None:
    cid, old_secret = register(ctx, "KEMENSOS", "referrals:read")
    now = int(time.time())
    # A token issued with the old secret a few seconds before the rotation.
    before = sign_es256(
        {"alg": "ES256", "kid": ctx.keyset.current.kid, "typ": "JWT"},
        valid_claims(
            ctx, sub=cid, agency="KEMENSOS", scope="referrals:read", iat=now - 5, nbf=now - 5
        ),
        ctx.keyset.current.private_pem,
    )
    assert status_with(http, before) == 200

    with writer_session(ctx.db) as session:  # what `rujukan client rotate-secret` does
        _, new_secret = clients.rotate_secret(session, cid, keyring=ctx.keyring)
        session.commit()
    clock.now += REFRESH_SECONDS

    assert status_with(http, before) == 401
    after = token(http, cid, new_secret)
    assert status_with(http, after) == 200
    # Other clients are untouched.
    other, other_secret = register(ctx, "LPSK", "referrals:read")
    assert status_with(http, token(http, other, other_secret)) == 200
