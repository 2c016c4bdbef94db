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
from service.auth.scopes import ALL_SCOPES
from service.config import Settings
from service.context import ServiceContext
from tests.support import Api, referral_body
from tests.support.databases import make_settings

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

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


def idp_token(key: SigningKey, without: tuple[str, ...] = (), **overrides: Any) -> str:
    """A token of LPSK's provider; `without` names claims to leave out."""
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
    for name in without:
        claims.pop(name)
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


def _issuer(idp: JwksServer, **binding: Any) -> dict[str, Any]:
    """LPSK's provider, bound to LPSK and to reading and writing referrals unless told."""
    issuer = {"iss": ISS, "jwks_url": idp.url, "audience": AUD, "agency_claim": "lpsk_unit",
              "agency": "LPSK", "scopes": "referrals:read referrals:write"}  # fmt: skip
    issuer.update(binding)
    return {name: value for name, value in issuer.items() if value is not None}


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
        assert _get(client, idp_token(key, lpsk_unit="POLRI")) == 401  # not its agency
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
        {"iss": ISS, "jwks_file": str(jwks_file), "audience": AUD, "agency_claim": "lpsk_unit",
         "agency": "LPSK", "scopes": ["referrals:read"]}
    ]  # fmt: skip
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


# --- an issuer speaks only for the agency it is bound to ---------------------------------


def _bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def _outgoing(client: TestClient, token: str) -> list[str]:
    response = client.get("/v1/referrals", params={"direction": "outgoing"}, headers=_bearer(token))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_a_provider_cannot_act_for_another_agency(
    settings: Settings, tmp_path: Path, lpsk: Api, idp: JwksServer
) -> None:
    """LPSK's provider signs a token naming KEMENSOS with every scope: refused outright."""
    sealed = lpsk.create_ok("KEMENSOS", protected_identity=True)
    every_scope = " ".join(ALL_SCOPES)
    issuer = _issuer(idp, agency_claim=None, scopes=every_scope)
    key = idp.keys[0]
    forged = idp_token(key, agency="KEMENSOS", scope=every_scope, without=("lpsk_unit",))
    with _client(settings, tmp_path, [issuer]) as client:
        inbox = client.get(
            "/v1/referrals", params={"direction": "incoming"}, headers=_bearer(forged)
        )
        assert inbox.status_code == 401, inbox.text
        assert inbox.headers["WWW-Authenticate"].startswith("Bearer")
        reveal = client.get(
            f"/v1/referrals/{sealed['id']}",
            params={"reveal": "identity"},
            headers=_bearer(forged, **{"X-Reveal-Reason": "Court order 12/2026"}),
        )
        assert reveal.status_code == 401, reveal.text
        assert "Dewi" not in reveal.text
        # The same provider speaking for LPSK is served, as LPSK: the referral's sender.
        own = idp_token(key, agency="LPSK", scope=every_scope, without=("lpsk_unit",))
        assert _outgoing(client, own) == [sealed["id"]]


def test_a_token_without_an_agency_acts_for_the_one_bound_agency(
    settings: Settings, tmp_path: Path, lpsk: Api, idp: JwksServer
) -> None:
    sent = lpsk.create_ok("KEMENHAM")
    key = idp.keys[0]
    with _client(settings, tmp_path, [_issuer(idp)]) as client:
        assert _outgoing(client, idp_token(key, without=("lpsk_unit",))) == [sent["id"]]
        # A claim that is there but names no agency is not an absent one.
        assert _get(client, idp_token(key, lpsk_unit=None)) == 401


def test_with_several_bound_agencies_the_token_must_name_one_of_them(
    settings: Settings, tmp_path: Path, clean: None, idp: JwksServer
) -> None:
    key = idp.keys[0]
    issuer = _issuer(idp, agency=None, agencies=["LPSK", "KEMENHAM"])
    with _client(settings, tmp_path, [issuer]) as client:
        assert _get(client, idp_token(key, lpsk_unit="KEMENHAM")) == 200
        assert _get(client, idp_token(key, lpsk_unit="LPSK")) == 200
        assert _get(client, idp_token(key, lpsk_unit="KEMENSOS")) == 401
        assert _get(client, idp_token(key, without=("lpsk_unit",))) == 401


def test_a_provider_grants_at_most_its_listed_scopes(
    settings: Settings, tmp_path: Path, clean: None, idp: JwksServer
) -> None:
    key = idp.keys[0]
    with _client(settings, tmp_path, [_issuer(idp, scopes="referrals:read")]) as client:
        token = idp_token(key, scope="referrals:read referrals:write admin")
        assert _get(client, token) == 200
        write = client.post("/v1/referrals", json=referral_body("KEMENSOS"), headers=_bearer(token))
        assert write.status_code == 403, write.text
        assert "referrals:write" in write.json()["detail"]
        # Left with no allowed scope, the token still authenticates, and every scoped
        # operation refuses it.
        assert _get(client, idp_token(key, scope="referrals:write")) == 403
