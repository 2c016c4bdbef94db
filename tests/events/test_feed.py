"""GET /v1/events: each committed action's event, in commit order, to its two parties only."""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, text

from service.context import ServiceContext
from service.db.writes import Writes
from service.events.models import Event
from service.referrals.models import Referral
from tests.support import (
    Api,
    assert_problem,
    assess_body,
    held_write,
    ok,
    referral_body,
    writer_session,
)
from tests.support.events import all_events, feed, subscribe, walk

LIFECYCLE = [
    "referral.created",
    "referral.assessed",
    "referral.served",
    "referral.service_recorded",
    "referral.note_added",
    "referral.closed",
]


def test_each_action_writes_one_event_with_the_referral_state(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    rid = walk(lpsk, kemensos)
    closed = ok(
        kemensos.act(rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"})
    )
    child_id = closed["closure"]["onward_referral_id"]

    sender = all_events(lpsk)
    assert [e["type"] for e in sender] == LIFECYCLE
    assert [e["status"] for e in sender] == [
        "referred", "assessed", "served", "served", "served", "closed",
    ]
    assert {e["referral_id"] for e in sender} == {rid}
    assert {e["reference"] for e in sender} == {closed["reference"]}
    assert all(e["from_agency"] == "LPSK" and e["to_agency"] == "KEMENSOS" for e in sender)
    assert len({e["id"] for e in sender}) == len(sender)

    # The receiver also sees the onward child it created, right after the close.
    receiver = all_events(kemensos)
    assert [e["type"] for e in receiver] == [*LIFECYCLE, "referral.created"]
    assert receiver[-1]["referral_id"] == child_id
    assert (receiver[-1]["from_agency"], receiver[-1]["to_agency"]) == ("KEMENSOS", "KEMENHAM")
    assert [e["id"] for e in receiver[:-1]] == [e["id"] for e in sender]
    occurred = [e["occurred_at"] for e in receiver]
    assert occurred == sorted(occurred)

    # The onward agency sees only the child's creation.
    onward = all_events(kemenham)
    assert [(e["type"], e["referral_id"]) for e in onward] == [("referral.created", child_id)]


def test_consent_withdrawal_is_its_own_event(lpsk: Api, kemensos: Api) -> None:
    rid = lpsk.create_ok("KEMENSOS")["id"]
    ok(lpsk.act(rid, "consent-withdrawal", {"withdrawn_at": "2026-11-25T10:30:00+07:00"}))
    events = all_events(kemensos)
    assert [(e["type"], e["status"]) for e in events] == [
        ("referral.created", "referred"),
        ("referral.consent_withdrawn", "closed"),
    ]


def test_an_agency_never_sees_events_of_referrals_it_is_not_party_to(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    walk(lpsk, kemensos)
    mine = kemenham.create_ok("LPSK")["id"]
    assert [e["referral_id"] for e in all_events(kemenham)] == [mine]
    assert feed(kemenham, limit=500)["has_more"] is False
    assert mine not in {e["referral_id"] for e in all_events(kemensos)}


def test_events_carry_no_personal_data(lpsk: Api, kemensos: Api) -> None:
    body_overrides = {
        "protected_identity": True,
        "summary": "Saksi kunci kasus Zulkarnaen-Sembiring",
    }
    rid = lpsk.create_ok("KEMENSOS", **body_overrides)["id"]
    full = ok(lpsk.get(rid))
    ok(kemensos.act(rid, "assess", assess_body()))
    raw = kemensos.http.get("/v1/events", headers=kemensos.headers()).text
    assert rid in raw
    for secret in ("Dewi Lestari", "Jl. Kenanga", "+62 811", "Zulkarnaen", "Needs a residential"):
        assert secret not in raw
    assert full["subject"]["sealed"] is True
    item = all_events(kemensos)[0]
    assert set(item) == {
        "id", "type", "occurred_at", "referral_id", "reference", "status",
        "from_agency", "to_agency",
    }


def test_paging_follows_the_cursor_and_an_empty_page_keeps_it(lpsk: Api, kemensos: Api) -> None:
    walk(lpsk, kemensos)
    first = feed(lpsk, limit=2)
    assert len(first["items"]) == 2 and first["has_more"] is True
    second = feed(lpsk, first["next_cursor"], limit=2)
    rest = feed(lpsk, second["next_cursor"], limit=50)
    types = [e["type"] for e in first["items"] + second["items"] + rest["items"]]
    assert types == LIFECYCLE[:-1]
    assert rest["has_more"] is False
    again = feed(lpsk, rest["next_cursor"])
    assert again == {"items": [], "next_cursor": rest["next_cursor"], "has_more": False}


def test_refused_and_rolled_back_actions_write_no_event(
    lpsk: Api, kemensos: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    sub = subscribe(kemensos, "https://hooks.example.org/rujukan")
    rid = lpsk.create_ok("KEMENSOS")["id"]
    assert_problem(kemensos.act(rid, "serve", {"service_type": "REHABILITASI_SOSIAL",
                                               "service_unit": "SENTRA_HANDAYANI",
                                               "started_at": "2026-02-01T08:00:00+07:00"}), 409)
    assert_problem(kemensos.act(rid, "assess", assess_body(), etag='"99"'), 412)

    # A failure after the event is written rolls the whole action back, event included.
    real = Writes.record_event

    def record_then_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        raise RuntimeError("disk full")

    monkeypatch.setattr(Writes, "record_event", record_then_fail)
    assert_problem(kemensos.act(rid, "assess", assess_body()), 500)
    monkeypatch.undo()

    assert ok(kemensos.get(rid))["status"] == "referred"
    assert [e["type"] for e in all_events(kemensos)] == ["referral.created"]
    # Nor is a webhook owed for it: the outbox row rolled back with the event.
    owed = ok(kemensos.http.get(f"/v1/webhook-subscriptions/{sub['id']}/deliveries",
                                headers=kemensos.headers()))["items"]
    assert [d["event_type"] for d in owed] == ["referral.created"]
    ok(kemensos.act(rid, "assess", assess_body()))
    assert [e["type"] for e in all_events(kemensos)] == ["referral.created", "referral.assessed"]


def test_an_empty_after_reads_from_the_start_like_no_after(lpsk: Api, kemensos: Api) -> None:
    walk(lpsk, kemensos)
    start = feed(lpsk, limit=2)
    assert start["items"]
    assert feed(lpsk, "", limit=2) == start
    spec = lpsk.http.get("/openapi.json").json()
    (after,) = [p for p in spec["paths"]["/v1/events"]["get"]["parameters"] if p["name"] == "after"]
    assert "empty `after`" in spec["paths"]["/v1/events"]["get"]["description"]
    assert after["required"] is False


def test_the_feed_needs_a_token_with_read_scope_and_a_valid_cursor(lpsk: Api) -> None:
    assert_problem(lpsk.http.get("/v1/events"), 401)
    writer = lpsk.with_scope("referrals:write")
    assert_problem(writer.http.get("/v1/events", headers=writer.headers()), 403)
    for bad in ("abc", "-1", "1.5"):
        assert_problem(
            lpsk.http.get("/v1/events", params={"after": bad}, headers=lpsk.headers()), 422
        )
    assert_problem(lpsk.http.get("/v1/events", params={"limit": 0}, headers=lpsk.headers()), 422)


def _record_note_event(ctx: ServiceContext, referral_id: uuid.UUID, w: Writes) -> None:
    row = w.session.get(Referral, referral_id)
    assert row is not None
    w.record_event(
        type="referral.note_added",
        referral_id=row.id,
        reference=row.reference,
        status=row.status,
        from_agency=row.from_agency,
        to_agency=row.to_agency,
        occurred_at=row.created_at,
    )


def test_a_cursor_never_skips_an_event_that_commits_late(
    ctx: ServiceContext, lpsk: Api, kemensos: Api
) -> None:
    """Transaction A writes an event and stays open; B writes one and commits; a reader
    polls in between. If B's event could commit before A's with a higher number, the reader's
    cursor would pass A's for good. Either B waits for A (SQLite: A holds the write lock) or
    A's event is numbered when A commits (PostgreSQL: at commit, under the append lock)."""
    rid = uuid.UUID(lpsk.create_ok("KEMENSOS")["id"])
    start = feed(lpsk)["next_cursor"]

    with held_write(ctx.db) as slow:
        _record_note_event(ctx, rid, slow)
        b_done = threading.Event()

        def writer_b() -> None:
            with held_write(ctx.db) as fast:
                _record_note_event(ctx, rid, fast)
                fast.commit()
            b_done.set()

        thread = threading.Thread(target=writer_b)
        thread.start()
        # Long enough for B to commit if nothing held it back.
        b_done.wait(1.5)
        polled = feed(lpsk, start)
        assert len(polled["items"]) == (0 if ctx.db.sqlite else 1)
        slow.commit()
    thread.join(30)
    assert b_done.is_set()
    later = all_events(lpsk, polled["next_cursor"])
    # The cursor taken while A was open skips nothing: both events are read, once each.
    seen = polled["items"] + later
    assert [e["type"] for e in seen] == ["referral.note_added", "referral.note_added"]
    assert len({e["id"] for e in seen}) == 2
    with ctx.db.reader() as session:
        seqs = list(session.execute(select(Event.seq).order_by(Event.seq)).scalars())
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_event_numbers_follow_commit_order_under_concurrent_writers(
    ctx: ServiceContext, lpsk: Api, kemensos: Api
) -> None:
    """Many writers commit notes at once while a reader follows the feed: the reader ends
    with every event exactly once, and never saw a number before a smaller one."""
    rids = [lpsk.create_ok("KEMENSOS")["id"] for _ in range(4)]
    cursor = feed(kemensos)["next_cursor"]
    stop = threading.Event()
    seen: list[dict] = []  # type: ignore[type-arg]
    problems: list[str] = []

    def reader() -> None:
        nonlocal cursor
        while not stop.is_set():
            page = feed(kemensos, cursor, limit=500)
            seen.extend(page["items"])
            cursor = page["next_cursor"]

    def writer(rid: str) -> None:
        for i in range(8):
            response = lpsk.http.post(
                f"/v1/referrals/{rid}/notes", json={"text": f"n{i}"}, headers=lpsk.headers()
            )
            if response.status_code != 201:
                problems.append(response.text)

    poll = threading.Thread(target=reader)
    poll.start()
    writers = [threading.Thread(target=writer, args=(rid,)) for rid in rids]
    for t in writers:
        t.start()
    for t in writers:
        t.join(120)
    stop.set()
    poll.join(30)
    assert problems == []
    seen.extend(all_events(kemensos, cursor))
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == 32
    with ctx.db.reader() as session:
        committed = set(
            str(i) for i in session.execute(
                text("SELECT id FROM event WHERE type = 'referral.note_added'")
            ).scalars()
        )
    assert set(ids) == {str(uuid.UUID(str(i))) for i in committed}


def test_a_replayed_or_duplicate_create_writes_no_second_event(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    first = ok(lpsk.create(body, **{"Idempotency-Key": "evt-replay-1"}), 201)
    replay = ok(lpsk.create(body, **{"Idempotency-Key": "evt-replay-1"}), 201)
    assert replay["id"] == first["id"]
    assert_problem(lpsk.create(body), 409)  # the same person, still open
    assert [(e["type"], e["referral_id"]) for e in all_events(lpsk)] == [
        ("referral.created", first["id"])
    ]


# ---- cursors that count nothing -------------------------------------------------------------


def _seqs(ctx: ServiceContext, agency: str) -> list[int]:
    with ctx.db.reader() as session:
        return list(session.execute(
            select(Event.seq)
            .where((Event.from_agency == agency) | (Event.to_agency == agency))
            .order_by(Event.seq)  # type: ignore[arg-type]
        ).scalars())


def _after(api: Api, cursor: str):  # type: ignore[no-untyped-def]
    return api.http.get("/v1/events", params={"after": cursor}, headers=api.headers())


def test_a_cursor_shows_no_count_of_other_agencies_events(
    ctx: ServiceContext, lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    walk(lpsk, kemensos)  # five events KEMENHAM is no party to
    mine = kemenham.create_ok("LPSK")["id"]
    page = feed(kemenham)
    assert [e["referral_id"] for e in page["items"]] == [mine]
    cursor = page["next_cursor"]
    (seq,) = _seqs(ctx, "KEMENHAM")
    assert seq == 6

    # An earlier release answered "6" here, after KEMENHAM's one event. Now the cursor is
    # no number, and its bytes hold no event number either.
    assert not cursor.isdigit()
    raw = base64.urlsafe_b64decode(cursor + "==")
    assert seq.to_bytes(8, "big") not in raw
    # It cannot be walked: numbers, a changed cursor and another agency's use are refused.
    for probe in ("5", "6", "7", cursor[:-1] + ("A" if cursor[-1] != "A" else "B"), cursor[1:]):
        assert_problem(_after(kemenham, probe), 422)
    assert_problem(_after(lpsk, cursor), 422)
    # And it works: the next event of KEMENHAM's, and nothing else, follows it.
    ok(kemenham.act(mine, "close", {"outcome": "withdrawn"}))
    (closed,) = ok(_after(kemenham, cursor))["items"]
    assert closed["type"] == "referral.closed"


def test_the_same_own_activity_gives_cursors_of_the_same_form_whatever_others_did(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    kemenham.create_ok("LPSK")
    quiet = feed(kemenham)["next_cursor"]  # its event is the first of the database
    for _ in range(3):
        walk(lpsk, kemensos)
    kemenham.create_ok("LPSK")
    busy = feed(kemenham, quiet)["next_cursor"]  # after 15 events of others
    assert len(quiet) == len(busy) == 32
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", quiet) and re.fullmatch(r"[A-Za-z0-9_-]{32}", busy)


@pytest.fixture
def legacy_limit(ctx: ServiceContext) -> Iterator[Callable[[int], None]]:
    """Set the highest event number of an earlier release (restored afterwards)."""
    with ctx.db.reader() as session:
        saved = session.execute(text("SELECT max_seq FROM legacy_feed_cursor")).scalars().all()

    def set_to(value: int) -> None:
        with writer_session(ctx.db) as session:
            session.execute(text("DELETE FROM legacy_feed_cursor"))
            session.execute(text("INSERT INTO legacy_feed_cursor (max_seq) VALUES (:v)"),
                            {"v": value})
            session.commit()

    yield set_to
    with writer_session(ctx.db) as session:
        session.execute(text("DELETE FROM legacy_feed_cursor"))
        for value in saved:
            session.execute(text("INSERT INTO legacy_feed_cursor (max_seq) VALUES (:v)"),
                            {"v": value})
        session.commit()


def test_a_numeric_cursor_of_an_earlier_release_keeps_working_up_to_its_last_number(
    ctx: ServiceContext, lpsk: Api, kemensos: Api, legacy_limit: Callable[[int], None]
) -> None:
    walk(lpsk, kemensos)
    seqs = _seqs(ctx, "LPSK")
    # The upgrade happened here: a client still holds the number of LPSK's second event.
    legacy_limit(seqs[-1])
    held = str(seqs[1])
    rest = ok(_after(lpsk, held))
    assert [e["type"] for e in rest["items"]] == LIFECYCLE[2:-1]
    assert not rest["next_cursor"].isdigit()
    assert ok(_after(lpsk, rest["next_cursor"]))["items"] == []
    # Numbers past the last one an earlier release handed out are refused: they could only
    # be guesses, made to count events.
    assert_problem(_after(lpsk, str(seqs[-1] + 1)), 422)


def test_a_delivery_cursor_counts_nothing_either(
    ctx: ServiceContext, lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    sub = subscribe(kemenham, "https://hooks.example.org/rujukan")
    walk(lpsk, kemensos)
    for _ in range(3):
        kemenham.create_ok("LPSK")
    path = f"/v1/webhook-subscriptions/{sub['id']}/deliveries"

    def page(cursor: str | None = None):  # type: ignore[no-untyped-def]
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        return kemenham.http.get(path, params=params, headers=kemenham.headers())

    first = ok(page())
    cursor = first["next_cursor"]
    assert not cursor.isdigit() and len(cursor) == 32
    second = ok(page(cursor))
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    assert {d["event_id"] for d in first["items"] + second["items"]} == {
        e["id"] for e in all_events(kemenham)
    }
    for probe in ("7", cursor[::-1]):
        assert_problem(page(probe), 422)
