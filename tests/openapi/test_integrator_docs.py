"""The OpenAPI document alone is enough to integrate: how to authorize and with which scope,
what each error looks like, which headers are required, and readable type names.

Each check walks the whole served document, so a route added later is held to it too.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute, APIRouter
from fastapi.testclient import TestClient

import service.app
from service.app import create_app
from service.auth import scopes
from service.config import Settings
from service.errors import PROBLEM_TYPE_BASE
from tests.support import Api, assess_body, referral_body

METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(env="dev")).openapi()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), path, op


def _oauth2(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    schemes = spec["components"]["securitySchemes"]
    (found,) = [(n, s) for n, s in schemes.items() if s["type"] == "oauth2"]
    return found


# ---- Authorize with client credentials ------------------------------------------------------


def test_client_credentials_flow_points_at_the_token_endpoint(spec: dict[str, Any]) -> None:
    _, scheme = _oauth2(spec)
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/oauth/token"
    assert "/oauth/token" in spec["paths"]
    # Every scope of the contract, each with a description of its own.
    assert set(flow["scopes"]) == set(scopes.ALL_SCOPES)
    assert all(len(text) > 20 for text in flow["scopes"].values())
    assert len(set(flow["scopes"].values())) == len(flow["scopes"])


def _route_scopes() -> dict[tuple[str, str], set[str]]:
    """What each route demands, read from its dependencies (not from the document)."""
    routers = [r for r in vars(service.app).values() if isinstance(r, APIRouter)]
    found: dict[tuple[str, str], set[str]] = {}
    for route in (route for router in routers for route in router.routes):
        if not isinstance(route, APIRoute):
            continue
        names = {getattr(call, "__name__", "") for call in _calls(route.dependant)}
        for method in route.methods:
            found[(method, route.path)] = {
                s for s in scopes.ALL_SCOPES if f"require_{s.replace(':', '_')}" in names
            }
    return found


def _calls(dependant: Any) -> Iterator[Any]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def test_every_v1_operation_names_the_scopes_it_needs(spec: dict[str, Any]) -> None:
    name, _ = _oauth2(spec)
    demanded = _route_scopes()
    for method, path, op in operations(spec):
        if not path.startswith("/v1"):
            continue
        oauth = [r[name] for r in op.get("security", []) if name in r]
        assert oauth and all(len(s) == 1 for s in oauth), f"{method} {path}: {op.get('security')}"
        documented = {s for requirement in oauth for s in requirement}
        if demanded[(method, path)]:
            assert documented == demanded[(method, path)], f"{method} {path}"
        # A pasted bearer token works as well: an alternative, never a second requirement.
        assert {"HTTPBearer": []} in op["security"], f"{method} {path}"
    # Every /v1 route's scope was found, so each was compared above; close alone decides its
    # scope by the outcome (tested below).
    unresolved = {k for k, v in demanded.items() if not v and k[1].startswith("/v1")}
    assert unresolved == {("POST", "/v1/referrals/{referral_id}/close")}


def test_close_documents_each_scope_its_outcomes_need(spec: dict[str, Any]) -> None:
    op = spec["paths"]["/v1/referrals/{referral_id}/close"]["post"]
    assert {"OAuth2": ["referrals:close"]} in op["security"]
    assert {"OAuth2": ["referrals:write"]} in op["security"]  # withdrawn, by the sender
    assert "x-any-scope-of" not in json.dumps(spec)


def test_scope_in_the_document_is_the_scope_the_server_demands(
    spec: dict[str, Any], lpsk: Api, kemensos: Api
) -> None:
    """A token with every scope but the documented one is refused with 403 naming it."""
    created = lpsk.create_ok()
    op = spec["paths"]["/v1/referrals/{referral_id}/assess"]["post"]
    (scope,) = [r["OAuth2"] for r in op["security"] if "OAuth2" in r][0]
    others = " ".join(s for s in scopes.ALL_SCOPES if s != scope)
    refused = kemensos.with_scope(others).act(
        created["id"], "assess", assess_body(), etag='"1"'
    )
    assert refused.status_code == 403 and scope in refused.json()["detail"]


# ---- Error examples -------------------------------------------------------------------------


def _nulls(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_nulls(v) for v in value.values())
    if isinstance(value, list):
        return any(_nulls(v) for v in value)
    return False


def test_every_error_response_shows_an_example_of_its_own_status(spec: dict[str, Any]) -> None:
    seen: dict[str, set[str]] = {}
    for method, path, op in operations(spec):
        for status, response in op["responses"].items():
            if status[0] not in "45":
                continue
            media = response["content"]["application/problem+json"]
            example = media.get("example")
            name = f"{method} {path} {status}"
            assert isinstance(example, dict), f"{name}: no example"
            assert example["status"] == int(status), name
            assert not _nulls(example), f"{name}: {example}"
            assert example["title"] and example["detail"], name
            assert example["type"].startswith(PROBLEM_TYPE_BASE) or example["type"] == (
                "about:blank"
            ), name
            seen.setdefault(status, set()).add(example["type"])
    assert {"urn:rujukan:problem:unauthorized", "urn:rujukan:problem:oauth-invalid-client"} == (
        seen["401"]
    )
    assert seen["404"] == {"urn:rujukan:problem:not-found"}
    assert seen["428"] == {"urn:rujukan:problem:precondition-required"}
    assert seen["412"] == {"urn:rujukan:problem:precondition-failed"}
    assert seen["429"] == {"urn:rujukan:problem:quota-exceeded"}
    assert "urn:rujukan:problem:not-ready" in seen["503"]


def test_error_examples_carry_what_their_status_promises(spec: dict[str, Any]) -> None:
    assess = spec["paths"]["/v1/referrals/{referral_id}/assess"]["post"]["responses"]

    def example(status: str) -> dict[str, Any]:
        return assess[status]["content"]["application/problem+json"]["example"]  # type: ignore[no-any-return]

    assert example("409")["type"] == "urn:rujukan:problem:invalid-transition"
    assert example("409")["current_status"] == "referred"
    invalid = example("422")
    assert invalid["errors"] and invalid["error_count"] == len(invalid["errors"])
    assert set(invalid["errors"][0]) == {"loc", "msg", "type"}
    assert example("429")["violated-policies"]
    assert example("403")["type"] == "urn:rujukan:problem:insufficient-scope"


def test_an_error_example_is_what_the_server_answers(spec: dict[str, Any], lpsk: Api) -> None:
    """The documented 404 and 428 have the shape of the real answers, member for member."""
    created = lpsk.create_ok()
    paths = spec["paths"]
    missing = lpsk.get(str(uuid.uuid4()))
    documented = paths["/v1/referrals/{referral_id}"]["get"]["responses"]["404"]
    assert documented["content"]["application/problem+json"]["example"] == missing.json()
    unconditional = lpsk.act(
        created["id"], "close", {"outcome": "withdrawn"}, etag=None
    )
    assert unconditional.status_code == 428
    documented = paths["/v1/referrals/{referral_id}/close"]["post"]["responses"]["428"]
    assert documented["content"]["application/problem+json"]["example"] == unconditional.json()


# ---- If-Match -------------------------------------------------------------------------------


def _if_match(op: dict[str, Any]) -> dict[str, Any] | None:
    found = [p for p in op.get("parameters", []) if p["name"].lower() == "if-match"]
    return found[0] if found else None


def _call(http: TestClient, token: str, method: str, path: str, body: Any) -> int:
    return http.request(
        method, path, json=body, headers={"Authorization": f"Bearer {token}"}
    ).status_code


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def test_if_match_is_required_exactly_where_the_server_answers_428(
    spec: dict[str, Any], http: TestClient, lpsk: Api, kemensos: Api
) -> None:
    checked = {True: 0, False: 0}
    bodies = {
        "assess": assess_body(),
        "close": {"outcome": "withdrawn"},
        "consent-withdrawal": {"withdrawn_at": _now(), "notes": "By phone."},
        "notes": {"text": "Called the family."},
    }
    for method, path, op in operations(spec):
        parameter = _if_match(op)
        if parameter is None:
            continue
        required = parameter["required"]
        assert ("428" in op["responses"]) is required, f"{method} {path}"
        assert "null" not in json.dumps(parameter["schema"]) or not required, path
        action = path.rsplit("/", 1)[-1]
        body = bodies.get(action)
        if body is None:
            continue  # serve and services: checked through the same route helper below
        referral = lpsk.create_ok()
        # The sender acts where it may (withdraw, notes); the receiver assesses.
        party = kemensos if action == "assess" else lpsk
        status = _call(
            http, party.token, method, path.replace("{referral_id}", referral["id"]), body
        )
        if required:
            assert status == 428, f"{method} {path}: {status}"
        else:
            assert status in (200, 201), f"{method} {path}: {status}"
        checked[required] += 1
    assert checked[True] >= 3 and checked[False] >= 1


def test_serving_without_if_match_is_refused_as_documented(
    spec: dict[str, Any], lpsk: Api, kemensos: Api
) -> None:
    from tests.support import service_body

    referral = lpsk.create_ok()
    assessed = kemensos.act(referral["id"], "assess", assess_body(), etag='"1"')
    assert assessed.status_code == 200
    for path in ("serve", "services"):
        op = spec["paths"][f"/v1/referrals/{{referral_id}}/{path}"]["post"]
        parameter = _if_match(op)
        assert parameter is not None and parameter["required"] is True
    refused = kemensos.act(referral["id"], "serve", service_body(), etag=None)
    assert refused.status_code == 428


# ---- Named enumerations ---------------------------------------------------------------------


def _inline_enums(node: Any, where: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        if "enum" in node:
            yield where
        for key, value in node.items():
            yield from _inline_enums(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _inline_enums(value, f"{where}/{i}")


def test_no_enum_is_written_inline(spec: dict[str, Any]) -> None:
    """Every list of values is one named schema; a client generator names its type after it."""
    named = {
        name for name, schema in spec["components"]["schemas"].items() if "enum" in schema
    }
    inline = [
        w
        for w in _inline_enums({k: v for k, v in spec.items() if k != "components"})
    ] + [
        f"/components/schemas/{name}{w}"
        for name, schema in spec["components"]["schemas"].items()
        for w in _inline_enums(schema)
        if not (name in named and w == "")
    ]
    assert inline == []
    assert {"Sex", "ReferralDirection", "ReferralStatus", "Urgency", "EventType"} <= named
    for name in named:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", name), name


def test_nullable_enums_refer_to_their_named_schema(spec: dict[str, Any]) -> None:
    sex = spec["components"]["schemas"]["SubjectIn"]["properties"]["sex"]
    assert {"$ref": "#/components/schemas/Sex"} in sex["anyOf"]
    assert {"type": "null"} in sex["anyOf"]
    direction = [
        p for p in spec["paths"]["/v1/referrals"]["get"]["parameters"] if p["name"] == "direction"
    ][0]
    assert {"$ref": "#/components/schemas/ReferralDirection"} in direction["schema"]["anyOf"]


def test_the_same_values_are_one_schema_wherever_used(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    # Stats and the referral list filter by the same direction.
    assert text.count('"#/components/schemas/ReferralDirection"') >= 3
    assert referral_body()["urgency"] in spec["components"]["schemas"]["Urgency"]["enum"]


def test_the_document_is_the_same_whatever_language_first_asked_for_it(
    spec: dict[str, Any], ctx: Any
) -> None:
    """The examples are built once, in the code's language, even when the request that built
    the document asked for Indonesian (problem documents themselves are translated)."""
    with TestClient(create_app(ctx=ctx)) as fresh:
        served = fresh.get("/openapi.json", headers={"Accept-Language": "id"}).json()
    assert json.dumps(served, sort_keys=True) == json.dumps(spec, sort_keys=True)
