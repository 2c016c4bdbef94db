"""Scopes (CONTRACT §3): a valid token without the scope an operation needs gets 403."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from service.auth.scopes import ALL_SCOPES
from tests.support import Api, assess_body, referral_body, service_body

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

READ, WRITE, ASSESS, SERVE, CLOSE = (
    "referrals:read", "referrals:write", "referrals:assess", "referrals:serve", "referrals:close"
)


@dataclass(frozen=True)
class Case:
    """One operation: who calls it, on a referral in which state, and the scope it needs."""

    name: str
    method: str
    path: str  # `{id}` is the referral's id
    scope: str
    actor: str = "LPSK"  # LPSK sends to KEMENSOS in every case
    state: str | None = "referred"  # None: no referral needed
    body: dict[str, Any] | None = None
    if_match: bool = False
    extra: dict[str, str] = field(default_factory=dict)


CASES = [
    Case("list referrals", "GET", "/v1/referrals", READ, state=None),
    Case("get referral", "GET", "/v1/referrals/{id}", READ),
    Case("get referral as receiver", "GET", "/v1/referrals/{id}", READ, actor="KEMENSOS"),
    Case("history", "GET", "/v1/referrals/{id}/history", READ),
    Case("list notes", "GET", "/v1/referrals/{id}/notes", READ, actor="KEMENSOS"),
    Case("agencies", "GET", "/v1/agencies", READ, state=None),
    Case("taxonomy", "GET", "/v1/taxonomy", READ, state=None),
    Case("create", "POST", "/v1/referrals", WRITE, state=None, body={}),
    Case("note by sender", "POST", "/v1/referrals/{id}/notes", WRITE, body={"text": "hello"}),
    Case("note by receiver", "POST", "/v1/referrals/{id}/notes", WRITE, actor="KEMENSOS",
         body={"text": "hello"}),
    Case("assess", "POST", "/v1/referrals/{id}/assess", ASSESS, actor="KEMENSOS",
         body=assess_body(), if_match=True),
    Case("serve", "POST", "/v1/referrals/{id}/serve", SERVE, actor="KEMENSOS",
         state="assessed", body=service_body(), if_match=True),
    Case("record service", "POST", "/v1/referrals/{id}/services", SERVE, actor="KEMENSOS",
         state="served", body=service_body(), if_match=True),
    Case("close completed", "POST", "/v1/referrals/{id}/close", CLOSE, actor="KEMENSOS",
         state="served", body={"outcome": "completed"}, if_match=True),
    Case("close declined", "POST", "/v1/referrals/{id}/close", CLOSE, actor="KEMENSOS",
         body={"outcome": "declined", "reason": "OUTSIDE_MANDATE"}, if_match=True),
    Case("close unreachable", "POST", "/v1/referrals/{id}/close", CLOSE, actor="KEMENSOS",
         state="assessed", body={"outcome": "unreachable"}, if_match=True),
    Case("close deceased", "POST", "/v1/referrals/{id}/close", CLOSE, actor="KEMENSOS",
         body={"outcome": "deceased"}, if_match=True),
    Case("close referred onward", "POST", "/v1/referrals/{id}/close", CLOSE, actor="KEMENSOS",
         state="assessed", body={"outcome": "referred_onward", "onward_agency": "KEMENHAM"},
         if_match=True),
    Case("close withdrawn", "POST", "/v1/referrals/{id}/close", WRITE,
         body={"outcome": "withdrawn"}, if_match=True),
]


def everything_but(scope: str) -> str:
    return " ".join(s for s in ALL_SCOPES if s != scope)


def prepare(case: Case, lpsk: Api, kemensos: Api) -> dict[str, Any] | None:
    """A referral from LPSK to KEMENSOS in the case's state (full-scope tokens)."""
    if case.state is None:
        return None
    referral = lpsk.create_ok("KEMENSOS")
    steps = {"assessed": ["assess"], "served": ["assess", "serve"]}.get(case.state, [])
    for step in steps:
        body = assess_body() if step == "assess" else service_body()
        response = kemensos.act(referral["id"], step, body)
        assert response.status_code == 200, response.text
    current = lpsk.get(referral["id"])
    assert current.json()["status"] == case.state
    return current.json()  # type: ignore[no-any-return]


def perform(
    case: Case, api: Api, referral: dict[str, Any] | None, etag: str | None
) -> Response:
    path = case.path.replace("{id}", referral["id"] if referral else "")
    headers = api.headers(**case.extra)
    if case.if_match and etag:
        headers["If-Match"] = etag
    if case.method == "GET":
        return api.http.get(path, headers=headers)
    body = case.body
    if case.name == "create":
        body = referral_body("KEMENSOS")
    return api.http.post(path, json=body, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_token_without_the_scope_is_forbidden(
    case: Case, lpsk: Api, kemensos: Api, http: TestClient
) -> None:
    referral = prepare(case, lpsk, kemensos)
    etag = lpsk.get(referral["id"]).headers["ETag"] if referral else None
    notes_before = (
        lpsk.http.get(f"/v1/referrals/{referral['id']}/notes", headers=lpsk.headers()).json()
        if referral else None
    )
    actor = {"LPSK": lpsk, "KEMENSOS": kemensos}[case.actor].with_scope(everything_but(case.scope))

    response = perform(case, actor, referral, etag)

    assert response.status_code == 403, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 403
    assert body["type"] and body["title"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert 'error="insufficient_scope"' in challenge
    assert case.scope in challenge

    # Nothing happened.
    if referral is None:
        if case.method == "POST":
            assert lpsk.list().json()["items"] == []
        return
    after = lpsk.get(referral["id"])
    assert after.headers["ETag"] == etag
    assert after.json()["status"] == referral["status"]
    notes = lpsk.http.get(f"/v1/referrals/{referral['id']}/notes", headers=lpsk.headers())
    assert notes.json() == notes_before
    if case.body and case.body.get("outcome") == "referred_onward":
        assert all(item["to_agency"] != "KEMENHAM" for item in kemensos.list().json()["items"])


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.method == "GET"] + [
        c for c in CASES if c.name in ("create", "assess", "note by receiver", "close withdrawn")
    ],
    ids=lambda c: c.name,
)
def test_the_needed_scope_is_enough(
    case: Case, lpsk: Api, kemensos: Api, http: TestClient
) -> None:
    """A token with only the operation's scope (and read, to see the referral) is let in."""
    referral = prepare(case, lpsk, kemensos)
    etag = lpsk.get(referral["id"]).headers["ETag"] if referral else None
    scope = case.scope if case.scope == READ else f"{case.scope} {READ}"
    actor = {"LPSK": lpsk, "KEMENSOS": kemensos}[case.actor].with_scope(scope)
    response = perform(case, actor, referral, etag)
    assert response.status_code in (200, 201), response.text


def test_read_only_token_cannot_write(lpsk: Api) -> None:
    reader = lpsk.with_scope(READ)
    assert reader.list().status_code == 200
    refused = reader.create(referral_body("KEMENSOS"))
    assert refused.status_code == 403, refused.text
    assert "insufficient_scope" in refused.headers["WWW-Authenticate"]
