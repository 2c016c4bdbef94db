"""Every error is an RFC 9457 problem document without internals (CONTRACT §7, §8)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from service.app import create_app
from service.bodies import MAX_BODY_BYTES
from service.context import ServiceContext
from tests.support import Api, referral_body

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

PROBLEM = "application/problem+json"
LEAKS = ("Traceback", 'File "', "sqlalchemy", "psycopg", "sqlite3", "SELECT ", "INSERT ")


def assert_problem(response: Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    for leak in LEAKS:
        assert leak not in response.text
    return body


def test_unknown_path_is_404(http: TestClient) -> None:
    assert_problem(http.get("/no/such/path"), 404)
    assert_problem(http.get("/v1/no-such-collection"), 404)


def test_unknown_referral_is_404(lpsk: Api) -> None:
    assert_problem(lpsk.get(str(uuid.uuid4())), 404)


def test_wrong_method_is_405(http: TestClient, lpsk: Api) -> None:
    body = assert_problem(http.delete("/v1/agencies", headers=lpsk.headers()), 405)
    assert body["status"] == 405
    response = http.put("/oauth/token")
    assert_problem(response, 405)
    assert "POST" in response.headers.get("Allow", "")


def test_405_allow_lists_every_method_of_the_path(http: TestClient, lpsk: Api) -> None:
    """Found by Schemathesis: `Allow` named only the first route's method (POST for notes)."""
    rid = lpsk.create_ok()["id"]
    response = http.delete(f"/v1/referrals/{rid}/notes", headers=lpsk.headers())
    assert_problem(response, 405)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed
    assert "DELETE" not in allowed
    response = http.put("/v1/referrals", headers=lpsk.headers())
    assert_problem(response, 405)
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["Allow"].split(",")}


def test_invalid_json_is_422(lpsk: Api) -> None:
    response = lpsk.http.post(
        "/v1/referrals",
        content=b'{"to_agency": "KEMENSOS", "subject": ',
        headers={**lpsk.headers(), "Content-Type": "application/json"},
    )
    body = assert_problem(response, 422)
    assert isinstance(body.get("errors"), list) and body["errors"]


def test_body_that_is_not_utf8_is_a_documented_400_problem(lpsk: Api) -> None:
    """Bytes that are not UTF-8 cannot be parsed as JSON; the answer is a problem, as documented."""
    rid = lpsk.create_ok()["id"]
    for path in ("/v1/referrals", f"/v1/referrals/{rid}/assess", f"/v1/referrals/{rid}/notes"):
        response = lpsk.http.post(
            path,
            content=b"\xff{3\xfeN^\x15",
            headers={**lpsk.headers(), "Content-Type": "application/json", "If-Match": '"1"'},
        )
        assert_problem(response, 400)
        operation = lpsk.http.app.openapi()["paths"][path.replace(rid, "{referral_id}")]["post"]
        assert "400" in operation["responses"]
    assert lpsk.get(rid).json()["version"] == 1


def test_validation_errors_list_fields_without_echoing_values(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    body["subject"]["full_name"] = "Rahasia Sangat Pribadi"
    body["subject"]["nik"] = "12345"
    body["urgency"] = "whenever"
    response = lpsk.create(body)
    problem = assert_problem(response, 422)
    errors = problem["errors"]
    assert isinstance(errors, list) and errors
    for error in errors:
        assert set(error) >= {"loc", "msg", "type"}
    locations = {tuple(e["loc"]) for e in errors}
    assert ("body", "urgency") in locations
    assert "Rahasia Sangat Pribadi" not in response.text
    assert "12345" not in response.text


def test_body_over_one_mib_is_413(lpsk: Api) -> None:
    big = b'{"summary": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    response = lpsk.http.post(
        "/v1/referrals", content=big,
        headers={**lpsk.headers(), "Content-Type": "application/json"},
    )
    assert_problem(response, 413)
    assert lpsk.list().json()["items"] == []


def test_body_over_one_mib_without_content_length_is_413(lpsk: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"summary": "'
        for _ in range(20):
            yield b"x" * (64 * 1024)
        yield b'"}'

    response = lpsk.http.post(
        "/v1/referrals", content=chunks(),
        headers={**lpsk.headers(), "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert_problem(response, 413)


def test_body_over_one_mib_at_the_token_endpoint_is_413(http: TestClient) -> None:
    response = http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&client_secret=" + b"a" * (MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 413)


def test_unauthorized_is_a_problem(http: TestClient) -> None:
    assert_problem(http.get("/v1/referrals"), 401)


@pytest.fixture(scope="module")
def failing_client(ctx: ServiceContext) -> Iterator[TestClient]:
    app = create_app(ctx=ctx)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret-internal-detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_unexpected_exception_is_a_500_problem_without_internals(
    failing_client: TestClient,
) -> None:
    response = failing_client.get("/boom")
    body = assert_problem(response, 500)
    assert "secret-internal-detail" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert set(body) <= {"type", "title", "status", "detail", "instance"}


def test_unexpected_exception_answer_carries_the_request_id(failing_client: TestClient) -> None:
    """The id a caller quotes to the operator is most needed when the service failed."""
    response = failing_client.get("/boom", headers={"X-Request-ID": "incident-42"})
    assert_problem(response, 500)
    assert response.headers.get("X-Request-ID") == "incident-42"


def test_request_id_is_echoed(http: TestClient) -> None:
    response = http.get("/healthz", headers={"X-Request-ID": "abc-123.XYZ_9"})
    assert response.headers["X-Request-ID"] == "abc-123.XYZ_9"
    error = http.get("/no/such/path", headers={"X-Request-ID": "req-404"})
    assert error.headers["X-Request-ID"] == "req-404"


def test_request_id_is_generated_when_absent(http: TestClient) -> None:
    first = http.get("/healthz").headers.get("X-Request-ID")
    second = http.get("/healthz").headers.get("X-Request-ID")
    assert first and second
    assert first != second


def test_unsafe_request_id_is_replaced(http: TestClient) -> None:
    for unsafe in ("a" * 500, "has space", "quote\"d", "semi;colon"):
        rid = http.get("/healthz", headers={"X-Request-ID": unsafe}).headers["X-Request-ID"]
        assert rid and rid != unsafe


def test_request_id_on_413(lpsk: Api) -> None:
    response = lpsk.http.post(
        "/v1/referrals",
        content=b"x" * (MAX_BODY_BYTES + 1),
        headers={**lpsk.headers(), "Content-Type": "application/json", "X-Request-ID": "big-1"},
    )
    assert_problem(response, 413)
    assert response.headers["X-Request-ID"] == "big-1"


def test_problem_bodies_are_valid_json_objects(http: TestClient) -> None:
    response = http.get("/v1/referrals", headers={"Authorization": "Bearer nope"})
    assert json.loads(response.text)["status"] == 401


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_trailing_slash_gets_a_404_problem_naming_the_path_not_an_empty_redirect(
    lpsk: Api, method: str
) -> None:
    rid = lpsk.create_ok()["id"]
    for path, bare in (
        ("/v1/referrals/", "/v1/referrals"),
        (f"/v1/referrals/{rid}/", f"/v1/referrals/{rid}"),
    ):
        response = lpsk.http.request(
            method, path, headers=lpsk.headers(), json={}, follow_redirects=False
        )
        body = assert_problem(response, 404)
        assert "Location" not in response.headers
        assert bare in str(body["detail"])
    # A path that does not exist either way says nothing about slashes.
    assert "detail" not in assert_problem(lpsk.http.get("/v1/nothing/"), 404)
