"""The committed OpenAPI document is the one the app serves, and it is usable (CONTRACT §6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.config import Settings

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "openapi" / "openapi.json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PROBLEM_REF = "#/components/schemas/Problem"
EXPECTED_OPERATION_IDS = {
    "create_referral", "get_referral", "list_referrals", "assess_referral", "serve_referral",
    "record_service", "close_referral", "add_note", "list_notes", "get_history", "issue_token",
    "list_agencies", "get_taxonomy",
}


def canonical(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(env="dev")).openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_committed_document_equals_the_generated_one(spec: dict[str, Any]) -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert canonical(committed) == canonical(spec), (
        "openapi/openapi.json is stale: regenerate it with `rujukan openapi export`"
    )


def test_served_document_equals_the_committed_one(http: TestClient) -> None:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert canonical(response.json()) == canonical(committed)


def test_operation_ids_are_the_contract_names(spec: dict[str, Any]) -> None:
    ids = [op.get("operationId") for _, _, op in operations(spec)]
    assert all(ids), "every operation needs an operationId"
    assert set(ids) >= EXPECTED_OPERATION_IDS


def test_operation_ids_are_unique(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_operation_ids_are_readable(spec: dict[str, Any]) -> None:
    for _, _, op in operations(spec):
        op_id = op["operationId"]
        assert op_id.isidentifier() and op_id == op_id.lower(), op_id
        assert len(op_id) <= 40, op_id


def test_every_operation_has_summary_and_description(spec: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, method, op in operations(spec)
        if not op.get("summary", "").strip() or not op.get("description", "").strip()
    ]
    assert missing == []


def _documents_problem(op: dict[str, Any], status: str) -> bool:
    response = op.get("responses", {}).get(status)
    if response is None:
        return False
    content = response.get("content", {})
    schema = content.get("application/problem+json", {}).get("schema", {})
    return schema.get("$ref") == PROBLEM_REF


def test_every_v1_operation_documents_401_as_a_problem(spec: dict[str, Any]) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, method, op in operations(spec)
        if path.startswith("/v1") and not _documents_problem(op, "401")
    ]
    assert missing == []


def test_every_v1_operation_with_input_documents_422_as_a_problem(spec: dict[str, Any]) -> None:
    """Where a request can be invalid (parameters or a body), 422 is a documented problem.

    GET /v1/agencies and /v1/taxonomy take no input at all, so they cannot answer 422.
    """
    missing = [
        f"{method.upper()} {path}"
        for path, method, op in operations(spec)
        if path.startswith("/v1")
        and (op.get("parameters") or op.get("requestBody"))
        and not _documents_problem(op, "422")
    ]
    assert missing == []


def test_every_operation_with_a_body_documents_400_and_413(spec: dict[str, Any]) -> None:
    """A body that cannot be decoded (not UTF-8) is answered 400, an oversized one 413.

    Found by fuzzing: both answers came from the framework and were in no operation's spec.
    """
    missing = [
        f"{method.upper()} {path} {code}"
        for path, method, op in operations(spec)
        if op.get("requestBody")
        for code in ("400", "413")
        if code not in op["responses"]
    ]
    assert missing == []


def test_every_v1_operation_is_bearer_protected(spec: dict[str, Any]) -> None:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    bearer = {name for name, s in schemes.items()
              if s.get("type") == "http" and s.get("scheme", "").lower() == "bearer"}
    assert bearer
    for path, method, op in operations(spec):
        if path.startswith("/v1"):
            names = {name for requirement in op.get("security", []) for name in requirement}
            assert names & bearer, f"{method.upper()} {path}"


def test_error_responses_use_the_problem_schema_not_fastapis(spec: dict[str, Any]) -> None:
    """Generated clients must not expect FastAPI's HTTPValidationError shape."""
    assert "HTTPValidationError" not in json.dumps(spec)
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status"} <= set(problem["required"])
    for path, method, op in operations(spec):
        for status, response in op.get("responses", {}).items():
            if status.startswith("4"):
                assert "application/problem+json" in response.get("content", {}), (
                    f"{method.upper()} {path} {status}"
                )


def test_token_endpoint_is_documented(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/oauth/token"]["post"]
    assert op["operationId"] == "issue_token"
    form = op["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    if "$ref" in form:
        name = form["$ref"].rsplit("/", 1)[-1]
        form = spec["components"]["schemas"][name]
    assert {"grant_type", "client_id", "client_secret", "scope"} <= set(form["properties"])
    assert _documents_problem(op, "400") and _documents_problem(op, "401")
