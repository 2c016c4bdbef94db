"""GET /v1/referrals: filters, limits and keyset pagination (CONTRACT §4)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

import pytest
from sqlalchemy import update

from service.context import ServiceContext
from service.referrals.models import Referral
from tests.support import Api, assert_problem, assess_body, ok, referral_body, ts, writer_session


def ids(api: Api, **params: Any) -> set[str]:
    page = ok(api.list(limit=200, **params))
    assert page["next_cursor"] is None
    return {item["id"] for item in page["items"]}


def set_due_at(ctx: ServiceContext, rid: str, due_at: dt.datetime | None) -> None:
    with writer_session(ctx.db) as session:
        session.execute(update(Referral).where(Referral.id == uuid.UUID(rid)).values(due_at=due_at))
        session.commit()


@pytest.fixture
def world(lpsk: Api, kemensos: Api, kemenham: Api) -> dict[str, dict[str, Any]]:
    """A handful of referrals between the three agencies, seen from KEMENSOS."""
    made = {
        "a": lpsk.create_ok("KEMENSOS", urgency="urgent", groups=["KORBAN_KEKERASAN"]),
        "b": lpsk.create_ok(
            "KEMENSOS",
            urgency="emergency",
            groups=["ANAK_RENTAN"],
            kemenham_groups=["PENGUNGSI"],
            case_types=["KEKERASAN_FISIK"],
        ),
        "c": kemensos.create_ok("LPSK", urgency="routine", groups=["DISABILITAS"]),
        "d": lpsk.create_ok("KEMENHAM", urgency="urgent", groups=["KORBAN_KEKERASAN"]),
        "e": kemenham.create_ok(
            "KEMENSOS", urgency="routine", groups=[], kemenham_groups=["PEKERJA_MIGRAN"]
        ),
    }
    return made


def _id(world: dict[str, dict[str, Any]], *names: str) -> set[str]:
    return {world[n]["id"] for n in names}


# ---- filters ---------------------------------------------------------------------------------


def test_an_agency_lists_what_it_sent_and_received(
    world: dict[str, dict[str, Any]], lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    assert ids(kemensos) == _id(world, "a", "b", "c", "e")
    assert ids(lpsk) == _id(world, "a", "b", "c", "d")
    assert ids(kemenham) == _id(world, "d", "e")


def test_the_answer_has_items_and_next_cursor(world: dict[str, Any], kemensos: Api) -> None:
    response = kemensos.list()
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert set(response.json()) == {"items", "next_cursor"}
    assert response.json()["next_cursor"] is None


def test_filter_by_direction(world: dict[str, dict[str, Any]], kemensos: Api) -> None:
    assert ids(kemensos, direction="incoming") == _id(world, "a", "b", "e")
    assert ids(kemensos, direction="outgoing") == _id(world, "c")


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"to_agency": "LPSK"}, {"c"}),
        ({"to_agency": "KEMENSOS"}, {"a", "b", "e"}),
        ({"to_agency": "KEMENHAM"}, set()),
        ({"from_agency": "LPSK"}, {"a", "b"}),
        ({"from_agency": "KEMENHAM"}, {"e"}),
        ({"from_agency": "KEMENSOS"}, {"c"}),
        ({"from_agency": "LPSK", "to_agency": "KEMENHAM"}, set()),
        ({"urgency": "routine"}, {"c", "e"}),
        ({"urgency": "emergency"}, {"b"}),
        ({"urgency": "urgent"}, {"a"}),
        ({"group": "ANAK_RENTAN"}, {"b"}),
        ({"group": "KORBAN_KEKERASAN"}, {"a"}),
        ({"group": "PENGUNGSI"}, {"b"}),
        ({"group": "PEKERJA_MIGRAN"}, {"e"}),
        ({"group": "LANSIA_TERLANTAR"}, set()),
        ({"group": "KORBAN_KEKERASAN", "urgency": "emergency"}, set()),
        ({"direction": "incoming", "urgency": "routine"}, {"e"}),
    ],
)
def test_filters(
    world: dict[str, dict[str, Any]], kemensos: Api, params: dict[str, str], expected: set[str]
) -> None:
    assert ids(kemensos, **params) == _id(world, *expected)


def test_filter_by_status(world: dict[str, dict[str, Any]], lpsk: Api, kemensos: Api) -> None:
    ok(kemensos.act(world["a"]["id"], "assess", assess_body()))
    ok(lpsk.act(world["b"]["id"], "close", {"outcome": "withdrawn"}))
    assert ids(kemensos, status="assessed") == _id(world, "a")
    assert ids(kemensos, status="closed") == _id(world, "b")
    assert ids(kemensos, status="referred") == _id(world, "c", "e")
    assert ids(kemensos, status="served") == set()
    assert_problem(kemensos.list(status="open"), 422)


def test_filter_by_nik_is_exact(world: dict[str, dict[str, Any]], lpsk: Api, kemensos: Api) -> None:
    nik = world["a"]["subject"]["nik"]
    assert ids(kemensos, nik=nik) == _id(world, "a")
    assert ids(lpsk, nik=nik) == _id(world, "a")
    # d's person is not visible to KEMENSOS at all.
    assert ids(kemensos, nik=world["d"]["subject"]["nik"]) == set()
    # Another structurally valid NIK differing in the last digit matches nothing.
    near = nik[:-1] + ("1" if nik[-1] != "1" else "2")
    assert ids(kemensos, nik=near) == set()


def test_filter_by_nik_finds_every_referral_of_the_person(lpsk: Api, kemensos: Api) -> None:
    body = referral_body("KEMENSOS")
    nik = body["subject"]["nik"]
    first = ok(lpsk.create(body), 201)["id"]
    ok(lpsk.act(first, "close", {"outcome": "withdrawn"}))
    second = ok(lpsk.create(body), 201)["id"]
    third = ok(lpsk.create({**body, "to_agency": "KEMENHAM"}), 201)["id"]
    lpsk.create_ok("KEMENSOS")
    assert ids(lpsk, nik=nik) == {first, second, third}
    assert ids(kemensos, nik=nik) == {first, second}


@pytest.mark.parametrize("nik", ["123", "31710154079143211", "317101540791432X", " "])
def test_a_malformed_nik_filter_is_422_without_echo(kemensos: Api, nik: str) -> None:
    response = kemensos.list(nik=nik)
    assert_problem(response, 422)
    if nik.strip():
        assert nik not in response.text


def test_filter_overdue(
    world: dict[str, dict[str, Any]], kemensos: Api, ctx: ServiceContext
) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    set_due_at(ctx, world["b"]["id"], past)
    set_due_at(ctx, world["c"]["id"], past)
    ok(kemensos.act(world["c"]["id"], "close", {"outcome": "withdrawn"}))
    # A closed referral is never overdue, even if its deadline has passed.
    set_due_at(ctx, world["c"]["id"], past)

    assert ids(kemensos, overdue="true") == _id(world, "b")
    assert ids(kemensos, overdue="false") == _id(world, "a", "c", "e")
    items = {i["id"]: i for i in ok(kemensos.list())["items"]}
    assert items[world["b"]["id"]]["is_overdue"] is True
    assert items[world["a"]["id"]]["is_overdue"] is False
    assert items[world["c"]["id"]]["is_overdue"] is False
    assert ok(kemensos.get(world["b"]["id"]))["is_overdue"] is True
    assert ts(ok(kemensos.get(world["b"]["id"]))["due_at"]) == past


def test_a_deadline_just_ahead_is_not_overdue(
    world: dict[str, dict[str, Any]], kemensos: Api, ctx: ServiceContext
) -> None:
    set_due_at(ctx, world["a"]["id"], dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    set_due_at(ctx, world["b"]["id"], dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    assert ids(kemensos, overdue="true") == _id(world, "b")


def test_filter_updated_since(world: dict[str, dict[str, Any]], lpsk: Api, kemensos: Api) -> None:
    time.sleep(0.01)
    since = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    ok(kemensos.act(world["a"]["id"], "assess", assess_body()))
    ok(lpsk.act(world["b"]["id"], "close", {"outcome": "withdrawn"}))
    assert ids(kemensos, updated_since=since.isoformat()) == _id(world, "a", "b")
    # The same instant written in Jakarta time.
    wib = since.astimezone(dt.timezone(dt.timedelta(hours=7)))
    assert ids(kemensos, updated_since=wib.isoformat()) == _id(world, "a", "b")
    earlier = (since - dt.timedelta(days=1)).isoformat()
    assert ids(kemensos, updated_since=earlier) == _id(world, "a", "b", "c", "e")
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).isoformat()
    assert ids(kemensos, updated_since=later) == set()


def test_updated_since_includes_the_exact_instant(
    world: dict[str, dict[str, Any]], kemensos: Api
) -> None:
    assessed = ok(kemensos.act(world["a"]["id"], "assess", assess_body()))
    assert world["a"]["id"] in ids(kemensos, updated_since=assessed["updated_at"])


@pytest.mark.parametrize(
    "params",
    [
        {"updated_since": "2026-01-01T00:00:00"},
        {"updated_since": "yesterday"},
        {"direction": "sideways"},
        {"urgency": "asap"},
        {"overdue": "perhaps"},
        {"to_agency": "kemensos"},
        {"group": "NO-SUCH"},
    ],
)
def test_invalid_filters_are_422(kemensos: Api, params: dict[str, str]) -> None:
    assert assert_problem(kemensos.list(**params), 422)["errors"]


def test_filters_that_match_nothing_give_an_empty_page(kemensos: Api) -> None:
    assert ok(kemensos.list(group="NO_SUCH_GROUP")) == {"items": [], "next_cursor": None}
    assert ok(kemensos.list(to_agency="NOBODY")) == {"items": [], "next_cursor": None}


def test_listing_needs_the_read_scope(kemensos: Api) -> None:
    assert_problem(kemensos.with_scope("referrals:write").list(), 403)


# ---- limits and pagination ------------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, -1, 201, 1000, "ten"])
def test_limit_out_of_bounds_is_422(lpsk: Api, limit: Any) -> None:
    problem = assert_problem(lpsk.list(limit=limit), 422)
    assert any("limit" in map(str, e["loc"]) for e in problem["errors"])


def _create_many(api: Api, n: int, to_agency: str = "KEMENSOS") -> list[str]:
    return [api.create_ok(to_agency)["id"] for _ in range(n)]


def _walk(api: Api, limit: int, between: Any = None, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": limit, **params}
        if cursor:
            query["cursor"] = cursor
        page = ok(api.list(**query))
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        pages += 1
        assert pages < 1000
        if not cursor:
            return items
        assert len(page["items"]) == limit
        if between:
            between()


def _assert_newest_first(items: list[dict[str, Any]]) -> None:
    keys = [(ts(i["created_at"]), uuid.UUID(i["id"])) for i in items]
    assert keys == sorted(keys, reverse=True)


def test_limit_defaults_to_50_and_accepts_1_and_200(lpsk: Api) -> None:
    made = _create_many(lpsk, 55)
    default = ok(lpsk.list())
    assert len(default["items"]) == 50
    assert default["next_cursor"]
    assert len(ok(lpsk.list(limit=1))["items"]) == 1
    everything = ok(lpsk.list(limit=200))
    assert len(everything["items"]) == 55
    assert everything["next_cursor"] is None
    assert {i["id"] for i in everything["items"]} == set(made)


def test_walking_all_pages_returns_every_referral_once_newest_first(lpsk: Api) -> None:
    made = _create_many(lpsk, 120)
    items = _walk(lpsk, 25)
    walked = [i["id"] for i in items]
    assert len(walked) == 120
    assert set(walked) == set(made)
    assert walked == list(reversed(made))
    _assert_newest_first(items)


def test_a_page_that_ends_exactly_at_the_last_item_has_no_cursor(lpsk: Api) -> None:
    _create_many(lpsk, 10)
    first = ok(lpsk.list(limit=5))
    second = ok(lpsk.list(limit=5, cursor=first["next_cursor"]))
    assert len(second["items"]) == 5
    assert second["next_cursor"] is None
    assert ok(lpsk.list(limit=10))["next_cursor"] is None


def test_pagination_with_a_filter(lpsk: Api, kemensos: Api) -> None:
    incoming = _create_many(lpsk, 30)
    _create_many(kemensos, 20, "LPSK")
    items = _walk(kemensos, 7, direction="incoming")
    assert [i["id"] for i in items] == list(reversed(incoming))


def test_walking_while_referrals_are_created_misses_nothing_and_repeats_nothing(
    lpsk: Api, kemensos: Api
) -> None:
    existing = _create_many(lpsk, 60)
    added: list[str] = []

    def create_some() -> None:
        added.extend(_create_many(lpsk, 3))
        added.extend(_create_many(kemensos, 2, "LPSK"))

    walked = [i["id"] for i in _walk(lpsk, 25, between=create_some)]

    assert added
    assert len(walked) == len(set(walked))
    assert [w for w in walked if w in set(existing)] == list(reversed(existing))
    assert set(walked) == set(existing)


def test_walking_while_referrals_change_state_repeats_nothing(lpsk: Api, kemensos: Api) -> None:
    existing = _create_many(lpsk, 40)
    pending = list(existing)

    def assess_some() -> None:
        for _ in range(5):
            ok(kemensos.act(pending.pop(), "assess", assess_body()))

    walked = [i["id"] for i in _walk(lpsk, 10, between=assess_some)]
    assert walked == list(reversed(existing))


def test_keyset_pages_break_ties_of_equal_creation_times(lpsk: Api, ctx: ServiceContext) -> None:
    made = _create_many(lpsk, 30)
    same = dt.datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=dt.UTC)
    with writer_session(ctx.db) as session:
        for n, rid in enumerate(made):
            # Three groups of ten referrals sharing one creation instant each.
            at = same + dt.timedelta(seconds=n // 10)
            session.execute(
                update(Referral).where(Referral.id == uuid.UUID(rid)).values(created_at=at)
            )
        session.commit()

    for limit in (1, 3, 7, 10, 11):
        items = _walk(lpsk, limit)
        walked = [i["id"] for i in items]
        assert len(walked) == len(set(walked)) == 30, limit
        assert set(walked) == set(made)
        _assert_newest_first(items)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# A fixed id: under pytest-xdist every worker must collect the same test ids.
SOME_ID = "3e51b111-824f-48b9-866d-baea0c84f37f"


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        _b64(b"not json"),
        _b64(json.dumps({"a": 1}).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00", SOME_ID]).encode()),
        _b64(json.dumps(["2026-01-01T00:00:00+00:00", "not-a-uuid"]).encode()),
        _b64(json.dumps(["yesterday", SOME_ID]).encode()),
        _b64(json.dumps([1, 2, 3]).encode()),
        _b64(json.dumps(None).encode()),
        _b64(b"\xff\xfe\x00"),
        "x" * 600,
    ],
)
def test_a_garbage_cursor_is_a_422_problem(lpsk: Api, cursor: str) -> None:
    lpsk.create_ok("KEMENSOS")
    response = lpsk.list(cursor=cursor)
    problem = assert_problem(response, 422)
    assert problem["errors"]
    assert "traceback" not in response.text.lower()


def test_a_cursor_of_one_filter_can_be_reused_after_the_first_page(lpsk: Api) -> None:
    made = _create_many(lpsk, 6)
    first = ok(lpsk.list(limit=3))
    again = ok(lpsk.list(limit=3, cursor=first["next_cursor"]))
    twice = ok(lpsk.list(limit=3, cursor=first["next_cursor"]))
    assert again == twice
    assert [i["id"] for i in first["items"] + again["items"]] == list(reversed(made))
