"""Shared OpenAPI fragments: problem responses and header parameters."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.exceptions import HTTPException

from service import bodies, errors
from service.auth import scopes
from service.auth.scopes import ANY_SCOPE_OF
from service.errors import Problem
from service.i18n import N_, SOURCE_LANGUAGE, msg
from service.referrals import etags
from service.referrals.etags import IF_MATCH_PATTERN
from service.request_shape import not_json

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


def problem_example(error: errors.DomainError | HTTPException) -> dict[str, Any]:
    """The problem document the service answers for this error, exactly as it is sent (in
    the language of the code, whatever the language of the request that built the document)."""
    if isinstance(error, errors.DomainError):
        response = errors.domain_problem(error, language=SOURCE_LANGUAGE)
    else:
        response = errors.http_problem(error, language=SOURCE_LANGUAGE)
    document: dict[str, Any] = json.loads(bytes(response.body))
    return document


def _rate_limited() -> errors.DomainError:
    from service.ratelimit import example_quota, quota_exceeded  # imports this module

    return quota_exceeded(example_quota())


# For each status, an error the service really raises with it: the example shown in the
# document is what the service's one error handler makes of it.
_SAMPLE_ERRORS: dict[int, Callable[[], errors.DomainError | HTTPException]] = {
    # What the framework answers for a body it cannot read (see document_body_errors).
    400: lambda: HTTPException(400, "There was an error parsing the body"),
    401: lambda: errors.Unauthorized(msg("The access token is not valid: claims are incomplete.")),
    403: lambda: errors.InsufficientScope(scopes.ASSESS),
    404: lambda: errors.NotFound(msg("No referral with this id is visible to your agency.")),
    408: lambda: bodies.too_slow(30.0),
    409: lambda: errors.InvalidTransition(
        msg("cannot {action} a referral that is {status}", action="serve", status="referred"),
        current_status="referred",
    ),
    412: lambda: etags.precondition_failed(etags.Precondition(frozenset({2})), 3, "assessed"),
    413: bodies.too_large,
    422: lambda: errors.ValidationFailed(
        N_("One or more fields are invalid."),
        [
            {
                "loc": ["body", "subject", "nik"],
                "msg": N_("NIK must be exactly sixteen digits"),
                "type": "value_error",
            }
        ],
    ),
    415: lambda: not_json("text/plain"),
    428: etags.precondition_required,
    429: _rate_limited,
    500: lambda: HTTPException(500, errors.UNEXPECTED_ERROR),
    503: bodies.budget_spent,
}


def _sample_error(code: int) -> errors.DomainError | HTTPException:
    sample = _SAMPLE_ERRORS.get(code)
    # A status without a sample of its own still gets a problem document of that status.
    return sample() if sample is not None else HTTPException(code)


def problems(
    *codes: int, examples: Mapping[int, errors.DomainError | HTTPException] | None = None
) -> Responses:
    """Response documentation for these error statuses, each a problem document with an
    example of its own status (from `examples`, else a usual error of that status)."""
    return {
        code: {
            "description": _DESCRIPTIONS[code],
            "content": {
                "application/problem+json": {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "example": problem_example(
                        (examples or {}).get(code) or _sample_error(code)
                    ),
                }
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


def require_if_match(spec: dict[str, Any]) -> dict[str, Any]:
    """Mark `If-Match` required on every operation that answers 428 without it.

    The handlers take the header as optional so that its absence is the documented 428 problem,
    not a 422; the document says what a client must send.
    """
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS or "428" not in operation.get("responses", {}):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "header" and parameter["name"].lower() == "if-match":
                    parameter["required"] = True
                    schema = parameter.get("schema", {})
                    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
                    if branches:
                        schema.update(branches[0])
    return spec


def tidy_security(spec: dict[str, Any]) -> dict[str, Any]:
    """Each operation's security requirements once each, scopes only on OAuth2 ones, and one
    OAuth2 requirement per scope where a route needs any one of several (`any_scope_of`)."""
    schemes = spec.get("components", {}).get("securitySchemes", {})
    for item in spec.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _METHODS or "security" not in operation:
                continue
            alternatives = operation.pop(ANY_SCOPE_OF, None)
            tidy: list[dict[str, list[str]]] = []
            for requirement in operation["security"]:
                for name, needed in requirement.items():
                    oauth2 = schemes.get(name, {}).get("type") == "oauth2"
                    if oauth2 and alternatives:
                        choices = [{name: [scope]} for scope in alternatives]
                    else:
                        choices = [{name: needed if oauth2 else []}]
                    tidy += [c for c in choices if c not in tidy]
            # The client-credentials scheme first: it is how a client gets its token.
            tidy.sort(key=lambda r: all(schemes.get(n, {}).get("type") != "oauth2" for n in r))
            operation["security"] = tidy
    return spec
