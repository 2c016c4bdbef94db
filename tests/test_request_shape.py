"""Every operation takes only the query parameters and the body format it declares (CONTRACT
§7): an unknown or repeated query parameter gets 400 naming it, a body that is not JSON 415."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import openapi_spec
from tests.support import Api, assert_problem, ok, referral_body

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

_METHODS = ("get", "post", "delete")
# Fixed, so that every test worker collects the same tests.
NO_SUCH_ID = str(uuid.UUID(int=1))


def _operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """Every operation of the served document: method, a concrete path, the operation."""
    for template, item in openapi_spec()["paths"].items():
        path = template
        for name in [p for p in template.split("/") if p.startswith("{")]:
            path = path.replace(name, NO_SUCH_ID)
        for method in _METHODS:
            if method in item:
                yield method.upper(), path, item[method]


OPERATIONS = sorted(_operations(), key=lambda op: (op[1], op[0]))
JSON_BODIES = [
    (method, path)
    for method, path, operation in OPERATIONS
    if "application/json" in operation.get("requestBody", {}).get("content", {})
]


def test_the_operations_taking_json_are_found_in_the_document() -> None:
    # The 415 test below is parametrized over this list: an empty one would skip, not fail.
    assert ("POST", "/v1/referrals") in JSON_BODIES
    assert any(m == "POST" and p.endswith("/assess") for m, p in JSON_BODIES)
    assert len(JSON_BODIES) >= 5


def test_a_misspelt_filter_gets_400_naming_it_instead_of_the_whole_inbox(lpsk: Api) -> None:
    lpsk.create_ok()
    problem = assert_problem(lpsk.list(stauts="referred"), 400)
    assert "'stauts'" in problem["detail"]
    assert "Did you mean 'status'?" in problem["detail"]
    # The answer names what the operation does take.
    assert "status" in problem["detail"] and "updated_since" in problem["detail"]


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _ in OPERATIONS])
def test_every_operation_refuses_an_undeclared_query_parameter(
    lpsk: Api, method: str, path: str
) -> None:
    response = lpsk.http.request(
        method, path, params={"stauts": "referred"}, headers=lpsk.headers(), json={}
    )
    problem = assert_problem(response, 400)
    assert "'stauts'" in problem["detail"]


def test_a_declared_parameter_is_still_taken_and_several_unknown_ones_are_all_named(
    lpsk: Api,
) -> None:
    created = lpsk.create_ok()
    assert [i["id"] for i in ok(lpsk.list(status="referred", limit="5"))["items"]] == [
        created["id"]
    ]
    problem = assert_problem(lpsk.list(status="referred", foo="1", bar="2"), 400)
    assert "'foo'" in problem["detail"] and "'bar'" in problem["detail"]
    problem = assert_problem(lpsk.http.get("/healthz?verbose=1"), 400)
    assert "takes no query parameters" in problem["detail"]


def test_a_single_valued_parameter_given_twice_gets_400(lpsk: Api) -> None:
    response = lpsk.http.get("/v1/referrals?status=referred&status=closed", headers=lpsk.headers())
    problem = assert_problem(response, 400)
    assert "'status'" in problem["detail"] and "2 times" in problem["detail"]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        None,
    ],
)
def test_a_body_that_is_not_json_gets_415_naming_json(lpsk: Api, content_type: str | None) -> None:
    headers = lpsk.headers()
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = lpsk.http.post("/v1/referrals", content=b"to_agency=KEMENSOS", headers=headers)
    problem = assert_problem(response, 415)
    assert "application/json" in problem["detail"]
    assert response.headers["Accept-Post"] == "application/json"
    assert ok(lpsk.list())["items"] == []


@pytest.mark.parametrize(("method", "path"), JSON_BODIES)
def test_every_json_operation_answers_415_to_a_form(lpsk: Api, method: str, path: str) -> None:
    response = lpsk.http.request(
        method,
        path,
        content=b"a=1",
        headers={**lpsk.headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 415)


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.rujukan+json"],
)
def test_json_media_types_are_taken(lpsk: Api, content_type: str) -> None:
    response = lpsk.http.post(
        "/v1/referrals",
        json=referral_body(),
        headers={**lpsk.headers(), "Content-Type": content_type},
    )
    ok(response, 201)


def test_an_action_without_a_body_still_gets_its_422(lpsk: Api) -> None:
    rid = lpsk.create_ok()["id"]
    response = lpsk.http.post(f"/v1/referrals/{rid}/notes", headers=lpsk.headers())
    assert_problem(response, 422)


def test_the_problems_are_documented(http: TestClient) -> None:
    spec = http.get("/openapi.json").json()
    create = spec["paths"]["/v1/referrals"]["post"]["responses"]
    assert "415" in create
    assert (
        "query parameter"
        in spec["paths"]["/v1/referrals"]["get"]["responses"]["400"]["description"]
    )


def test_the_refusals_answer_in_indonesian_with_the_same_types(lpsk: Api) -> None:
    headers = {**lpsk.headers(), "Accept-Language": "id"}
    response = lpsk.http.get("/v1/referrals?stauts=referred", headers=headers)
    problem = assert_problem(response, 400)
    assert response.headers["Content-Language"] == "id"
    assert problem["type"] == "urn:rujukan:problem:invalid-query-parameter"
    assert problem["title"] == "Parameter kueri tidak diterima"
    assert problem["detail"].startswith("Operasi ini tidak memiliki parameter kueri 'stauts'.")
    assert "Apakah yang Anda maksud 'status'?" in problem["detail"]
    response = lpsk.http.post(
        "/v1/referrals", content=b"x", headers={**headers, "Content-Type": "text/plain"}
    )
    problem = assert_problem(response, 415)
    assert problem["type"] == "urn:rujukan:problem:unsupported-media-type"
    assert problem["detail"] == (
        "Operasi ini menerima badan JSON: kirim Content-Type: application/json, bukan "
        "'text/plain'."
    )
