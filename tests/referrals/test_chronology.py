"""Event times a request carries make sense against the referral's own history: a service
does not start before the referral was made or assessed, consent is not withdrawn before it
was given, and nothing reported has happened in the future."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from service.times import MAX_CLOCK_SKEW
from tests.support import Api, assert_problem, assess_body, ok, referral_body, service_body, ts

WIB = dt.timezone(dt.timedelta(hours=7))


def _errors_at(problem: dict[str, Any], field: str) -> list[str]:
    return [e["msg"] for e in problem["errors"] if e["loc"] == ["body", field]]


def _assessed(lpsk: Api, kemensos: Api) -> dict[str, Any]:
    rid = lpsk.create_ok()["id"]
    return ok(kemensos.act(rid, "assess", assess_body()))  # type: ignore[no-any-return]


def test_a_service_started_in_2020_on_a_referral_made_this_week_is_refused(
    lpsk: Api, kemensos: Api
) -> None:
    referral = _assessed(lpsk, kemensos)
    body = service_body(started_at="2020-03-02T08:00:00+07:00")
    problem = assert_problem(kemensos.act(referral["id"], "serve", body), 422)
    (message,) = _errors_at(problem, "started_at")
    # It names the step it skips, with that step's time in UTC.
    assessed_at = referral["assessment"]["assessed_at"]
    assert message == f"is before the referral was assessed ({assessed_at})"
    assert assessed_at.endswith("Z")
    assert ok(lpsk.get(referral["id"]))["status"] == "assessed"


def test_a_service_cannot_start_before_its_assessment(lpsk: Api, kemensos: Api) -> None:
    referral = _assessed(lpsk, kemensos)
    before = ts(referral["assessment"]["assessed_at"]) - MAX_CLOCK_SKEW - dt.timedelta(minutes=1)
    body = service_body(started_at=before.astimezone(WIB).isoformat())
    problem = assert_problem(kemensos.act(referral["id"], "serve", body), 422)
    assert _errors_at(problem, "started_at") == [
        f"is before the referral was assessed ({referral['assessment']['assessed_at']})"
    ]


def test_a_further_service_follows_the_same_rule(lpsk: Api, kemensos: Api) -> None:
    referral = _assessed(lpsk, kemensos)
    ok(kemensos.act(referral["id"], "serve", service_body()))
    body = service_body(started_at="2020-03-02T08:00:00+07:00")
    problem = assert_problem(kemensos.act(referral["id"], "services", body), 422)
    assert _errors_at(problem, "started_at")


def test_a_service_started_a_moment_before_the_servers_clock_is_taken(
    lpsk: Api, kemensos: Api
) -> None:
    # The case system's clock runs a little behind the service's: within the skew.
    referral = _assessed(lpsk, kemensos)
    behind = ts(referral["assessment"]["assessed_at"]) - dt.timedelta(minutes=2)
    body = service_body(started_at=behind.astimezone(WIB).isoformat())
    served = ok(kemensos.act(referral["id"], "serve", body))
    assert ts(served["services"][0]["started_at"]) == behind


@pytest.mark.parametrize("action", ["serve", "consent-withdrawal"])
def test_an_event_time_in_the_future_is_refused(lpsk: Api, kemensos: Api, action: str) -> None:
    referral = _assessed(lpsk, kemensos)
    later = dt.datetime.now(WIB) + MAX_CLOCK_SKEW + dt.timedelta(minutes=5)
    if action == "serve":
        api, field, body = kemensos, "started_at", service_body(started_at=later.isoformat())
    else:
        api, field, body = lpsk, "withdrawn_at", {"withdrawn_at": later.isoformat()}
    problem = assert_problem(api.act(referral["id"], action, body), 422)
    (message,) = _errors_at(problem, field)
    assert message.startswith("is in the future")
    assert "5 minutes" in message


def test_consent_obtained_in_the_future_is_refused_at_its_field(lpsk: Api) -> None:
    body = referral_body()
    later = dt.datetime.now(WIB) + dt.timedelta(hours=1)
    body["consent"]["obtained_at"] = later.isoformat()
    problem = assert_problem(lpsk.create(body), 422)
    locs = [e["loc"] for e in problem["errors"]]
    assert locs == [["body", "consent", "obtained_at"]]


def test_consent_cannot_be_withdrawn_before_it_was_obtained(lpsk: Api) -> None:
    created = lpsk.create_ok()
    obtained = created["consent"]["obtained_at"]
    before = ts(obtained) - dt.timedelta(minutes=1)
    body = {"withdrawn_at": before.astimezone(WIB).isoformat()}
    problem = assert_problem(lpsk.act(created["id"], "consent-withdrawal", body), 422)
    assert _errors_at(problem, "withdrawn_at") == [
        f"is before the consent was obtained ({obtained})"
    ]


def test_the_refusal_speaks_indonesian_when_asked(lpsk: Api, kemensos: Api) -> None:
    referral = _assessed(lpsk, kemensos)
    rid = referral["id"]
    headers = kemensos.headers(**{"Accept-Language": "id", "If-Match": '"2"'})
    body = service_body(started_at="2020-03-02T08:00:00+07:00")
    response = kemensos.http.post(f"/v1/referrals/{rid}/serve", json=body, headers=headers)
    problem = assert_problem(response, 422)
    assessed_at = referral["assessment"]["assessed_at"]
    assert _errors_at(problem, "started_at") == [
        f"lebih awal daripada saat rujukan diasesmen ({assessed_at})"
    ]
    assert response.headers["content-language"] == "id"
