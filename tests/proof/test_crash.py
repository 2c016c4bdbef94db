"""Power cuts: SIGKILL `rujukan serve --workers 2` at random moments, restart, lose nothing.

Clients create referrals and move them through the workflow (assess, serve, notes, close) and
record every answer the service acknowledged (2xx). The server, workers included, is killed
with SIGKILL at a random moment, again and again, and restarted each time. Afterwards every
acknowledged referral, transition and note must be in the database, the database must be
consistent (SQLite `PRAGMA integrity_check` and `foreign_key_check`; PostgreSQL amcheck on
every index and heap, and orphan queries), and `rujukan audit verify` must pass.

RUJUKAN_CRASH_KILLS sets the number of kills (`make crash-test` raises it).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.app import create_app
from service.context import ServiceContext
from service.db import upgrade_to_head
from service.referrals import workflow
from tests.proof.test_workflow_model import event_of
from tests.support import (
    AGENCIES,
    ALL_SCOPES,
    Party,
    assess_body,
    referral_body,
    service_body,
    writer_session,
)
from tests.support.databases import make_settings
from tests.support.receiver import Receiver
from tests.support.served import rujukan, serve

pytestmark = [pytest.mark.crash, pytest.mark.slow]

KILLS = int(os.environ.get("RUJUKAN_CRASH_KILLS", "10"))
CLIENTS = 4
# How long the clients go on writing before each kill, once the first write of the run was
# acknowledged: random, so kills land at every point of a request (parsing, inside the
# transaction, at commit, while answering).
UP_SECONDS = (0.0, 1.2)
# Each driver keeps few referrals open, so most writes are transitions, not creates.
OPEN_PER_CLIENT = 3
# The dispatcher embedded in each worker, with a short lease: a delivery claimed by a killed
# worker is taken again soon after.
DISPATCH = {
    "embedded_dispatcher": "1",
    "webhook_allow_private": "1",
    "dispatcher_poll_seconds": "0.1",
    "webhook_timeout_seconds": "2",
    "webhook_lease_seconds": "3",
    "webhook_backoff_base_seconds": "0.1",
    "webhook_backoff_max_seconds": "1",
}
NEXT = {"referred": "assess", "assessed": "serve", "served": "close"}


@dataclass
class Ledger:
    """What the service acknowledged (2xx), shared by the driver threads."""

    references: dict[str, str] = field(default_factory=dict)
    actions: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    versions: dict[str, int] = field(default_factory=dict)
    notes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    unacknowledged: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def writes(self) -> int:
        with self.lock:
            return sum(sum(c.values()) for c in self.actions.values())


class Driver(threading.Thread):
    """One client system: its own referrals, one at a time per request, until told to stop."""

    def __init__(
        self, n: int, base_url: str, tokens: dict[str, str], ledger: Ledger,
        stop: threading.Event, state: dict[str, tuple[str, int] | None],
    ) -> None:
        super().__init__(daemon=True)
        self.rng = random.Random(n * 7919 + len(state))
        self.sender = AGENCIES[n % 3]
        self.receiver = AGENCIES[(n + 1) % 3]
        self.base_url = base_url
        self.tokens = tokens
        self.ledger = ledger
        self.stop = stop
        # referral id -> (status, version) as last acknowledged, or None when a request on it
        # went unanswered (its outcome is unknown until it is read again).
        self.state = state
        # An unexpected answer ends the thread; the test reports it.
        self.error: BaseException | None = None

    def _client(self, agency: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=10,
            headers={"Authorization": f"Bearer {self.tokens[agency]}"},
        )

    def run(self) -> None:
        try:
            with self._client(self.sender) as sender, self._client(self.receiver) as receiver:
                while not self.stop.is_set():
                    try:
                        self._step(sender, receiver)
                    except httpx.TransportError:
                        with self.ledger.lock:
                            self.ledger.unacknowledged += 1
                        time.sleep(0.02)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def _step(self, sender: httpx.Client, receiver: httpx.Client) -> None:
        open_ids = [rid for rid, s in self.state.items() if s is None or s[0] != "closed"]
        if len(open_ids) < OPEN_PER_CLIENT:
            self._create(sender)
            return
        rid = self.rng.choice(open_ids)
        if self.state[rid] is None:
            self._resync(receiver, rid)
            return
        if self.rng.random() < 0.25:
            self._note(sender if self.rng.random() < 0.5 else receiver, rid)
            return
        status, version = self.state[rid]  # type: ignore[misc]
        action = NEXT[status]
        body = {
            "assess": lambda: assess_body(self.receiver),
            "serve": lambda: service_body(self.receiver),
            "close": lambda: {"outcome": "completed"},
        }[action]()
        self.state[rid] = None
        answer = receiver.post(
            f"/v1/referrals/{rid}/{action}", json=body, headers={"If-Match": f'"{version}"'}
        )
        assert answer.status_code < 500, answer.text
        assert answer.status_code == 200, answer.text
        read = answer.json()
        with self.ledger.lock:
            self.ledger.actions[rid]["close:completed" if action == "close" else action] += 1
            self.ledger.versions[rid] = max(self.ledger.versions.get(rid, 0), read["version"])
        self.state[rid] = (read["status"], read["version"])

    def _create(self, sender: httpx.Client) -> None:
        answer = sender.post("/v1/referrals", json=referral_body(self.receiver))
        assert answer.status_code == 201, answer.text
        read = answer.json()
        with self.ledger.lock:
            self.ledger.references[read["id"]] = read["reference"]
            self.ledger.actions[read["id"]]["create"] += 1
            self.ledger.versions[read["id"]] = read["version"]
        self.state[read["id"]] = (read["status"], read["version"])

    def _note(self, client: httpx.Client, rid: str) -> None:
        answer = client.post(f"/v1/referrals/{rid}/notes", json={"text": "Called the family."})
        assert answer.status_code == 201, answer.text
        with self.ledger.lock:
            self.ledger.actions[rid]["add_note"] += 1
            self.ledger.notes[rid].add(answer.json()["id"])

    def _resync(self, client: httpx.Client, rid: str) -> None:
        answer = client.get(f"/v1/referrals/{rid}")
        assert answer.status_code == 200, answer.text
        self.state[rid] = (answer.json()["status"], answer.json()["version"])


def _consistency_problems(ctx: ServiceContext) -> list[str]:
    """What the database engine's own checks and the orphan queries find wrong."""
    problems: list[str] = []
    orphans = {
        "history without referral": "SELECT count(*) FROM referral_history h "
        "LEFT JOIN referral r ON r.id = h.referral_id WHERE r.id IS NULL",
        "note without referral": "SELECT count(*) FROM referral_note n "
        "LEFT JOIN referral r ON r.id = n.referral_id WHERE r.id IS NULL",
        "referral without its create": "SELECT count(*) FROM referral r WHERE NOT EXISTS "
        "(SELECT 1 FROM referral_history h WHERE h.referral_id = r.id AND h.action = 'create')",
        "version other than its history": "SELECT count(*) FROM referral r WHERE r.version <> "
        "(SELECT count(*) FROM referral_history h WHERE h.referral_id = r.id "
        "AND h.action <> 'add_note')",
        "note without its history row": "SELECT count(*) FROM referral_note n WHERE NOT EXISTS "
        "(SELECT 1 FROM referral_history h WHERE h.referral_id = n.referral_id "
        "AND h.action = 'add_note')",
    }
    with writer_session(ctx.db) as session:
        if ctx.db.sqlite:
            rows = [r[0] for r in session.execute(text("PRAGMA integrity_check"))]
            if rows != ["ok"]:
                problems.append(f"integrity_check: {rows[:5]}")
            fks = list(session.execute(text("PRAGMA foreign_key_check")))
            if fks:
                problems.append(f"foreign_key_check: {fks[:5]}")
        else:
            session.execute(text("CREATE EXTENSION IF NOT EXISTS amcheck"))
            indexes = session.execute(
                text(
                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_am a "
                    "ON a.oid = c.relam WHERE n.nspname = 'public' AND a.amname = 'btree'"
                )
            ).scalars().all()
            for index in indexes:
                # heapallindexed: every heap tuple must be found in the index too.
                session.execute(text("SELECT bt_index_check(CAST(:i AS regclass), true)"),
                                {"i": index})
            tables = session.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ).scalars().all()
            for table in tables:
                bad = session.execute(
                    text("SELECT count(*) FROM verify_heapam(CAST(:t AS regclass))"), {"t": table}
                ).scalar_one()
                if bad:
                    problems.append(f"verify_heapam({table}): {bad} corrupt tuples")
            assert len(indexes) >= 5
        for name, sql in orphans.items():
            count = session.execute(text(sql)).scalar_one()
            if count:
                problems.append(f"{count} {name}")
        session.rollback()
    return problems


def _read_feed(client: httpx.Client, token: str) -> list[dict[str, object]]:
    """An agency's whole event feed, page by page."""
    items: list[dict[str, object]] = []
    params: dict[str, object] = {"limit": 500}
    while True:
        page = client.get("/v1/events", params=params,
                          headers={"Authorization": f"Bearer {token}"})
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        if not page.json()["has_more"]:
            return items
        params["after"] = page.json()["next_cursor"]


def _assert_outbox_matches_history(ctx: ServiceContext) -> dict[str, set[str]]:
    """Every history row has its event, once; numbered 1..n without gaps. {event id: parties}."""
    with ctx.db.reader() as session:
        history = Counter(
            (str(uuid.UUID(str(rid))), event_of(action))
            for rid, action in session.execute(
                text("SELECT referral_id, action FROM referral_history")
            )
        )
        rows = session.execute(
            text("SELECT seq, id, referral_id, type, from_agency, to_agency FROM event "
                 "ORDER BY seq")
        ).all()
    outbox = Counter((str(uuid.UUID(str(r.referral_id))), r.type) for r in rows)
    assert outbox == history, "the outbox and the history disagree"
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    ids = [str(uuid.UUID(str(r.id))) for r in rows]
    assert len(set(ids)) == len(ids)
    return {i: {r.from_agency, r.to_agency} for i, r in zip(ids, rows, strict=True)}


def _wait_for_deliveries(ctx: ServiceContext, receiver: Receiver, timeout: float = 90) -> int:
    """Until every event has one delivery per subscribed party and all arrived; their count."""
    deadline = time.monotonic() + timeout
    while True:
        with ctx.db.reader() as session:
            missing = session.execute(
                text(
                    "SELECT count(*) FROM event e JOIN webhook_subscription s "
                    "ON s.agency IN (e.from_agency, e.to_agency) WHERE NOT EXISTS "
                    "(SELECT 1 FROM webhook_delivery d WHERE d.event_seq = e.seq "
                    "AND d.subscription_id = s.id)"
                )
            ).scalar_one()
            rows = session.execute(text("SELECT id, status FROM webhook_delivery")).all()
        assert missing == 0, f"{missing} events lack a delivery to a subscribed party"
        arrived = {r.headers["webhook-id"] for r in list(receiver.requests)}
        ids = {str(uuid.UUID(str(r.id))) for r in rows}
        statuses = Counter(r.status for r in rows)
        if statuses.keys() == {"delivered"} and ids <= arrived:
            return len(ids)
        assert "dead" not in statuses, statuses
        if time.monotonic() > deadline:
            raise AssertionError(f"deliveries {statuses}, {len(ids - arrived)} never arrived")
        time.sleep(0.2)


def test_sigkill_at_random_moments_loses_no_acknowledged_write(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    url = new_database_url(backend)
    upgrade_to_head(url)
    settings = make_settings(url, tmp_path)
    ctx = ServiceContext.build(settings)
    try:
        receiver = Receiver()
        with TestClient(create_app(ctx=ctx)) as http:
            tokens = {a: Party.register(ctx, http, a, ALL_SCOPES).token for a in AGENCIES}
            for agency in AGENCIES:
                subscribed = http.post(
                    "/v1/webhook-subscriptions",
                    json={"url": receiver.url, "event_types": list(workflow.EVENT_TYPES)},
                    headers={"Authorization": f"Bearer {tokens[agency]}"},
                )
                assert subscribed.status_code == 201, subscribed.text
        ledger = Ledger()
        states: list[dict[str, tuple[str, int] | None]] = [{} for _ in range(CLIENTS)]
        seed = os.environ.get("RUJUKAN_CRASH_SEED") or "20261201"
        rng = random.Random(seed)
        log = tmp_path / "serve.log"
        kills = 0
        for _ in range(KILLS):
            served = serve(settings, log, workers=2, **DISPATCH)
            stop = threading.Event()
            drivers = [
                Driver(n, served.base_url, tokens, ledger, stop, states[n])
                for n in range(CLIENTS)
            ]
            before = ledger.writes()
            for driver in drivers:
                driver.start()
            deadline = time.monotonic() + 60
            while ledger.writes() == before and time.monotonic() < deadline:
                time.sleep(0.01)
            assert ledger.writes() > before, "the restarted server acknowledged no write"
            time.sleep(rng.uniform(*UP_SECONDS))
            served.kill()
            kills += 1
            stop.set()
            for driver in drivers:
                driver.join(timeout=30)
                assert not driver.is_alive()
                assert driver.error is None, repr(driver.error)

        # A last start proves the database still serves, and the API shows what was acked.
        served = serve(settings, log, workers=2, **DISPATCH)
        try:
            with httpx.Client(base_url=served.base_url, timeout=30) as client:
                for rid, reference in ledger.references.items():
                    found = [
                        client.get(f"/v1/referrals/{rid}",
                                   headers={"Authorization": f"Bearer {tokens[a]}"})
                        for a in AGENCIES
                    ]
                    assert sorted(r.status_code for r in found) == [200, 200, 404]
                    body = next(r for r in found if r.status_code == 200).json()
                    assert body["reference"] == reference
                    assert body["version"] >= ledger.versions[rid]
                feeds = {a: _read_feed(client, tokens[a]) for a in AGENCIES}
            delivered = _wait_for_deliveries(ctx, receiver)
        finally:
            served.stop()
            receiver.close()

        with ctx.db.reader() as session:
            history = Counter(
                (str(uuid.UUID(str(rid))), action)
                for rid, action in session.execute(
                    text("SELECT referral_id, action FROM referral_history")
                )
            )
            notes = {str(uuid.UUID(str(n))) for n in session.execute(
                text("SELECT id FROM referral_note")).scalars()}
        lost = [
            (rid, action, count, history[(rid, action)])
            for rid, counts in ledger.actions.items()
            for action, count in counts.items()
            if history[(rid, action)] < count
        ]
        assert not lost, f"{len(lost)} acknowledged writes lost, e.g. {lost[:3]}"
        missing_notes = [n for ids in ledger.notes.values() for n in ids if n not in notes]
        assert not missing_notes, missing_notes[:3]

        assert _consistency_problems(ctx) == []
        events = _assert_outbox_matches_history(ctx)
        for agency, feed in feeds.items():
            ids = [e["id"] for e in feed]
            assert len(ids) == len(set(ids)), f"an event reached {agency} twice"
            expected = {eid for eid, parties in events.items() if agency in parties}
            assert set(ids) == expected, f"{agency}'s feed differs from the outbox"
        verified = rujukan(settings, "audit", "verify")
        assert verified.returncode == 0, verified.stderr
        entries = json.loads(verified.stdout)["entries"]

        checked = ledger.writes()
        assert kills == KILLS
        print(
            f"\ncrash test ({backend}, seed {seed}): {kills} kills survived, {checked} "
            f"acknowledged writes ({len(ledger.references)} referrals) all present, "
            f"{ledger.unacknowledged} requests cut off, {entries} audit entries verified, "
            f"{len(events)} events each in the outbox and the parties' feeds once, "
            f"{delivered} webhooks delivered"
        )
    finally:
        ctx.db.dispose()
