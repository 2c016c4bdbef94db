"""Races through a real server: many clients at once, on each database backend.

The server is uvicorn on a loopback port (tests/support/live.py); the clients are httpx clients in
a thread pool, released together so that the requests genuinely overlap.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from service.audit import trail
from service.audit.models import AuditEntry
from service.config import Settings
from service.context import ServiceContext
from tests.support import Party, assess_body, held_write, make_nik, referral_body
from tests.support.live import LiveServer, live_server
from tests.support.served import serve

MAX_THREADS = 50


@pytest.fixture(scope="module")
def server(ctx: ServiceContext) -> Iterator[LiveServer]:
    with live_server(ctx) as srv:
        yield srv


def run_together(tasks: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run the tasks in parallel, released at the same moment; results in task order."""
    go = threading.Event()
    workers = min(len(tasks), MAX_THREADS)

    def wrapped(task: Callable[[], httpx.Response]) -> httpx.Response:
        go.wait(10)
        return task()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(wrapped, task) for task in tasks]
        go.set()
        return [f.result(timeout=120) for f in futures]


class Caller:
    """One agency's client of the live server (thread-safe: one httpx client per thread)."""

    def __init__(self, server: LiveServer, party: Party) -> None:
        self.server = server
        self.party = party
        self.agency = party.agency
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """This thread's client (its own connections, like a separate integrator process)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self.server.client(self.party.token)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                client.close()
            self._clients.clear()

    def create(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return self.http.post("/v1/referrals", json=body, headers=headers)

    def create_ok(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.create(body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def act(self, rid: str, action: str, body: dict[str, Any], etag: str) -> httpx.Response:
        return self.http.post(
            f"/v1/referrals/{rid}/{action}", json=body, headers={"If-Match": etag}
        )

    def note(self, rid: str, text_: str) -> httpx.Response:
        return self.http.post(f"/v1/referrals/{rid}/notes", json={"text": text_})

    def get(self, rid: str) -> httpx.Response:
        return self.http.get(f"/v1/referrals/{rid}")

    def history(self, rid: str) -> list[dict[str, Any]]:
        response = self.http.get(f"/v1/referrals/{rid}/history")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture
def callers(
    server: LiveServer, parties: dict[str, Party], clean: None
) -> Iterator[dict[str, Caller]]:
    """The three agencies' clients; each test starts without referrals (`clean`)."""
    by_agency = {code: Caller(server, party) for code, party in parties.items()}
    yield by_agency
    for caller in by_agency.values():
        caller.close()


def _summary(responses: list[httpx.Response]) -> Counter[int]:
    return Counter(r.status_code for r in responses)


def _no_server_errors(responses: list[httpx.Response]) -> None:
    failures = [(r.status_code, r.text[:300]) for r in responses if r.status_code >= 500]
    assert not failures, f"{len(failures)} server errors, e.g. {failures[:3]}"


def _count(ctx: ServiceContext, sql: str, **params: Any) -> int:
    with ctx.db.reader() as session:
        return int(session.execute(text(sql), params).scalar_one())


@contextmanager
def ctx_for(settings: Settings) -> Iterator[ServiceContext]:
    """A context of its own (engine included) on the settings' database."""
    ctx = ServiceContext.build(settings)
    try:
        yield ctx
    finally:
        ctx.db.dispose()


def _assert_every_event_once(ctx: ServiceContext) -> None:
    """The outbox holds one event per history row (each action's own), numbered 1..n."""
    with ctx.db.reader() as session:
        history = _count(ctx, "SELECT count(*) FROM referral_history")
        seqs = [r[0] for r in session.execute(text("SELECT seq FROM event ORDER BY seq"))]
        ids = {r[0] for r in session.execute(text("SELECT id FROM event"))}
        pairs = session.execute(
            text("SELECT count(*) FROM referral_history h WHERE (SELECT count(*) FROM event e "
                 "WHERE e.referral_id = h.referral_id) <> (SELECT count(*) FROM "
                 "referral_history h2 WHERE h2.referral_id = h.referral_id)")
        ).scalar_one()
    assert len(seqs) == history, (len(seqs), history)
    assert len(ids) == len(seqs), "event ids are unique"
    assert seqs == list(range(1, len(seqs) + 1)), "event numbers have no gap"
    assert pairs == 0, "each referral has one event per history row"


def _assert_chain_linear(ctx: ServiceContext) -> None:
    with ctx.db.reader() as session:
        checked, bad, reason = trail.verify_chain(session)
        ids = [r[0] for r in session.execute(text("SELECT id FROM audit_entry ORDER BY id"))]
    assert bad is None, f"audit entry {bad}: {reason}"
    assert checked == len(ids)
    assert ids == list(range(1, len(ids) + 1)), "audit entry ids are contiguous from 1"


# ---- (a) one If-Match, many writers --------------------------------------------------------


def test_parallel_assess_with_the_same_etag_has_exactly_one_winner(
    callers: dict[str, Caller], ctx: ServiceContext
) -> None:
    lpsk, kemensos = callers["LPSK"], callers["KEMENSOS"]
    rid = lpsk.create_ok(referral_body("KEMENSOS"))["id"]

    responses = run_together(
        [lambda: kemensos.act(rid, "assess", assess_body(), '"1"') for _ in range(50)]
    )

    _no_server_errors(responses)
    statuses = _summary(responses)
    assert statuses[200] == 1, statuses
    assert statuses[200] + statuses[412] + statuses[409] == 50, statuses
    winner = next(r for r in responses if r.status_code == 200)
    assert winner.headers["ETag"] == '"2"'
    for loser in (r for r in responses if r.status_code != 200):
        assert loser.headers["content-type"].startswith("application/problem+json")

    current = kemensos.get(rid)
    assert current.json()["status"] == "assessed"
    assert current.json()["version"] == 2
    assert current.headers["ETag"] == '"2"'
    actions = [h["action"] for h in kemensos.history(rid)]
    assert actions == ["create", "assess"]
    with ctx.db.reader() as session:
        audited = session.execute(
            select(func.count()).select_from(AuditEntry).where(
                AuditEntry.referral_id == uuid.UUID(rid), AuditEntry.action == "referral.assess"
            )
        ).scalar_one()
    assert audited == 1
    _assert_every_event_once(ctx)
    assert _count(ctx, "SELECT count(*) FROM event WHERE type = 'referral.assessed'") == 1


# ---- (b) one Idempotency-Key, many retries -------------------------------------------------


def test_parallel_creates_with_one_idempotency_key_make_one_referral(
    callers: dict[str, Caller], ctx: ServiceContext
) -> None:
    lpsk = callers["LPSK"]
    body = referral_body("KEMENSOS")
    key = f"idem-{uuid.uuid4()}"

    responses = run_together([lambda: lpsk.create(body, **{"Idempotency-Key": key})] * 20)

    _no_server_errors(responses)
    statuses = _summary(responses)
    assert statuses == Counter({201: 20}), (
        statuses,
        [r.json() for r in responses if r.status_code != 201][:2],
    )
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert {r.json()["reference"] for r in responses} == {responses[0].json()["reference"]}
    assert _count(ctx, "SELECT count(*) FROM referral") == 1
    assert _count(ctx, "SELECT count(*) FROM idempotency_record") == 1
    replays = [r for r in responses if r.headers.get("Idempotent-Replayed") == "true"]
    assert len(replays) == 19
    _assert_every_event_once(ctx)
    assert _count(ctx, "SELECT count(*) FROM event WHERE type = 'referral.created'") == 1


# ---- (c) one person, many senders' clicks ---------------------------------------------------


def test_parallel_creates_of_one_nik_make_one_open_referral(
    callers: dict[str, Caller], ctx: ServiceContext
) -> None:
    lpsk = callers["LPSK"]
    body = referral_body("KEMENSOS")

    def attempt(i: int) -> Callable[[], httpx.Response]:
        # Same person, otherwise different requests (no idempotency key).
        return lambda: lpsk.create({**body, "summary": f"attempt {i}"})

    responses = run_together([attempt(i) for i in range(20)])

    _no_server_errors(responses)
    statuses = _summary(responses)
    assert statuses == Counter({201: 1, 409: 19}), statuses
    winner = next(r for r in responses if r.status_code == 201).json()["id"]
    for loser in (r for r in responses if r.status_code == 409):
        problem = loser.json()
        assert problem["existing_referral_id"] == winner, problem
    assert _count(ctx, "SELECT count(*) FROM referral") == 1


# ---- (d) a burst of mixed writes ------------------------------------------------------------


def test_a_burst_of_mixed_writes_keeps_references_unique_and_the_audit_chain_linear(
    callers: dict[str, Caller], ctx: ServiceContext
) -> None:
    lpsk, kemensos, kemenham = callers["LPSK"], callers["KEMENSOS"], callers["KEMENHAM"]
    # 20 existing referrals: 10 LPSK -> KEMENSOS, 10 KEMENHAM -> KEMENSOS.
    existing = [
        (sender, sender.create_ok(referral_body("KEMENSOS"))["id"])
        for sender in [lpsk] * 10 + [kemenham] * 10
    ]

    tasks: list[Callable[[], httpx.Response]] = []
    # 40 creates between every pair of agencies.
    pairs = [(lpsk, "KEMENSOS"), (lpsk, "KEMENHAM"), (kemensos, "LPSK"),
             (kemensos, "KEMENHAM"), (kemenham, "LPSK"), (kemenham, "KEMENSOS")]
    for i in range(40):
        sender, receiver = pairs[i % len(pairs)]
        tasks.append(lambda s=sender, r=receiver: s.create(referral_body(r)))
    for i, (sender, rid) in enumerate(existing):
        # Per referral: the receiver assesses, one party adds a note, and a racing close
        # (the sender withdraws, or the receiver finds the person unreachable).
        tasks.append(lambda rid=rid: kemensos.act(rid, "assess", assess_body(), '"1"'))
        author = kemensos if i % 2 else sender
        tasks.append(lambda rid=rid, a=author: a.note(rid, f"{a.agency}'s note"))
        if i % 2 == 0:
            tasks.append(
                lambda rid=rid, s=sender: s.act(rid, "close", {"outcome": "withdrawn"}, '"1"')
            )
        else:
            tasks.append(
                lambda rid=rid: kemensos.act(rid, "close", {"outcome": "unreachable"}, '"1"')
            )
    assert len(tasks) == 100

    responses = run_together(tasks)

    _no_server_errors(responses)
    statuses = _summary(responses)
    assert set(statuses) <= {200, 201, 409, 412}, statuses
    creates = responses[:40]
    assert all(r.status_code == 201 for r in creates), _summary(creates)

    # Per existing referral: the assess and the close raced on version 1; one won.
    for _sender, rid in existing:
        current = kemensos.get(rid).json()
        history = kemensos.history(rid)
        transitions = [h for h in history if h["action"] not in ("create", "add_note")]
        assert len(transitions) == 1, (rid, history)
        assert current["version"] == 2, current
        assert current["status"] in ("assessed", "closed")

    with ctx.db.reader() as session:
        references = [r[0] for r in session.execute(text("SELECT reference FROM referral"))]
    assert len(references) == 60
    assert len(set(references)) == len(references), "references are unique"
    _assert_chain_linear(ctx)
    _assert_every_event_once(ctx)


# ---- (e) paging while others write ---------------------------------------------------------


def test_pagination_during_concurrent_creates_is_complete_and_without_duplicates(
    callers: dict[str, Caller],
) -> None:
    lpsk, kemensos = callers["LPSK"], callers["KEMENSOS"]
    before = {lpsk.create_ok(referral_body("KEMENSOS"))["id"] for _ in range(40)}

    walked: list[str] = []
    pages = 0
    walk_span: list[float] = []
    create_ends: list[float] = []

    def walk() -> httpx.Response:
        nonlocal pages
        reader = kemensos.server.client(kemensos.party.token)
        cursor: str | None = None
        walk_span.append(time.monotonic())
        try:
            while True:
                params: dict[str, Any] = {"limit": 5}
                if cursor:
                    params["cursor"] = cursor
                page = reader.get("/v1/referrals", params=params)
                assert page.status_code == 200, page.text
                walked.extend(item["id"] for item in page.json()["items"])
                pages += 1
                cursor = page.json()["next_cursor"]
                if not cursor:
                    return page
                time.sleep(0.02)  # a client reading page by page, while creates land
        finally:
            walk_span.append(time.monotonic())
            reader.close()

    def create() -> httpx.Response:
        response = lpsk.create(referral_body("KEMENSOS"))
        create_ends.append(time.monotonic())
        return response

    responses = run_together([walk, *[create] * 30])

    _no_server_errors(responses)
    assert all(r.status_code == 201 for r in responses[1:]), _summary(responses[1:])
    assert pages >= 8
    started, ended = walk_span
    assert any(started < t < ended for t in create_ends), "creates landed during the walk"
    duplicates = [rid for rid, n in Counter(walked).items() if n > 1]
    assert not duplicates, f"{len(duplicates)} referrals listed twice"
    missing = before - set(walked)
    assert not missing, f"{len(missing)} referrals that existed before the walk were skipped"


# ---- (f) two closes racing, one of them onward ---------------------------------------------


def test_racing_closes_on_one_referral_never_fail_with_a_server_error(
    callers: dict[str, Caller],
) -> None:
    """Referral onward (which creates a child) against another close of the same referral.

    Exactly one close wins per referral; the other gets 412 or 409, never a 5xx.
    """
    lpsk, kemensos = callers["LPSK"], callers["KEMENSOS"]
    rids = []
    for _ in range(12):
        rid = lpsk.create_ok(referral_body("KEMENSOS"))["id"]
        assessed = kemensos.act(rid, "assess", assess_body(), '"1"')
        assert assessed.status_code == 200, assessed.text
        rids.append(rid)

    tasks: list[Callable[[], httpx.Response]] = []
    for rid in rids:
        tasks.append(
            lambda rid=rid: kemensos.act(
                rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"}, '"2"'
            )
        )
        tasks.append(
            lambda rid=rid: kemensos.act(rid, "close", {"outcome": "unreachable"}, '"2"')
        )
    responses = run_together(tasks)

    _no_server_errors(responses)
    for i, rid in enumerate(rids):
        pair = Counter(r.status_code for r in responses[2 * i: 2 * i + 2])
        assert pair[200] == 1 and pair[200] + pair[412] + pair[409] == 2, (rid, pair)
        assert kemensos.get(rid).json()["status"] == "closed"


def test_distinct_niks_never_collide(callers: dict[str, Caller]) -> None:
    """The control for (c): different people to one receiver all get through at once."""
    lpsk = callers["LPSK"]
    bodies = []
    for serial in range(5001, 5021):
        body = referral_body("KEMENSOS")
        birth = dt.date(1990, 1, 1)
        subject = {**body["subject"], "birth_date": birth.isoformat(), "sex": "male",
                   "nik": make_nik(birth, "male", serial)}
        bodies.append({**body, "subject": subject})
    responses = run_together([lambda b=b: lpsk.create(b) for b in bodies])
    _no_server_errors(responses)
    assert _summary(responses) == Counter({201: 20})
    assert len({r.json()["reference"] for r in responses}) == 20


def _wait_for_lock_waiters(ctx: ServiceContext, expected: int) -> None:
    """Until `expected` requests are blocked on a database lock (or 5 s have passed).

    SQLite: they wait for the database write lock (busy timeout); a pause suffices.
    """
    if ctx.db.sqlite:
        time.sleep(0.3)
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        waiting = _count(
            ctx,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        if waiting >= expected:
            return
        time.sleep(0.01)


def test_onward_close_racing_another_close_while_another_write_is_in_flight(
    callers: dict[str, Caller], ctx: ServiceContext
) -> None:
    """The same race as above, with its timing pinned down by a third, slower writer.

    A third transaction is appending to the audit trail (as any concurrent request does).
    Meanwhile the receiver's `close(referred_onward)` arrives, then a `close(unreachable)`
    of the same referral with the same If-Match. Once the third writer finishes, one close
    must win and the other get 412/409.
    """
    lpsk, kemensos = callers["LPSK"], callers["KEMENSOS"]
    rid = lpsk.create_ok(referral_body("KEMENSOS"))["id"]
    assert kemensos.act(rid, "assess", assess_body(), '"1"').status_code == 200

    with held_write(ctx.db) as busy, ThreadPoolExecutor(max_workers=2) as pool:
        # Its commit is under way: it holds the append lock (SQLite: the write lock).
        busy.hold_append_lock()
        busy.append_audit(action="test.concurrent_write", agency=None, client_id=None)
        onward = pool.submit(
            kemensos.act, rid, "close",
            {"outcome": "referred_onward", "onward_agency": "KEMENHAM"}, '"2"',
        )
        _wait_for_lock_waiters(ctx, 1)
        unreachable = pool.submit(
            kemensos.act, rid, "close", {"outcome": "unreachable"}, '"2"'
        )
        _wait_for_lock_waiters(ctx, 2)
        busy.rollback()
        responses = [onward.result(timeout=60), unreachable.result(timeout=60)]

    _no_server_errors(responses)
    statuses = _summary(responses)
    assert statuses[200] == 1 and statuses[412] + statuses[409] == 1, statuses
    current = kemensos.get(rid).json()
    assert current["status"] == "closed" and current["version"] == 3


# ---- (g) two worker processes, one database ------------------------------------------------


# A server on a free loopback port: with the other served tests on one xdist worker.
@pytest.mark.xdist_group("served")
def test_two_worker_processes_under_write_load_never_answer_a_server_error(
    settings: Settings, parties: dict[str, Party], clean: None, tmp_path: Path
) -> None:
    """`rujukan serve --workers 2`: two processes, each with its own engine and pool.

    On SQLite they share one database file: a writer of one process meets the write lock of
    the other. Each client works its own referrals through create, assess, note and close, so
    every request is expected to succeed; a "database is locked" must never reach a client.
    """
    threads, rounds = 6, 12
    served = serve(settings, tmp_path / "serve.log", workers=2)
    answers: list[httpx.Response] = []
    lock = threading.Lock()
    pairs = [("LPSK", "KEMENSOS"), ("KEMENHAM", "KEMENSOS"), ("KEMENSOS", "LPSK"),
             ("LPSK", "KEMENHAM"), ("KEMENSOS", "KEMENHAM"), ("KEMENHAM", "LPSK")]

    def work(i: int) -> httpx.Response:
        sender, receiver = pairs[i % len(pairs)]
        with (
            httpx.Client(base_url=served.base_url, timeout=60,
                         headers={"Authorization": f"Bearer {parties[sender].token}"}) as s,
            httpx.Client(base_url=served.base_url, timeout=60,
                         headers={"Authorization": f"Bearer {parties[receiver].token}"}) as r,
        ):
            last = None
            for _ in range(rounds):
                created = s.post("/v1/referrals", json=referral_body(receiver))
                steps = [created]
                if created.status_code == 201:
                    rid = created.json()["id"]
                    steps.append(r.post(f"/v1/referrals/{rid}/assess",
                                        json=assess_body(receiver), headers={"If-Match": '"1"'}))
                    steps.append(s.post(f"/v1/referrals/{rid}/notes", json={"text": "Sent."}))
                    steps.append(r.post(f"/v1/referrals/{rid}/close",
                                        json={"outcome": "unreachable"},
                                        headers={"If-Match": '"2"'}))
                with lock:
                    answers.extend(steps)
                last = steps[-1]
            assert last is not None
            return last

    try:
        started = time.monotonic()
        run_together([lambda i=i: work(i) for i in range(threads)])
        elapsed = time.monotonic() - started
    finally:
        served.stop()

    _no_server_errors(answers)
    locked = [r.text[:200] for r in answers if "locked" in r.text.lower()]
    assert not locked, locked[:3]
    statuses = _summary(answers)
    assert statuses == Counter({201: threads * rounds * 2, 200: threads * rounds * 2}), statuses
    with ctx_for(settings) as ctx:
        _assert_chain_linear(ctx)
        _assert_every_event_once(ctx)
        assert _count(ctx, "SELECT count(DISTINCT reference) FROM referral") == threads * rounds
    print(f"\ntwo workers: {len(answers)} writes in {elapsed:.1f}s, none refused")
