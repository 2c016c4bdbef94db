"""CORS is off by default and on for the origins in RUJUKAN_CORS_ORIGINS, preflight included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.context import ServiceContext
from tests.support import Api

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

ALLOWED = "https://sim.lpsk.go.id"
OTHER = "https://evil.example"
REQUEST_HEADERS = (
    "authorization, content-type, if-match, idempotency-key, x-reveal-reason, "
    "accept-language, x-request-id"
)


@pytest.fixture
def cors_http(ctx: ServiceContext) -> Iterator[TestClient]:
    """The service with one allowed origin (the settings otherwise those of the session)."""
    settings = ctx.settings.model_copy(update={"cors_origins": [ALLOWED]})
    app = create_app(settings, ctx=ctx)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _preflight(http: TestClient, origin: str, method: str = "POST") -> dict[str, str]:
    response = http.options(
        "/v1/referrals",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": REQUEST_HEADERS,
        },
    )
    return {"status": str(response.status_code), **response.headers}


def _cors_fields(headers: dict[str, str]) -> set[str]:
    return {name.lower() for name in headers if name.lower().startswith("access-control-")}


def test_cors_is_off_by_default(http: TestClient, lpsk: Api) -> None:
    answer = _preflight(http, ALLOWED)
    assert not _cors_fields(answer)
    response = http.get("/v1/agencies", headers={**lpsk.headers(), "Origin": ALLOWED})
    assert response.status_code == 200
    assert not _cors_fields(dict(response.headers))


def test_an_allowed_origin_gets_the_preflight_with_the_api_methods_and_headers(
    cors_http: TestClient,
) -> None:
    answer = _preflight(cors_http, ALLOWED)
    assert answer["status"] == "200"
    assert answer["access-control-allow-origin"] == ALLOWED
    methods = {m.strip() for m in answer["access-control-allow-methods"].split(",")}
    assert {"GET", "HEAD", "POST", "DELETE"} <= methods
    allowed = {h.strip().lower() for h in answer["access-control-allow-headers"].split(",")}
    assert {h.strip() for h in REQUEST_HEADERS.split(",")} <= allowed
    assert "access-control-allow-credentials" not in answer
    assert "Origin" in answer["vary"]


def test_an_allowed_origin_may_read_the_fields_the_api_answers_with(
    cors_http: TestClient, lpsk: Api
) -> None:
    response = cors_http.get("/v1/agencies", headers={**lpsk.headers(), "Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {
        "ETag",
        "Location",
        "Content-Language",
        "X-Request-ID",
        "Retry-After",
        "RateLimit",
        "RateLimit-Policy",
    } <= exposed
    # An error too, so that a page can show it.
    refused = cors_http.get("/v1/agencies", headers={"Origin": ALLOWED})
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ALLOWED


def test_a_disallowed_origin_gets_no_cors_field(cors_http: TestClient, lpsk: Api) -> None:
    answer = _preflight(cors_http, OTHER)
    assert answer["status"] == "400"
    assert answer["content-type"].startswith("application/problem+json")
    assert not _cors_fields(answer)
    response = cors_http.get("/v1/agencies", headers={**lpsk.headers(), "Origin": OTHER})
    assert response.status_code == 200
    assert not _cors_fields(dict(response.headers))
    assert "Origin" in response.headers["vary"]


def test_a_method_the_api_does_not_use_is_refused_to_an_allowed_origin(
    cors_http: TestClient,
) -> None:
    answer = _preflight(cors_http, ALLOWED, method="PUT")
    assert answer["status"] == "400"
    # The listed origin may read the refusal and learn what the API takes.
    assert answer["access-control-allow-origin"] == ALLOWED
    assert "PUT" not in answer["access-control-allow-methods"]
