"""Bearer token verification on /v1: every bad token is 401 with WWW-Authenticate: Bearer."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from httpx import Response

from service.context import ServiceContext
from tests.support import ALL_SCOPES, Party
from tests.support.tokens import (
    b64u,
    segment,
    sign_es256,
    sign_hs256,
    sign_rs256,
    valid_claims,
)

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

REPO = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"


def call(http: TestClient, authorization: str | None) -> Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return http.get("/v1/referrals", headers=headers)


def assert_unauthorized(response: Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == 401
    assert body["type"] and body["title"]
    assert "items" not in body
    assert "Traceback" not in response.text


@pytest.fixture
def claims_for(
    ctx: ServiceContext, parties: dict[str, Party]
) -> Callable[..., dict[str, object]]:
    party = parties["LPSK"]

    def make(**overrides: object) -> dict[str, object]:
        return valid_claims(
            ctx,
            **{"sub": party.client_id, "agency": party.agency, "scope": ALL_SCOPES,
               **overrides},
        )

    return make


def real_header(ctx: ServiceContext, **extra: object) -> dict[str, object]:
    return {"alg": "ES256", "typ": "JWT", "kid": ctx.keyset.current.kid, **extra}


def real_sign(ctx: ServiceContext, claims: dict[str, object], **header: object) -> str:
    return sign_es256(real_header(ctx, **header), claims, ctx.keyset.current.private_pem)


# --- controls: the hand-made tokens are otherwise right --------------------------------


def test_a_hand_made_valid_token_is_accepted(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    response = call(http, f"Bearer {real_sign(ctx, claims_for())}")
    assert response.status_code == 200, response.text


def test_an_issued_token_is_accepted(http: TestClient, parties: dict[str, Party]) -> None:
    response = call(http, f"Bearer {parties['LPSK'].token}")
    assert response.status_code == 200, response.text


def test_the_scheme_is_case_insensitive(http: TestClient, parties: dict[str, Party]) -> None:
    """RFC 6750 / RFC 9110: auth schemes are case-insensitive."""
    for scheme in ("bearer", "BEARER"):
        response = call(http, f"{scheme} {parties['LPSK'].token}")
        assert response.status_code == 200, response.text


# --- the header ------------------------------------------------------------------------


def test_no_authorization_header(http: TestClient) -> None:
    assert_unauthorized(call(http, None))


def test_basic_scheme_is_not_a_bearer_token(
    http: TestClient, parties: dict[str, Party]
) -> None:
    assert_unauthorized(call(http, "Basic dXNlcjpwYXNz"))
    # Even a valid token is refused under another scheme.
    assert_unauthorized(call(http, f"Token {parties['LPSK'].token}"))


@pytest.mark.parametrize(
    "value", ["Bearer", "Bearer ", "Bearer garbage", "Bearer a.b.c", "Bearer ...."]
)
def test_garbage(http: TestClient, value: str) -> None:
    assert_unauthorized(call(http, value))


# --- algorithm confusion ------------------------------------------------------------------


def test_alg_none(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    for alg in ("none", "None", "NONE"):
        header = {"alg": alg, "typ": "JWT", "kid": ctx.keyset.current.kid}
        token = f"{segment(header)}.{segment(claims_for())}."
        assert_unauthorized(call(http, f"Bearer {token}"))


def test_hs256_signed_with_the_public_key_as_hmac_secret(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    public = ctx.keyset.current.private_key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = ctx.keyset.current.jwk
    jwk_forms = (
        json.dumps(jwk).encode(),
        json.dumps(jwk, separators=(",", ":"), sort_keys=True).encode(),
        json.dumps({"keys": [jwk]}).encode(),
    )
    for secret in (pem, pem.strip(), *jwk_forms):
        token = sign_hs256(real_header(ctx, alg="HS256"), claims_for(), secret)
        assert_unauthorized(call(http, f"Bearer {token}"))


def test_rs256_with_the_kid_of_an_es256_key(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = sign_rs256(real_header(ctx, alg="RS256"), claims_for(), foreign)
    assert_unauthorized(call(http, f"Bearer {token}"))


# --- claims ---------------------------------------------------------------------------


def test_expired(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    now = int(time.time())
    claims = claims_for(iat=now - 7200, nbf=now - 7200, exp=now - 3600)
    assert_unauthorized(call(http, f"Bearer {real_sign(ctx, claims)}"))


def test_not_yet_valid(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    now = int(time.time())
    claims = claims_for(nbf=now + 3600, exp=now + 7200)
    assert_unauthorized(call(http, f"Bearer {real_sign(ctx, claims)}"))


@pytest.mark.parametrize("claim", ["exp", "aud", "iss", "sub", "nbf", "iat", "jti", "agency"])
def test_missing_claim(
    ctx: ServiceContext,
    http: TestClient,
    claims_for: Callable[..., dict[str, object]],
    claim: str,
) -> None:
    claims = claims_for(**{claim: None})
    assert claim not in claims
    assert_unauthorized(call(http, f"Bearer {real_sign(ctx, claims)}"))


@pytest.mark.parametrize("aud", ["someone-else", "", ["someone-else"]])
def test_wrong_audience(
    ctx: ServiceContext,
    http: TestClient,
    claims_for: Callable[..., dict[str, object]],
    aud: object,
) -> None:
    claims = claims_for()
    claims["aud"] = aud
    assert_unauthorized(call(http, f"Bearer {real_sign(ctx, claims)}"))


@pytest.mark.parametrize("iss", ["https://evil.example", "", "rujukan "])
def test_wrong_issuer(
    ctx: ServiceContext,
    http: TestClient,
    claims_for: Callable[..., dict[str, object]],
    iss: str,
) -> None:
    claims = claims_for()
    claims["iss"] = iss
    assert_unauthorized(call(http, f"Bearer {real_sign(ctx, claims)}"))


# --- signature ------------------------------------------------------------------------


def test_tampered_payload_keeps_no_trust(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    token = real_sign(ctx, claims_for())
    header, _, signature = token.split(".")
    forged = segment(claims_for(agency="KEMENSOS"))
    assert_unauthorized(call(http, f"Bearer {header}.{forged}.{signature}"))


def test_empty_signature(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    header, payload, _ = real_sign(ctx, claims_for()).split(".")
    assert_unauthorized(call(http, f"Bearer {header}.{payload}."))


def test_truncated_signature(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    header, payload, signature = real_sign(ctx, claims_for()).split(".")
    assert_unauthorized(call(http, f"Bearer {header}.{payload}.{signature[:-4]}"))


def test_unknown_kid(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    for kid in ("no-such-key", "", None):
        header = real_header(ctx, kid=kid)
        if kid is None:
            header.pop("kid")
        token = sign_es256(header, claims_for(), ctx.keyset.current.private_pem)
        assert_unauthorized(call(http, f"Bearer {token}"))


def test_foreign_ec_key_with_a_known_kid(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    foreign = ec.generate_private_key(ec.SECP256R1())
    token = sign_es256(real_header(ctx), claims_for(), foreign)
    assert_unauthorized(call(http, f"Bearer {token}"))


def test_embedded_jwk_is_not_trusted(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    """A token that brings its own public key (`jwk` header) must not verify itself."""
    foreign = ec.generate_private_key(ec.SECP256R1())
    numbers = foreign.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64u(numbers.x.to_bytes(32, "big")),
           "y": b64u(numbers.y.to_bytes(32, "big"))}
    token = sign_es256(real_header(ctx, jwk=jwk), claims_for(), foreign)
    assert_unauthorized(call(http, f"Bearer {token}"))


# --- shape ------------------------------------------------------------------------------


def test_oversized_token(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    token = real_sign(ctx, claims_for(padding="x" * 9000))
    assert len(token) > 8 * 1024
    assert_unauthorized(call(http, f"Bearer {token}"))


def test_jwe_shaped_token(
    ctx: ServiceContext, http: TestClient, claims_for: Callable[..., dict[str, object]]
) -> None:
    header = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": ctx.keyset.current.kid}
    token = ".".join([segment(header), b64u(b"k" * 32), b64u(b"iv" * 6),
                      segment(claims_for()), b64u(b"t" * 16)])
    assert token.count(".") == 4
    assert_unauthorized(call(http, f"Bearer {token}"))


def test_claims_that_are_not_an_object(ctx: ServiceContext, http: TestClient) -> None:
    for payload in ([1, 2], "a string", 42, None):
        # Signed correctly by the service's key: only the content is wrong.
        token = sign_es256(real_header(ctx), payload, ctx.keyset.current.private_pem)
        assert_unauthorized(call(http, f"Bearer {token}"))


# --- the library boundary -------------------------------------------------------------


def test_only_the_tokens_module_imports_jose() -> None:
    pattern = re.compile(r"^\s*(import\s+jose\b|from\s+jose\b)", re.M)
    importers = sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "service").rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    )
    assert importers == ["service/auth/tokens.py"]
