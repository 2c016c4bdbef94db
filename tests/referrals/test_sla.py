"""Every open referral has a deadline for its current step (issue 5, SLA clocks)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from service.context import ServiceContext
from service.referrals import actions, create, queries, views
from tests.support import Api, assess_body, ok, service_body, ts


class Clock:
    """The time the referral service reads, moved by hand."""

    def __init__(self) -> None:
        self.now: dt.datetime | None = None

    def __call__(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    # Every module of the referral service that reads the time.
    for module in (actions, create, queries, views):
        monkeypatch.setattr(module, "utcnow", fake)
    yield fake


def overdue_ids(api: Api) -> set[str]:
    page = ok(api.list(overdue="true", limit=200))
    return {item["id"] for item in page["items"]}


def test_each_step_gets_its_deadline(ctx: ServiceContext, lpsk: Api, kemensos: Api) -> None:
    settings = ctx.settings
    created = lpsk.create_ok("KEMENSOS", urgency="urgent")
    assert ts(created["due_at"]) - ts(created["created_at"]) == dt.timedelta(hours=72)
    assessed = ok(kemensos.act(created["id"], "assess", assess_body()))
    allowed = dt.timedelta(hours=settings.sla_service_start_hours)
    assert ts(assessed["due_at"]) - ts(assessed["assessment"]["assessed_at"]) == allowed
    served = ok(kemensos.act(created["id"], "serve", service_body()))
    started = ts(served["services"][0]["recorded_at"])
    assert ts(served["due_at"]) - started == dt.timedelta(hours=settings.sla_closure_hours)
    # A further service does not move the closure deadline.
    again = ok(kemensos.act(created["id"], "services", service_body()))
    assert again["due_at"] == served["due_at"]
    closed = ok(kemensos.act(created["id"], "close", {"outcome": "completed"}))
    assert closed["due_at"] is None and closed["is_overdue"] is False


def test_the_defaults_of_the_later_steps(ctx: ServiceContext) -> None:
    assert ctx.settings.sla_service_start_hours == 14 * 24
    assert ctx.settings.sla_closure_hours == 180 * 24


def _late(clock: Clock, hours: float) -> None:
    clock.now = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)


def test_late_referrals_are_listed_in_every_step(
    ctx: ServiceContext, clock: Clock, lpsk: Api, kemensos: Api
) -> None:
    settings = ctx.settings
    # Each referral reaches its state long enough ago for that state's deadline to pass,
    # and a twin reaches it recently.
    made: dict[str, Any] = {}

    def reach(name: str, steps: list[tuple[str, dict[str, Any]]], hours_ago: float) -> None:
        _late(clock, hours_ago)
        made[name] = lpsk.create_ok("KEMENSOS", urgency="emergency")["id"]
        for action, body in steps:
            if "started_at" in body:  # a service starts after the (backdated) referral
                body = {**body, "started_at": clock.now.isoformat()}
            ok(kemensos.act(made[name], action, body))
        clock.now = None

    beyond_start = settings.sla_service_start_hours + 1
    beyond_closure = settings.sla_closure_hours + 1
    reach("referred_late", [], 25)
    reach("referred_on_time", [], 23)
    reach("assessed_late", [("assess", assess_body())], beyond_start)
    reach("assessed_on_time", [("assess", assess_body())], beyond_start - 2)
    served = [("assess", assess_body()), ("serve", service_body())]
    reach("served_late", served, beyond_closure)
    reach("served_on_time", served, beyond_closure - 2)
    reach("closed", [*served, ("close", {"outcome": "completed"})], beyond_closure * 2)

    late = {made["referred_late"], made["assessed_late"], made["served_late"]}
    assert overdue_ids(kemensos) == late
    assert overdue_ids(lpsk) == late
    not_late = {item["id"] for item in ok(kemensos.list(overdue="false", limit=200))["items"]}
    assert not_late == set(made.values()) - late
    for name, rid in made.items():
        assert ok(kemensos.get(rid))["is_overdue"] is name.endswith("_late"), name
