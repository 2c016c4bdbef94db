"""GET /v1/stats: every figure checked against a history with fixed timestamps."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from service.context import ServiceContext
from service.referrals.models import Referral, ReferralHistory
from tests.support import Api, assert_problem, assess_body, ok, service_body, writer_session

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def backdate(ctx: ServiceContext, rid: str, created: dt.datetime, *offsets: float) -> None:
    """Move a referral's creation to `created` and its history rows (in order) to
    `created + offset hours`; the first offset (creation) is 0."""
    key = uuid.UUID(rid)
    with writer_session(ctx.db) as session:
        rows = list(
            session.execute(
                select(ReferralHistory.id)
                .where(ReferralHistory.referral_id == key)
                .order_by(ReferralHistory.id)
            ).scalars()
        )
        assert len(rows) == len(offsets) + 1, "one offset per action after the creation"
        for row_id, hours in zip(rows, (0.0, *offsets), strict=True):
            session.execute(
                update(ReferralHistory)
                .where(ReferralHistory.id == row_id)
                .values(occurred_at=created + hours * HOUR)
            )
        session.execute(update(Referral).where(Referral.id == key).values(created_at=created))
        session.commit()


def set_due(ctx: ServiceContext, rid: str, due: dt.datetime) -> None:
    with writer_session(ctx.db) as session:
        session.execute(update(Referral).where(Referral.id == uuid.UUID(rid)).values(due_at=due))
        session.commit()


def stats(api: Api, **params: Any) -> dict[str, Any]:
    return ok(api.http.get("/v1/stats", params=params, headers=api.headers()))  # type: ignore[no-any-return]


@pytest.fixture
def history(ctx: ServiceContext, lpsk: Api, kemensos: Api, kemenham: Api) -> dict[str, str]:
    """Eight referrals with a known history; seven made in March 2026."""
    made: dict[str, str] = {}

    def create(api: Api, to: str, name: str, **fields: Any) -> str:
        made[name] = api.create_ok(to, **fields)["id"]
        return made[name]

    def walk(rid: str, *steps: tuple[str, dict[str, Any]]) -> None:
        for action, body in steps:
            ok(kemensos.act(rid, action, body))

    assess = ("assess", assess_body())
    serve = ("serve", service_body())
    r1 = create(lpsk, "KEMENSOS", "r1", groups=["KORBAN_KEKERASAN"], case_types=["TPPO"])
    walk(r1, assess, serve, ("close", {"outcome": "completed"}))
    backdate(ctx, r1, T0, 2, 12, 112)
    r2 = create(
        lpsk,
        "KEMENSOS",
        "r2",
        groups=["KORBAN_KEKERASAN", "PEREMPUAN_RENTAN"],
        case_types=["TPPO", "KEKERASAN_SEKSUAL"],
        urgency="emergency",
    )
    walk(r2, assess, serve, ("services", service_body()), ("close", {"outcome": "completed"}))
    # The further service (at +50 h) must not restart the served-to-closed clock.
    backdate(ctx, r2, T0 + 24 * HOUR, 4, 24, 50, 224)
    r3 = create(lpsk, "KEMENSOS", "r3", groups=["ANAK_RENTAN"], case_types=["TPPO"])
    walk(r3, assess, serve)
    backdate(ctx, r3, T0 + 48 * HOUR, 6, 36)
    r4 = create(lpsk, "KEMENSOS", "r4", urgency="routine", case_types=["KEKERASAN_FISIK"])
    walk(r4, assess, ("close", {"outcome": "declined", "reason": "CAPACITY_FULL"}))
    backdate(ctx, r4, T0 + 72 * HOUR, 8, 9)
    r5 = create(lpsk, "KEMENSOS", "r5", urgency="emergency")
    backdate(ctx, r5, T0 + 96 * HOUR)
    r6 = create(kemenham, "LPSK", "r6", groups=["DISABILITAS"])
    backdate(ctx, r6, T0)
    r7 = create(kemensos, "LPSK", "r7", groups=["LANSIA_TERLANTAR"], case_types=["TERORISME"])
    ok(kemensos.act(r7, "close", {"outcome": "withdrawn"}))
    backdate(ctx, r7, T0 + 5 * HOUR, 1)
    r8 = create(lpsk, "KEMENSOS", "r8")
    walk(r8, assess)
    backdate(ctx, r8, dt.datetime(2026, 2, 27, tzinfo=dt.UTC), 1000)
    past = dt.datetime.now(dt.UTC) - HOUR
    for late in (r3, r5, r6, r8):
        set_due(ctx, late, past)
    return made


MARCH = {"from": "2026-03-01", "to": "2026-03-31"}


def test_every_figure_of_a_known_history(history: dict[str, str], kemensos: Api) -> None:
    body = stats(kemensos, **MARCH)
    assert body["agency"] == "KEMENSOS"
    assert (body["from"], body["to"], body["direction"]) == ("2026-03-01", "2026-03-31", None)
    # r1..r5 received, r7 sent; r6 is not KEMENSOS's, r8 was made in February.
    assert body["total"] == 6
    assert body["by_status"] == {"referred": 1, "assessed": 0, "served": 1, "closed": 4}
    assert body["by_urgency"] == {"emergency": 2, "urgent": 3, "routine": 1}
    assert body["by_outcome"] == {"completed": 2, "declined": 1, "withdrawn": 1}
    assert body["by_group"] == {
        "ANAK_RENTAN": 1,
        "KORBAN_KEKERASAN": 4,
        "LANSIA_TERLANTAR": 1,
        "PEREMPUAN_RENTAN": 1,
    }
    assert body["by_case_type"] == {
        "KEKERASAN_FISIK": 1,
        "KEKERASAN_SEKSUAL": 1,
        "TERORISME": 1,
        "TPPO": 4,
    }
    times = {t["step"]: t for t in body["step_times"]}
    # Referred to assessed: 2, 4, 6, 8 h. Median at rank 1.5 = 5; p90 at rank 2.7 = 6 + 0.7*2.
    assert times["referred_to_assessed"] == {
        "step": "referred_to_assessed",
        "count": 4,
        "median_hours": 5.0,
        "p90_hours": 7.4,
    }
    # Assessed to served: 10, 20, 30 h. p90 at rank 1.8 = 20 + 0.8*10.
    assert times["assessed_to_served"] == {
        "step": "assessed_to_served",
        "count": 3,
        "median_hours": 20.0,
        "p90_hours": 28.0,
    }
    # Served to closed: 100 and 200 h (from the first service, not the further one).
    assert times["served_to_closed"] == {
        "step": "served_to_closed",
        "count": 2,
        "median_hours": 150.0,
        "p90_hours": 190.0,
    }
    assert body["successful_referral_rate"] == {"completed": 2, "closed": 4, "rate": 0.5}
    assert body["overdue"] == {
        "total": 2,
        "by_status": {"referred": 1, "assessed": 0, "served": 1},
    }


def test_direction_narrows_to_one_side(history: dict[str, str], kemensos: Api) -> None:
    incoming = stats(kemensos, direction="incoming", **MARCH)
    assert incoming["total"] == 5
    assert incoming["by_outcome"] == {"completed": 2, "declined": 1}
    outgoing = stats(kemensos, direction="outgoing", **MARCH)
    assert outgoing["total"] == 1
    assert outgoing["by_outcome"] == {"withdrawn": 1}
    assert outgoing["successful_referral_rate"] == {"completed": 0, "closed": 1, "rate": 0.0}
    assert [t["count"] for t in outgoing["step_times"]] == [0, 0, 0]
    assert outgoing["step_times"][0]["median_hours"] is None


def test_the_period_is_inclusive_and_optional(history: dict[str, str], kemensos: Api) -> None:
    everything = stats(kemensos)
    assert everything["total"] == 7
    assert everything["overdue"]["total"] == 3
    assert {t["step"]: t["count"] for t in everything["step_times"]}["referred_to_assessed"] == 5
    # r1 was made on 2 March at 08:00: a one-day period of that day finds it alone.
    one_day = stats(kemensos, **{"from": "2026-03-02", "to": "2026-03-02"})
    assert one_day["total"] == 2  # r1 and r7 (made at 13:00)
    assert stats(kemensos, **{"from": "2026-03-03", "to": "2026-03-03"})["total"] == 1


def test_other_agencies_referrals_are_not_counted(
    history: dict[str, str], kemenham: Api, lpsk: Api
) -> None:
    mine = stats(kemenham, **MARCH)
    assert mine["total"] == 1  # r6 only
    assert mine["by_group"] == {"DISABILITAS": 1}
    assert mine["by_case_type"] == {"TPPO": 1}
    assert mine["overdue"]["total"] == 1
    assert [t["count"] for t in mine["step_times"]] == [0, 0, 0]
    lpsk_view = stats(lpsk, **MARCH)
    assert lpsk_view["total"] == 7  # r1..r5 sent, r6 and r7 received
    assert lpsk_view["by_status"]["closed"] == 4


def test_stats_need_a_token_and_the_read_scope(kemensos: Api) -> None:
    assert_problem(kemensos.http.get("/v1/stats"), 401)
    narrow = kemensos.with_scope("referrals:write")
    assert_problem(narrow.http.get("/v1/stats", headers=narrow.headers()), 403)


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-03-31", "to": "2026-03-01"},
        {"from": "March"},
        {"direction": "sideways"},
    ],
)
def test_bad_parameters_are_422_problems(kemensos: Api, params: dict[str, str]) -> None:
    response = kemensos.http.get("/v1/stats", params=params, headers=kemensos.headers())
    assert_problem(response, 422)
