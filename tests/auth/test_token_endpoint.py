"""POST /oauth/token: the client-credentials grant of CONTRACT §3 (RFC 6749 §4.4, §5)."""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import quote_plus

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from service.auth import clients
from service.auth.models import ApiClient
from service.context import ServiceContext
from tests.support import Party, writer_session
from tests.support.tokens import form_token, jwt_parts, register

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

PROBLEM = "application/problem+json"


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def basic_token(http: TestClient, client_id: str, secret: str, **data: str) -> Response:
    return http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", **data},
        headers={"Authorization": basic(client_id, secret)},
    )


def assert_oauth_error(response: Response, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["error"] == error
    assert body["status"] == status
    assert body["type"] and body["title"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "access_token" not in body
    return body  # type: ignore[no-any-return]


def assert_token_answer(response: Response, ctx: ServiceContext) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert "no-store" in response.headers["Cache-Control"]
    body = response.json()
    assert set(body) >= {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == ctx.settings.token_ttl_seconds
    return body  # type: ignore[no-any-return]


# --- successful grants ------------------------------------------------------------------


def test_form_credentials_give_a_bearer_token(ctx: ServiceContext, http: TestClient) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read referrals:write")
    body = assert_token_answer(form_token(http, cid, secret), ctx)
    assert body["scope"].split() == ["referrals:read", "referrals:write"]
    listed = http.get(
        "/v1/agencies", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert listed.status_code == 200, listed.text


def test_http_basic_credentials_give_a_bearer_token(
    ctx: ServiceContext, http: TestClient
) -> None:
    cid, secret = register(ctx, "KEMENHAM", "referrals:read")
    body = assert_token_answer(basic_token(http, cid, secret), ctx)
    assert body["scope"] == "referrals:read"
    _, claims = jwt_parts(body["access_token"])
    assert claims["sub"] == cid
    assert claims["agency"] == "KEMENHAM"


def test_token_is_an_es256_jwt_with_the_contract_claims(
    ctx: ServiceContext, http: TestClient
) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    before = int(time.time())
    body = assert_token_answer(form_token(http, cid, secret), ctx)
    after = int(time.time())
    header, claims = jwt_parts(body["access_token"])

    assert header["alg"] == "ES256"
    assert header["kid"] == ctx.keyset.current.kid
    assert {"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "scope", "agency"} <= set(claims)
    assert claims["iss"] == ctx.settings.issuer
    assert claims["aud"] == ctx.settings.audience
    assert claims["sub"] == cid
    assert claims["agency"] == "LPSK"
    assert claims["scope"] == "referrals:read"
    assert before - 1 <= claims["iat"] <= after + 1
    assert claims["nbf"] <= claims["iat"] + 1
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert isinstance(claims["jti"], str) and claims["jti"]


def test_every_token_has_its_own_jti(ctx: ServiceContext, http: TestClient) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    first = form_token(http, cid, secret).json()["access_token"]
    second = form_token(http, cid, secret).json()["access_token"]
    assert jwt_parts(first)[1]["jti"] != jwt_parts(second)[1]["jti"]


def test_agency_comes_from_the_registration_not_the_request(
    ctx: ServiceContext, http: TestClient
) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    response = form_token(http, cid, secret, agency="KEMENSOS")
    body = assert_token_answer(response, ctx)
    assert jwt_parts(body["access_token"])[1]["agency"] == "LPSK"

    via_basic = basic_token(http, cid, secret, agency="KEMENHAM")
    assert jwt_parts(assert_token_answer(via_basic, ctx)["access_token"])[1]["agency"] == "LPSK"


def test_a_narrower_scope_request_gives_just_that_scope(
    ctx: ServiceContext, http: TestClient, parties: dict[str, Party]
) -> None:
    party = parties["KEMENSOS"]
    response = form_token(http, party.client_id, party.secret, scope="referrals:assess")
    body = assert_token_answer(response, ctx)
    assert body["scope"] == "referrals:assess"
    assert jwt_parts(body["access_token"])[1]["scope"] == "referrals:assess"
    # ... and the token really is limited: reading needs referrals:read.
    refused = http.get(
        "/v1/agencies", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert refused.status_code == 403, refused.text


def test_no_scope_parameter_gives_every_granted_scope(
    ctx: ServiceContext, http: TestClient
) -> None:
    cid, secret = register(ctx, "KEMENSOS", "referrals:read referrals:assess")
    body = assert_token_answer(form_token(http, cid, secret), ctx)
    assert set(body["scope"].split()) == {"referrals:read", "referrals:assess"}


# --- client authentication failures ----------------------------------------------------


def test_wrong_secret_is_invalid_client(ctx: ServiceContext, http: TestClient) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    assert_oauth_error(form_token(http, cid, secret + "x"), 401, "invalid_client")
    assert_oauth_error(basic_token(http, cid, "not-the-secret"), 401, "invalid_client")


def test_unknown_client_is_invalid_client(http: TestClient) -> None:
    assert_oauth_error(form_token(http, "lpsk-0000000000000000", "whatever"), 401,
                       "invalid_client")
    assert_oauth_error(basic_token(http, "nobody", "whatever"), 401, "invalid_client")


def test_missing_secret_is_invalid_client(ctx: ServiceContext, http: TestClient) -> None:
    cid, _ = register(ctx, "LPSK", "referrals:read")
    response = http.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": cid}
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_malformed_basic_header_is_invalid_client(http: TestClient) -> None:
    for header in ("Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        response = http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": header},
        )
        assert_oauth_error(response, 401, "invalid_client")


def test_credentials_both_ways_is_invalid_request(ctx: ServiceContext, http: TestClient) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
        headers={"Authorization": basic(cid, secret)},
    )
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_json_is_invalid_request_saying_to_send_a_form(
    ctx: ServiceContext, http: TestClient, content_type: str
) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    response = http.post(
        "/oauth/token",
        content=(
            f'{{"grant_type": "client_credentials", "client_id": "{cid}", '
            f'"client_secret": "{secret}"}}'
        ),
        headers={"Content-Type": content_type},
    )
    body = assert_oauth_error(response, 400, "invalid_request")
    assert "application/x-www-form-urlencoded" in body["error_description"]
    assert "grant_type is required" not in body["error_description"]
    assert "JSON" in body["error_description"]
    # HTTP Basic credentials do not make a JSON body acceptable.
    response = http.post(
        "/oauth/token",
        json={"grant_type": "client_credentials"},
        headers={"Authorization": basic(cid, secret)},
    )
    assert (
        "application/x-www-form-urlencoded"
        in assert_oauth_error(response, 400, "invalid_request")["error_description"]
    )


def test_a_multipart_body_is_invalid_request_too(ctx: ServiceContext, http: TestClient) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    response = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
        files={"note": ("note.txt", b"x")},
    )
    body = assert_oauth_error(response, 400, "invalid_request")
    assert "application/x-www-form-urlencoded" in body["error_description"]


def test_missing_grant_type_is_invalid_request(ctx: ServiceContext, http: TestClient) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    response = http.post("/oauth/token", data={"client_id": cid, "client_secret": secret})
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("grant_type", ["password", "authorization_code", "refresh_token"])
def test_other_grant_types_are_unsupported(
    ctx: ServiceContext, http: TestClient, grant_type: str
) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    response = http.post(
        "/oauth/token",
        data={"grant_type": grant_type, "client_id": cid, "client_secret": secret},
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    "scope",
    ["referrals:write", "referrals:read referrals:write", "admin", "no:such-scope"],
)
def test_scope_not_granted_or_unknown_is_invalid_scope(
    ctx: ServiceContext, http: TestClient, scope: str
) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    assert_oauth_error(form_token(http, cid, secret, scope=scope), 400, "invalid_scope")


@pytest.mark.parametrize(
    "field", [("client_id", 300), ("client_secret", 600), ("scope", 2000)],
    ids=lambda f: f[0],
)
def test_an_overlong_field_is_an_oauth_error(
    ctx: ServiceContext, http: TestClient, field: tuple[str, int]
) -> None:
    """RFC 6749 §5.2: a malformed token request is answered with an OAuth `error`, so that
    OAuth client libraries can read it (not a bare 422 validation problem)."""
    cid, secret = register(ctx, "LPSK", "referrals:read")
    name, length = field
    data = {"grant_type": "client_credentials", "client_id": cid, "client_secret": secret}
    data[name] = "x" * length
    response = http.post("/oauth/token", data=data)
    assert response.status_code in (400, 401), response.text
    assert response.json().get("error") in ("invalid_request", "invalid_client", "invalid_scope")


# --- the client's life cycle ------------------------------------------------------------


def test_revoked_client_gets_no_new_token_at_once(ctx: ServiceContext, http: TestClient) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    assert_token_answer(form_token(http, cid, secret), ctx)
    with writer_session(ctx.db) as session:
        clients.revoke_client(session, cid)
        session.commit()
    assert_oauth_error(form_token(http, cid, secret), 401, "invalid_client")
    assert_oauth_error(basic_token(http, cid, secret), 401, "invalid_client")


def test_rotated_secret_replaces_the_old_one_at_once(
    ctx: ServiceContext, http: TestClient
) -> None:
    cid, old = register(ctx, "KEMENSOS", "referrals:read")
    assert_token_answer(form_token(http, cid, old), ctx)
    with writer_session(ctx.db) as session:
        _, new = clients.rotate_secret(session, cid, keyring=ctx.keyring)
        session.commit()
    assert new != old
    assert_oauth_error(form_token(http, cid, old), 401, "invalid_client")
    assert_token_answer(form_token(http, cid, new), ctx)
    assert_token_answer(basic_token(http, cid, new), ctx)


def test_secret_is_stored_only_as_a_keyed_hash(ctx: ServiceContext) -> None:
    cid, secret = register(ctx, "LPSK", "referrals:read")
    with ctx.db.reader() as session:
        row = session.execute(
            select(ApiClient).where(ApiClient.client_id == cid)  # type: ignore[arg-type]
        ).scalars().one()
        stored = {column: getattr(row, column) for column in ApiClient.model_fields}
    assert row.secret_hash.startswith("hmac-sha256$")
    assert secret not in row.secret_hash
    assert all(secret not in str(value) for value in stored.values())
