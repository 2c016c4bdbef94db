"""Shared OpenAPI fragments: problem responses and header parameters."""

from __future__ import annotations

from typing import Any

from service.errors import Problem
from service.referrals.etags import IF_MATCH_PATTERN

_DESCRIPTIONS = {
    400: "Bad request",
    401: "Missing or invalid access token",
    403: "The token lacks the scope, or the caller is the wrong party for this action",
    404: "No such referral visible to the caller's agency",
    408: "The request body did not arrive in time",
    409: "Not allowed in the referral's current state, or a duplicate open referral",
    412: "If-Match does not match the referral's current ETag",
    413: "Request body too large",
    415: "The body is not JSON: send it with Content-Type: application/json",
    422: "Invalid request",
    428: "If-Match header missing",
    429: "Too many requests: the client's quota is used up; retry after Retry-After seconds",
    500: "The service failed to handle the request; the request id names it in the logs",
    503: "The service is busy; retry after Retry-After seconds",
}
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

# A route's `responses`, as FastAPI takes them: status -> its OpenAPI response object.
Responses = dict[int | str, dict[str, Any]]


def problems(*codes: int) -> Responses:
    """Response documentation for these error statuses, each a problem document."""
    return {
        code: {
            "description": _DESCRIPTIONS[code],
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        for code in codes
    }


def add_problem_schemas(spec: dict[str, Any]) -> dict[str, Any]:
    """Register the Problem schema (and what it refers to) under components."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    components = spec.setdefault("components", {}).setdefault("schemas", {})
    components.update(defs)
    components["Problem"] = schema
    return spec


def document_server_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Document the 500 problem document that any operation can answer."""
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method in _METHODS:
                operation.setdefault("responses", {}).setdefault("500", problems(500)[500])
    return spec


_BODY_ERRORS = {
    400: "The body could not be read at all (for example, it is not UTF-8 text)",
    408: "The body did not arrive in full within RUJUKAN_BODY_TIMEOUT_SECONDS",
    413: "Request body over 1 MiB",
    503: (
        "The process already holds RUJUKAN_BODY_BUDGET_BYTES of request bodies; "
        "retry after Retry-After seconds"
    ),
}


def document_body_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Document 400, 408, 413 and 503 on every operation that takes a body.

    The framework answers them before a handler runs, so no route declares them itself.
    """
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            for code, description in _BODY_ERRORS.items():
                documented = {**problems(code)[code], "description": description}
                responses.setdefault(str(code), documented)
    return spec


_QUERY_REFUSAL = "a query parameter the operation does not take, or a single-valued one given twice"


def document_request_shape(spec: dict[str, Any]) -> dict[str, Any]:
    """Document 400 for an undeclared query parameter on every operation, and 415 for a body
    that is not JSON on every operation that takes JSON (service.request_shape)."""
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if "400" in responses:
                given = responses["400"]
                responses["400"] = {
                    **given,
                    "description": f"{given['description']}; or {_QUERY_REFUSAL}",
                }
            else:
                responses["400"] = {
                    **problems(400)[400],
                    "description": _QUERY_REFUSAL[0].upper() + _QUERY_REFUSAL[1:],
                }
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                responses.setdefault("415", problems(415)[415])
    return spec


def document_if_match(spec: dict[str, Any]) -> dict[str, Any]:
    """Give every If-Match parameter the form it takes: `*` or quoted entity tags.

    The handler reads the header itself (service.referrals.etags), so that a value of another
    form gets a 400 explaining the quoted form rather than a bare pattern mismatch.
    """
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter.get("name") == "If-Match":
                    schema = parameter.setdefault("schema", {})
                    # FastAPI writes an optional header as `string | null`; a header is absent
                    # or text, never null (a client generated from `null` would send "null").
                    strings = [
                        b for b in schema.get("anyOf", [schema]) if b.get("type") == "string"
                    ]
                    text = dict(strings[0]) if strings else {"type": "string"}
                    text["pattern"] = IF_MATCH_PATTERN
                    parameter["schema"] = {
                        **{k: v for k, v in schema.items() if k != "anyOf"},
                        **text,
                    }
    return spec
