"""Input that once made the service fail: dates and times at the ends of the calendar, NUL
characters (PostgreSQL text cannot hold them), bodies with thousands of invalid fields. Each
is a 422 problem that names the field, on both databases."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from fastapi.routing import APIRoute
from httpx import Response

from service.errors import MAX_FIELD_ERRORS
from service.inputs import Input
from tests.support import Api, assert_problem, assess_body, ok, referral_body, service_body
from tests.support.hostile import EXTREME_DAYS, EXTREME_TIMES, NUL, opaque


def field_error(response: Response, loc: list[str | int]) -> dict[str, Any]:
    """A 422 problem whose errors name `loc`."""
    problem = assert_problem(response, 422)
    assert loc in [e["loc"] for e in problem["errors"]], problem
    assert NUL not in response.text and "\\u0000" not in response.text
    return problem


def cursor_at(instant: str) -> str:
    """A list cursor as the service makes them, holding this creation time."""
    return opaque(json.dumps([instant, str(uuid.uuid4())]))


def test_statistics_days_outside_the_calendar_are_422(lpsk: Api) -> None:
    for name in ("from", "to"):
        for day in EXTREME_DAYS:
            response = lpsk.http.get("/v1/stats", params={name: day}, headers=lpsk.headers())
            problem = field_error(response, ["query", name])
            assert "1900-01-01" in problem["errors"][0]["msg"]
    # The last day of the range is still a day one can ask up to.
    ok(lpsk.http.get("/v1/stats", params={"from": "1900-01-01", "to": "2999-12-31"},
                     headers=lpsk.headers()))


def test_list_times_outside_the_calendar_are_422(lpsk: Api) -> None:
    lpsk.create_ok()
    for instant in EXTREME_TIMES:
        field_error(lpsk.list(updated_since=instant), ["query", "updated_since"])
        field_error(lpsk.list(cursor=cursor_at(instant)), ["query", "cursor"])
    assert len(ok(lpsk.list(updated_since="1900-01-01T00:00:00+00:00"))["items"]) == 1


@pytest.mark.parametrize("instant", EXTREME_TIMES)
def test_body_times_outside_the_calendar_are_422(lpsk: Api, instant: str) -> None:
    body = referral_body()
    body["consent"]["obtained_at"] = instant
    field_error(lpsk.create(body), ["body", "consent", "obtained_at"])
    rid = lpsk.create_ok()["id"]
    withdrawal = lpsk.act(rid, "consent-withdrawal", {"withdrawn_at": instant}, etag='"1"')
    field_error(withdrawal, ["body", "withdrawn_at"])
    assert ok(lpsk.get(rid))["version"] == 1


@pytest.mark.parametrize("day", EXTREME_DAYS)
def test_birth_dates_outside_the_calendar_are_422(lpsk: Api, day: str) -> None:
    body = referral_body()
    body["subject"].pop("nik")
    body["subject"]["nik_absent_reason"] = "unknown"
    body["subject"]["birth_date"] = day
    field_error(lpsk.create(body), ["body", "subject", "birth_date"])


def _set(body: dict[str, Any], path: tuple[str, ...], value: str) -> dict[str, Any]:
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    "path",
    [
        ("external_ref",),
        ("summary",),
        ("subject", "full_name"),
        ("subject", "address"),
        ("consent", "obtained_by"),
    ],
)
def test_a_nul_character_in_referral_text_is_422(lpsk: Api, path: tuple[str, ...]) -> None:
    body = _set(referral_body(), path, f"LPSK{NUL}2026")
    field_error(lpsk.create(body), ["body", *path])
    assert ok(lpsk.list())["items"] == []


def test_a_nul_character_in_action_and_note_text_is_422(lpsk: Api, kemensos: Api) -> None:
    rid = lpsk.create_ok("KEMENSOS")["id"]
    note = lpsk.http.post(f"/v1/referrals/{rid}/notes", json={"text": f"a{NUL}b"},
                          headers={**lpsk.headers(), "If-Match": '"1"'})
    field_error(note, ["body", "text"])
    assess = kemensos.act(rid, "assess", assess_body(notes=f"x{NUL}"), etag='"1"')
    field_error(assess, ["body", "notes"])
    started = service_body("KEMENSOS", started_at="0001-01-01T00:00:00+07:00")
    field_error(kemensos.act(rid, "serve", started, etag='"1"'), ["body", "started_at"])
    assert ok(lpsk.get(rid))["version"] == 1


def test_a_nul_character_in_a_webhook_subscription_is_422(lpsk: Api) -> None:
    path = "/v1/webhook-subscriptions"
    for field, value in (("description", f"hook{NUL}"), ("url", f"https://93.184.216.34/{NUL}")):
        body = {"url": "https://93.184.216.34/hook", "event_types": ["referral.created"],
                field: value}
        field_error(lpsk.http.post(path, json=body, headers=lpsk.headers()), ["body", field])
    assert ok(lpsk.http.get(path, headers=lpsk.headers())) == []


def test_every_request_body_follows_the_shared_input_rules(app) -> None:  # type: ignore[no-untyped-def]
    """A body model added later gets the NUL, date and unknown-field rules by deriving from
    Input; one that does not would bring the 500s back."""
    routes = [
        route
        for entry in app.routes
        # Included routers keep their routes on the router they came from.
        for route in getattr(getattr(entry, "original_router", None), "routes", [entry])
        if isinstance(route, APIRoute) and route.body_field is not None
    ]
    checked = []
    for route in routes:
        model = route.body_field.field_info.annotation
        candidates = [a for a in getattr(model, "__args__", (model,)) if a is not type(None)]
        if any(isinstance(a, type) and issubclass(a, Input) for a in candidates):
            checked.append(route.path)
        else:
            # Form bodies (the token endpoint) are refused elsewhere; see the token tests.
            assert route.path == "/oauth/token", f"{route.path} takes a body that is not Input"
    assert len(checked) >= 8


def test_a_body_with_many_invalid_fields_lists_fifty_and_counts_them_all(lpsk: Api) -> None:
    body = referral_body()
    for i in range(40):
        body[f"unknown_{i:02d}"] = i
    body["urgency"] = "whenever"
    body["summary"] = ""
    body["subject"].update({f"unknown_{i:02d}": i for i in range(30)})
    problem = assert_problem(lpsk.create(body), 422)
    assert len(problem["errors"]) == MAX_FIELD_ERRORS
    assert problem["error_count"] == 40 + 30 + 2


def test_a_body_of_sixty_thousand_unknown_fields_gets_one_short_error(lpsk: Api) -> None:
    body = referral_body()
    body.update({f"k{i:05d}": 1 for i in range(60_000)})
    response = lpsk.create(body)
    problem = assert_problem(response, 422)
    assert len(response.content) < 10_000
    # One error that counts them, not 60,000 built (which took about a second) and cut down.
    assert len(problem["errors"]) == 1
    assert "60000" in problem["errors"][0]["msg"]


def test_a_nul_character_in_token_request_credentials_is_400(http) -> None:  # type: ignore[no-untyped-def]
    """RFC 6749 §5.2 invalid_request, not a 500 from PostgreSQL."""
    for field in ("client_id", "client_secret", "scope"):
        form = {"grant_type": "client_credentials", "client_id": "lpsk-1", "client_secret": "s"}
        form[field] = f"x{NUL}y"
        problem = assert_problem(http.post("/oauth/token", data=form), 400)
        assert problem["error"] == "invalid_request", field
    basic = base64.b64encode(b"lpsk-%00:secret").decode()
    response = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": f"Basic {basic}"})
    assert assert_problem(response, 400)["error"] == "invalid_request"
