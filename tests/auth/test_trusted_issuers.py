"""Tokens from an agency's own identity provider, verified through its JWKS on loopback."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jose import jwt

from service.app import create_app
from service.auth import issuers
from service.auth.keys import SigningKey, new_key
from service.config import Settings
from service.context import ServiceContext
from tests.conftest import make_settings

ISS = "https://sso.lpsk.example"
AUD = "rujukan-api"


class JwksServer:
    """Serves a JWKS document on 127.0.0.1 and counts how often it is fetched."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.fetches += 1
                body = json.dumps({"keys": [k.jwk for k in outer.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> JwksServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def idp_token(key: SigningKey, **overrides: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": "officer-17",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": str(uuid.uuid4()),
        "scope": "referrals:read",
        "lpsk_unit": "LPSK",
    }
    claims.update(overrides)
    return jwt.encode(claims, key.private_pem, algorithm=key.alg, headers={"kid": key.kid})


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.keys.append(new_key())
        yield server


def _client(settings: Settings, tmp_path: Path, trusted: list[dict[str, Any]]) -> TestClient:
    # The session's data key, so that referrals other tests left behind stay readable.
    own = make_settings(
        settings.database_url,
        tmp_path,
        trusted_issuers=trusted,
        data_key_file=settings.data_key_path,
    )
    return TestClient(create_app(ctx=ServiceContext.build(own)))


def _issuer(idp: JwksServer) -> dict[str, Any]:
    return {"iss": ISS, "jwks_url": idp.url, "audience": AUD, "agency_claim": "lpsk_unit"}


def _get(client: TestClient, token: str) -> int:
    response = client.get("/v1/referrals", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_token_of_a_trusted_issuer_is_accepted_with_its_agency(
    settings: Settings, tmp_path: Path, clean: None, idp: JwksServer
) -> None:
    with _client(settings, tmp_path, [_issuer(idp)]) as client:
        response = client.get(
            "/v1/referrals",
            params={"direction": "outgoing"},
            headers={"Authorization": f"Bearer {idp_token(idp.keys[0])}"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_cursor": None}
        # Cached: a second token with the same kid fetches nothing.
        assert _get(client, idp_token(idp.keys[0])) == 200
        assert idp.fetches == 1


def test_trusted_issuer_tokens_are_refused_when_wrong(
    settings: Settings, tmp_path: Path, clean: None, idp: JwksServer
) -> None:
    key = idp.keys[0]
    with _client(settings, tmp_path, [_issuer(idp)]) as client:
        assert _get(client, idp_token(key, lpsk_unit="POLRI")) == 401  # unknown agency
        assert _get(client, idp_token(key, aud="someone-else")) == 401
        assert _get(client, idp_token(key, lpsk_unit=None)) == 401
        assert _get(client, idp_token(key, exp=int(time.time()) - 600)) == 401
        stranger = new_key()
        forged = jwt.encode(
            jwt.get_unverified_claims(idp_token(key)),
            stranger.private_pem,
            algorithm="ES256",
            headers={"kid": key.kid},
        )
        assert _get(client, forged) == 401
        # A token claiming Rujukan's own issuer is checked against Rujukan's keys only.
        assert _get(client, idp_token(key, iss="rujukan")) == 401


def test_unknown_kid_refreshes_the_jwks_at_most_once_a_minute(
    settings: Settings,
    tmp_path: Path,
    clean: None,
    idp: JwksServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _client(settings, tmp_path, [_issuer(idp)]) as client:
        assert _get(client, idp_token(idp.keys[0])) == 200
        assert idp.fetches == 1
        rotated = new_key()
        idp.keys.append(rotated)
        # Within the minute the new kid is unknown and the provider is not asked again.
        assert _get(client, idp_token(rotated)) == 401
        assert _get(client, idp_token(rotated)) == 401
        assert idp.fetches == 1
        # Once the interval has passed, the unknown kid triggers one refresh.
        monkeypatch.setattr(issuers, "REFRESH_INTERVAL_SECONDS", 0.0)
        assert _get(client, idp_token(rotated)) == 200
        assert idp.fetches == 2


def test_jwks_file_and_one_algorithm_per_key(
    settings: Settings, tmp_path: Path, clean: None
) -> None:
    key = new_key()
    jwks_file = tmp_path / "idp-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [key.jwk]}))
    trusted = [
        {"iss": ISS, "jwks_file": str(jwks_file), "audience": AUD, "agency_claim": "lpsk_unit"}
    ]
    with _client(settings, tmp_path, trusted) as client:
        assert _get(client, idp_token(key)) == 200
        # The same key with another algorithm in the header is refused.
        claims = jwt.get_unverified_claims(idp_token(key))
        hs = jwt.encode(claims, "secret", algorithm="HS256", headers={"kid": key.kid})
        assert _get(client, hs) == 401


def test_jwks_parsing_skips_unusable_keys() -> None:
    ec_key = new_key()
    private_jwk = {**ec_key.jwk, "d": "AAAA", "kid": "with-private"}
    wrong_alg = {**ec_key.jwk, "alg": "RS256", "kid": "mismatch"}
    no_kid = {k: v for k, v in ec_key.jwk.items() if k != "kid"}
    parsed = issuers.parse_jwks(
        {
            "keys": [
                ec_key.jwk,
                private_jwk,
                wrong_alg,
                no_kid,
                {"kty": "oct", "k": "abc", "kid": "sym"},
            ]
        }
    )
    assert list(parsed) == [ec_key.kid]
    assert parsed[ec_key.kid][1] == "ES256"
