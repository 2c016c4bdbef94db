"""Every operation of the committed OpenAPI document is complete enough to generate a client from.

The checks walk the whole document, so an operation added later without a summary, a
description, its problem responses or a request example fails here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

REPO = Path(__file__).resolve().parents[2]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PROBLEM_REF = "#/components/schemas/Problem"
# Every error, the readiness probe's 503 included, is a problem document (CONTRACT §7).
NOT_PROBLEMS: set[tuple[str, str, str]] = set()


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads((REPO / "openapi" / "openapi.json").read_text(encoding="utf-8"))


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def _schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]  # type: ignore[no-any-return]
    return schema


def _examples(spec: dict[str, Any], media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    found += [e["value"] for e in media.get("examples", {}).values() if "value" in e]
    schema = media.get("schema", {})
    # An optional body is `anyOf: [its schema, null]`: the object's examples count.
    for branch in [schema, *schema.get("anyOf", [])]:
        resolved = _schema(spec, branch)
        found += list(resolved.get("examples", []))
        if "example" in resolved:
            found.append(resolved["example"])
    return found


def test_document_validates_against_the_openapi_specification(spec: dict[str, Any]) -> None:
    validate(spec)


def test_every_operation_is_complete(spec: dict[str, Any]) -> None:
    gaps: list[str] = []
    for method, path, op in operations(spec):
        name = f"{method} {path}"
        if not op.get("summary", "").strip():
            gaps.append(f"{name}: no summary")
        if not op.get("description", "").strip():
            gaps.append(f"{name}: no description")
        responses = op.get("responses", {})
        errors = {s: r for s, r in responses.items() if s[0] in "45"}
        if not errors:
            gaps.append(f"{name}: no error responses")
        for status, response in errors.items():
            if (method, path, status) in NOT_PROBLEMS:
                continue
            content = response.get("content", {})
            schema = content.get("application/problem+json", {}).get("schema", {})
            if schema.get("$ref") != PROBLEM_REF or set(content) != {"application/problem+json"}:
                gaps.append(f"{name}: {status} is not only a problem document")
        needed = {"500"}
        if op.get("security"):
            needed |= {"401", "403", "429"}
        parameters = op.get("parameters", [])
        if any(p["in"] == "path" for p in parameters):
            needed.add("404")
        if parameters or op.get("requestBody"):
            needed.add("422")
        for status in sorted(needed - set(responses)):
            gaps.append(f"{name}: {status} not documented")
        for media_type, media in op.get("requestBody", {}).get("content", {}).items():
            if not _examples(spec, media):
                gaps.append(f"{name}: {media_type} request body has no example")
    assert gaps == []


def test_request_examples_match_their_schemas(spec: dict[str, Any]) -> None:
    checked = 0
    for method, path, op in operations(spec):
        for media in op.get("requestBody", {}).get("content", {}).values():
            schema = {**media["schema"], "components": spec["components"]}
            for example in _examples(spec, media):
                errors = [e.message for e in OAS31Validator(schema).iter_errors(example)]
                assert errors == [], f"{method} {path}: {errors}"
                checked += 1
    assert checked >= 8


def test_bearer_scheme_is_what_generated_clients_send(spec: dict[str, Any]) -> None:
    """Both schemes end in the same header: a pasted bearer token, or one that the OAuth 2.0
    client-credentials flow fetched (Swagger UI's Authorize button, generated clients)."""
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} == {"http", "oauth2"}
    assert {s["scheme"].lower() for s in schemes.values() if s["type"] == "http"} == {"bearer"}
    flows = [s["flows"] for s in schemes.values() if s["type"] == "oauth2"]
    assert [set(f) for f in flows] == [{"clientCredentials"}]
