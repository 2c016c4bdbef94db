"""HEAD works wherever GET does (CONTRACT §7): same status and headers, no body."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from service.app import openapi_spec
from service.context import ServiceContext
from tests.support import Api, assert_problem
from tests.support.live import live_server

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

PUBLIC = ("/", "/healthz", "/readyz", "/openapi.json", "/.well-known/jwks.json", "/metrics")
# Fields that differ between two answers to the same request, whatever the method.
_PER_REQUEST = {"date", "x-request-id", "ratelimit"}


def _fields(response: Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in _PER_REQUEST}


def assert_head_like_get(get: Response, head: Response) -> None:
    assert head.status_code == get.status_code, head.text
    assert head.content == b""
    assert _fields(head) == _fields(get)


@pytest.mark.parametrize("path", PUBLIC)
def test_head_answers_like_get_on_the_public_endpoints(http: TestClient, path: str) -> None:
    assert_head_like_get(http.get(path), http.head(path))


def test_head_answers_like_get_on_every_v1_read(lpsk: Api) -> None:
    rid = lpsk.create_ok()["id"]
    templates = [path for path, item in openapi_spec()["paths"].items() if "get" in item]
    assert "/v1/referrals/{referral_id}" in templates
    answered = set()
    for template in templates:
        path = template.replace("{referral_id}", rid)
        for name in re.findall(r"\{[a-z_]+\}", path):
            path = path.replace(name, str(uuid.uuid4()))
        get = lpsk.http.get(path, headers=lpsk.headers())
        assert_head_like_get(get, lpsk.http.head(path, headers=lpsk.headers()))
        answered.add(get.status_code)
    assert 200 in answered
    head = lpsk.http.head(f"/v1/referrals/{rid}", headers=lpsk.headers())
    assert head.headers["ETag"] == lpsk.get(rid).headers["ETag"]
    assert head.headers["Content-Length"] == lpsk.get(rid).headers["Content-Length"]


def test_head_is_authenticated_like_get(lpsk: Api, kemenham: Api) -> None:
    rid = lpsk.create_ok()["id"]
    head = lpsk.http.head("/v1/referrals")
    assert head.status_code == 401 and head.content == b""
    assert head.headers["WWW-Authenticate"].startswith("Bearer")
    # A non-party learns no more from HEAD than from GET.
    assert_head_like_get(
        kemenham.get(rid), kemenham.http.head(f"/v1/referrals/{rid}", headers=kemenham.headers())
    )
    assert kemenham.get(rid).status_code == 404


def test_head_on_an_action_is_405_and_allow_names_head_with_get(lpsk: Api) -> None:
    rid = lpsk.create_ok()["id"]
    response = lpsk.http.head(f"/v1/referrals/{rid}/assess", headers=lpsk.headers())
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    response = lpsk.http.delete(f"/v1/referrals/{rid}/notes", headers=lpsk.headers())
    assert_problem(response, 405)
    assert [m.strip() for m in response.headers["Allow"].split(",")] == ["GET", "HEAD", "POST"]


def test_head_is_not_an_operation_of_the_openapi_document(http: TestClient) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    assert all("head" not in item for item in paths.values())


def test_head_over_a_real_server_sends_the_get_headers_and_no_body(ctx: ServiceContext) -> None:
    with live_server(ctx) as server, server.client() as client:
        get = client.get("/healthz")
        head = client.head("/healthz")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["content-type"] == "application/json"
