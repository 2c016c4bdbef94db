"""Signing keys: the published JWKS, the key file and rotation (CONTRACT §3)."""

from __future__ import annotations

import datetime as dt
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import service.context
from service.app import create_app
from service.auth import clients
from service.auth.keys import load_keyset, rotate_keyset
from service.context import ServiceContext
from tests.auth import jwt_parts, verify_es256_with_jwk
from tests.conftest import make_settings
from tests.support import Party, writer_session

PRIVATE_JWK_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def assert_public_ec_jwk(jwk: dict[str, str]) -> None:
    assert jwk["kty"] == "EC"
    assert jwk["alg"] == "ES256"
    assert jwk["use"] == "sig"
    assert jwk["crv"] == "P-256"
    assert jwk["kid"] and jwk["x"] and jwk["y"]
    assert not PRIVATE_JWK_MEMBERS & set(jwk)


def kids(http: TestClient) -> list[str]:
    response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    return [k["kid"] for k in response.json()["keys"]]


# --- the shared service's JWKS --------------------------------------------------------


def test_jwks_publishes_the_current_public_key(ctx: ServiceContext, http: TestClient) -> None:
    response = http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    keys = response.json()["keys"]
    assert ctx.keyset.current.kid in [k["kid"] for k in keys]
    for jwk in keys:
        assert_public_ec_jwk(jwk)
    assert len({k["kid"] for k in keys}) == len(keys)
    assert "PRIVATE KEY" not in response.text


def test_jwks_needs_no_token(http: TestClient) -> None:
    assert http.get("/.well-known/jwks.json", headers={"Authorization": "Bearer x"}).status_code \
        == 200


def test_an_integrator_can_verify_a_token_with_the_jwks(
    http: TestClient, parties: dict[str, Party]
) -> None:
    token = parties["LPSK"].token
    header, _ = jwt_parts(token)
    jwks = {k["kid"]: k for k in http.get("/.well-known/jwks.json").json()["keys"]}
    assert header["kid"] in jwks
    assert verify_es256_with_jwk(token, jwks[header["kid"]])
    # ... and a modified token does not verify against it.
    head, payload, signature = token.split(".")
    assert not verify_es256_with_jwk(f"{head}.{payload[:-2]}AA.{signature}", jwks[header["kid"]])


# --- rotation, on a key file of its own -------------------------------------------------


@dataclass
class Service:
    ctx: ServiceContext
    http: TestClient
    key_file: Path
    client_id: str
    secret: str

    def token(self) -> str:
        response = self.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": self.client_id,
                  "client_secret": self.secret},
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]  # type: ignore[no-any-return]

    def status_with(self, token: str) -> int:
        return self.http.get(
            "/v1/agencies", headers={"Authorization": f"Bearer {token}"}
        ).status_code


@pytest.fixture
def own_keys(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Service]:
    """A service on the session database with a key directory of its own, re-reading its
    key file on every use."""
    monkeypatch.setattr(service.context, "KEY_RELOAD_SECONDS", 0)
    settings = make_settings(database_url, tmp_path / "keys")
    ctx = ServiceContext.build(settings)
    with writer_session(ctx.db) as session:
        client, secret = clients.create_client(
            session, agency="LPSK", name="rotation test", scope="referrals:read",
            keyring=ctx.keyring,
        )
        session.commit()
    with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as http:
        yield Service(ctx, http, settings.signing_key_path, client.client_id, secret)
    ctx.db.dispose()


def age_key_file(path: Path, by: dt.timedelta) -> None:
    """Move every key's `Created:` time back, as if the keys were that much older."""

    def older(match: re.Match[str]) -> str:
        created = dt.datetime.fromisoformat(match.group(1))
        return f"Created: {(created - by).isoformat()}"

    text = path.read_text(encoding="ascii")
    aged = re.sub(r"^Created: (.+)$", older, text, flags=re.M)
    assert aged != text
    path.write_text(aged, encoding="ascii")


def test_key_file_is_private(own_keys: Service) -> None:
    assert stat.S_IMODE(own_keys.key_file.stat().st_mode) == 0o600
    rotate_keyset(own_keys.key_file, dt.timedelta(hours=1))
    assert stat.S_IMODE(own_keys.key_file.stat().st_mode) == 0o600


def test_rotation_publishes_both_keys_and_signs_with_the_new_one(own_keys: Service) -> None:
    old_kid = own_keys.ctx.keyset.current.kid
    assert kids(own_keys.http) == [old_kid]
    old_token = own_keys.token()
    assert jwt_parts(old_token)[0]["kid"] == old_kid

    added, retired = rotate_keyset(own_keys.key_file, dt.timedelta(hours=1))
    assert retired == []
    assert added.kid != old_kid

    published = kids(own_keys.http)
    assert set(published) == {old_kid, added.kid}
    new_token = own_keys.token()
    assert jwt_parts(new_token)[0]["kid"] == added.kid
    assert own_keys.status_with(old_token) == 200
    assert own_keys.status_with(new_token) == 200

    jwks = {k["kid"]: k for k in own_keys.http.get("/.well-known/jwks.json").json()["keys"]}
    for jwk in jwks.values():
        assert_public_ec_jwk(jwk)
    assert verify_es256_with_jwk(old_token, jwks[old_kid])
    assert verify_es256_with_jwk(new_token, jwks[added.kid])


def test_rotating_again_before_the_ttl_keeps_every_key(own_keys: Service) -> None:
    first = own_keys.ctx.keyset.current.kid
    second, _ = rotate_keyset(own_keys.key_file, dt.timedelta(hours=1))
    third, retired = rotate_keyset(own_keys.key_file, dt.timedelta(hours=1))
    assert retired == []
    assert set(kids(own_keys.http)) == {first, second.kid, third.kid}
    assert jwt_parts(own_keys.token())[0]["kid"] == third.kid


def test_rotation_after_the_ttl_retires_the_old_key(own_keys: Service) -> None:
    ttl = dt.timedelta(seconds=own_keys.ctx.settings.token_ttl_seconds)
    old_kid = own_keys.ctx.keyset.current.kid
    old_token = own_keys.token()
    middle, _ = rotate_keyset(own_keys.key_file, ttl)
    middle_token = own_keys.token()
    assert jwt_parts(middle_token)[0]["kid"] == middle.kid

    # Both keys are now two token lifetimes older than they were.
    age_key_file(own_keys.key_file, 2 * ttl + dt.timedelta(minutes=5))
    newest, retired = rotate_keyset(own_keys.key_file, ttl)

    assert retired == [old_kid]
    assert [k.kid for k in load_keyset(own_keys.key_file).keys] == [middle.kid, newest.kid]
    published = kids(own_keys.http)
    assert old_kid not in published
    assert set(published) == {middle.kid, newest.kid}
    assert own_keys.status_with(old_token) == 401
    # The key that signed until now stays until its tokens have expired.
    assert own_keys.status_with(middle_token) == 200
    assert jwt_parts(own_keys.token())[0]["kid"] == newest.kid
    assert stat.S_IMODE(own_keys.key_file.stat().st_mode) == 0o600


def test_a_fresh_context_reads_the_rotated_file(own_keys: Service) -> None:
    """Without the reload shortcut: a new process (context) sees the rotated keys."""
    added, _ = rotate_keyset(own_keys.key_file, dt.timedelta(hours=1))
    fresh = ServiceContext.build(own_keys.ctx.settings)
    try:
        assert fresh.keyset.current.kid == added.kid
        assert len(fresh.keyset.keys) == 2
    finally:
        fresh.db.dispose()


def test_a_running_service_picks_up_a_rotation_within_seconds(
    database_url: str, tmp_path: Path
) -> None:
    """`rujukan keys rotate` while serving: the default re-read interval applies."""
    ctx = ServiceContext.build(make_settings(database_url, tmp_path / "keys"))
    try:
        with TestClient(create_app(ctx=ctx)) as http:
            before = kids(http)
            added, _ = rotate_keyset(ctx.settings.signing_key_path, dt.timedelta(hours=1))
            deadline = time.monotonic() + service.context.KEY_RELOAD_SECONDS + 3
            while added.kid not in kids(http) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert set(kids(http)) == {*before, added.kid}
    finally:
        ctx.db.dispose()
