"""Webhook delivery from the outbox to a real receiver on loopback, every signature verified
with the `standardwebhooks` library."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.app import create_app
from service.context import ServiceContext
from service.db import insert_rows
from service.db.types import utcnow
from service.events import urlguard
from service.events.dispatcher import Dispatcher, backoff_seconds, wake_all
from service.events.models import Event, WebhookDelivery, WebhookSubscription
from service.events.service import new_secret, secret_context
from tests.support import Api, assert_problem, held_write, ok, referral_body
from tests.support.events import (
    EMBEDDED_IPV4_FORMS,
    FAST,
    PUBLIC_ADDRESS,
    all_events,
    drain,
    subscribe,
    variant,
    walk,
)
from tests.support.receiver import Received, Receiver

PATH = "/v1/webhook-subscriptions"
Make = Callable[..., Dispatcher]


def verified(secret: str, request: Received) -> dict[str, Any]:
    """The payload of a request whose signature verifies with `secret`."""
    return Webhook(secret).verify(request.body, request.headers)  # type: ignore[no-any-return]


def deliveries(api: Api, sid: str, **params: Any) -> list[dict[str, Any]]:
    return ok(  # type: ignore[no-any-return]
        api.http.get(f"{PATH}/{sid}/deliveries", params=params, headers=api.headers())
    )["items"]


def test_every_event_arrives_once_signed_and_as_thin_as_the_feed(
    lpsk: Api, kemensos: Api, receiver: Receiver, dispatchers: Make
) -> None:
    sub = subscribe(lpsk, receiver.url)
    walk(lpsk, kemensos)
    assert drain(dispatchers()) == 5
    arrived = receiver.wait_for(5)
    payloads = [verified(sub["secret"], r) for r in arrived]
    feed = all_events(lpsk)
    # Parallel sends and retries mean arrival order is not promised (the feed is ordered).
    assert sorted((p["data"] for p in payloads), key=lambda d: d["occurred_at"]) == feed
    assert all(p["timestamp"] == p["data"]["occurred_at"] for p in payloads)
    for request in arrived:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-signature"].startswith("v1,")
        assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60

    listed = deliveries(lpsk, sub["id"])
    assert {d["id"] for d in listed} == {r.headers["webhook-id"] for r in arrived}
    assert [d["event_id"] for d in reversed(listed)] == [e["id"] for e in feed]
    for d in listed:
        assert d["status"] == "delivered" and d["delivered_at"]
        assert [(a["number"], a["status_code"]) for a in d["attempts"]] == [(1, 204)]
    # Nothing is sent twice once delivered.
    assert drain(dispatchers()) == 0
    assert len(receiver.requests) == 5


def test_a_forged_or_altered_webhook_fails_verification(
    lpsk: Api, receiver: Receiver, dispatchers: Make
) -> None:
    sub = subscribe(lpsk, receiver.url, ["referral.created"])
    lpsk.create_ok("KEMENSOS")
    drain(dispatchers())
    (request,) = receiver.wait_for(1)
    verified(sub["secret"], request)
    with pytest.raises(WebhookVerificationError):
        verified(subscribe(lpsk, receiver.url)["secret"], request)
    tampered = Received(request.headers, request.body.replace(b"referred", b"closed"), 0)
    with pytest.raises(WebhookVerificationError):
        verified(sub["secret"], tampered)


def test_subscriptions_get_only_their_types_and_their_agency_s_referrals(
    lpsk: Api, kemensos: Api, kemenham: Api, dispatchers: Make
) -> None:
    closed_only, everything, outsider = Receiver(), Receiver(), Receiver()
    try:
        subscribe(kemensos, closed_only.url, ["referral.closed"])
        subscribe(lpsk, everything.url)
        other = subscribe(kemenham, outsider.url)
        rid = walk(lpsk, kemensos)
        ok(kemensos.act(rid, "close", {"outcome": "completed"}))
        drain(dispatchers())
        everything.wait_for(6)
        (closed,) = closed_only.wait_for(1)
        assert json.loads(closed.body)["type"] == "referral.closed"
        time.sleep(0.3)
        assert outsider.requests == []
        assert deliveries(kemenham, other["id"]) == []
        assert len(everything.requests) == 6 and len(closed_only.requests) == 1
    finally:
        for server in (closed_only, everything, outsider):
            server.close()


def test_protected_identities_never_reach_a_webhook(
    lpsk: Api, kemensos: Api, receiver: Receiver, dispatchers: Make
) -> None:
    subscribe(kemensos, receiver.url)
    body = referral_body("KEMENSOS", protected_identity=True, summary="Saksi Zulkarnaen")
    body["subject"]["full_name"] = "Siti Rahmawati Kusuma"
    created = ok(lpsk.create(body), 201)
    ok(kemensos.act(created["id"], "assess", {
        "needs": ["REHABILITASI_SOSIAL"], "approach": "residential",
        "service_unit": "SENTRA_HANDAYANI", "notes": "Safe house in Bekasi",
    }))
    drain(dispatchers())
    raw = b"".join(r.body for r in receiver.wait_for(2)) + b"".join(
        json.dumps(r.headers).encode() for r in receiver.requests
    )
    assert created["id"].encode() in raw
    for secret in (
        "Siti Rahmawati", body["subject"]["nik"], "Jl. Kenanga", "Zulkarnaen", "Bekasi",
        body["subject"]["birth_date"],
    ):
        assert secret.encode() not in raw


def test_failures_back_off_then_the_delivery_is_dead_and_can_be_retried(
    lpsk: Api, dispatchers: Make
) -> None:
    failing = Receiver(status=lambda n: 500 if n < 3 else 200)
    try:
        sub = subscribe(lpsk, failing.url, ["referral.created"])
        lpsk.create_ok("KEMENSOS")
        worker = dispatchers()
        deadline = time.monotonic() + 10
        while len(failing.requests) < 3 and time.monotonic() < deadline:
            worker.run_once()
            time.sleep(0.01)
        (delivery,) = deliveries(lpsk, sub["id"])
        assert delivery["status"] == "dead"
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 500]
        assert delivery["next_attempt_at"] is None
        # Attempt n waited at least half of base * 2**(n-1) after the one before it.
        at = [r.at for r in failing.requests]
        assert at[1] - at[0] >= FAST["webhook_backoff_base_seconds"] / 2
        assert at[2] - at[1] >= FAST["webhook_backoff_base_seconds"]
        assert drain(worker) == 0

        retried = ok(
            lpsk.http.post(f"{PATH}/{sub['id']}/deliveries/{delivery['id']}/retry",
                           headers=lpsk.headers()),
            202,
        )
        assert retried["status"] == "pending"
        drain(worker)
        requests = failing.wait_for(4)
        assert len({r.headers["webhook-id"] for r in requests}) == 1
        verified(sub["secret"], requests[-1])
        (delivery,) = deliveries(lpsk, sub["id"])
        assert delivery["status"] == "delivered"
        assert [a["number"] for a in delivery["attempts"]] == [1, 2, 3, 4]
    finally:
        failing.close()


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(4)
    for failures, step in ((1, 5), (2, 10), (3, 20), (8, 640), (20, 3600)):
        waits = [backoff_seconds(failures, 5, 3600, rng) for _ in range(200)]
        assert all(step / 2 <= w <= step for w in waits)
        assert max(waits) - min(waits) > step / 4  # jitter, not a fixed schedule


def test_a_410_answer_disables_the_subscription(
    lpsk: Api, dispatchers: Make
) -> None:
    gone = Receiver(status=lambda n: 410)
    try:
        sub = subscribe(lpsk, gone.url, ["referral.created"])
        lpsk.create_ok("KEMENSOS")
        drain(dispatchers())
        gone.wait_for(1)
        state = ok(lpsk.http.get(f"{PATH}/{sub['id']}", headers=lpsk.headers()))
        assert state["active"] is False and "410" in state["disabled_reason"]
        (delivery,) = deliveries(lpsk, sub["id"])
        assert delivery["status"] == "dead" and delivery["last_status_code"] == 410
        lpsk.create_ok("KEMENSOS")
        drain(dispatchers())
        time.sleep(0.2)
        assert len(gone.requests) == 1
        assert len(deliveries(lpsk, sub["id"])) == 1
        assert_problem(
            lpsk.http.post(f"{PATH}/{sub['id']}/deliveries/{delivery['id']}/retry",
                           headers=lpsk.headers()),
            409,
        )
    finally:
        gone.close()


def test_a_410_settles_the_subscription_s_other_pending_deliveries(
    lpsk: Api, dispatchers: Make
) -> None:
    gone = Receiver(status=lambda n: 410)
    try:
        sub = subscribe(lpsk, gone.url, ["referral.created"])
        for _ in range(3):
            lpsk.create_ok("KEMENSOS")
        # One delivery per batch: the 410 comes while the other two are still pending.
        assert dispatchers(webhook_batch_size=1).run_once() == 1
        assert len(gone.wait_for(1)) == 1
        owed = deliveries(lpsk, sub["id"])
        assert [d["status"] for d in owed] == ["dead"] * 3
        answered = [d for d in owed if d["attempts"]]
        assert len(answered) == 1 and answered[0]["last_status_code"] == 410
        settled = [d for d in owed if not d["attempts"]]
        assert [d["last_error"] for d in settled] == ["subscription disabled"] * 2
        assert deliveries(lpsk, sub["id"], status="pending") == []
        assert drain(dispatchers()) == 0
        assert len(gone.requests) == 1
    finally:
        gone.close()


def rebound(
    ctx: ServiceContext, lpsk: Api, receiver: Receiver, dispatchers: Make,
    monkeypatch: pytest.MonkeyPatch, address: str, **dispatcher_settings: Any,
) -> dict[str, Any]:
    """Subscribe (private addresses refused) to a name that resolves to a public address, then
    point the name at `address`, make an event and let a dispatcher try it (with
    `dispatcher_settings`); the subscription."""
    answers = {"rebind.example.net": [PUBLIC_ADDRESS]}
    monkeypatch.setattr(urlguard, "resolve", lambda host, port: answers[host])
    strict = variant(ctx, webhook_allow_private=False)
    url = f"http://rebind.example.net:{receiver.port}/hook"
    with TestClient(create_app(ctx=strict), raise_server_exceptions=False) as http:
        response = http.post(PATH, json={"url": url, "event_types": ["referral.created"]},
                             headers=lpsk.headers())
        sub: dict[str, Any] = ok(response, 201)
    answers["rebind.example.net"] = [address]
    lpsk.create_ok("KEMENSOS")
    drain(dispatchers(webhook_allow_private=False, **dispatcher_settings))
    return sub


def test_the_address_is_checked_again_at_delivery_time(
    ctx: ServiceContext, lpsk: Api, receiver: Receiver, dispatchers: Make,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name was public when subscribed and points to loopback later."""
    sub = rebound(ctx, lpsk, receiver, dispatchers, monkeypatch, "127.0.0.1")
    time.sleep(0.2)
    assert receiver.requests == []
    (delivery,) = deliveries(lpsk, sub["id"])
    assert delivery["attempts"][0]["status_code"] is None
    assert delivery["attempts"][0]["error"].startswith("refused")

    # Where private addresses are allowed, the connection goes to the address that was
    # checked, while the receiver still sees its own name.
    drain(dispatchers(webhook_allow_private=True))
    (request,) = receiver.wait_for(1)
    assert request.headers["host"] == f"rebind.example.net:{receiver.port}"
    verified(sub["secret"], request)


@pytest.mark.parametrize("address", EMBEDDED_IPV4_FORMS)
def test_a_name_that_turns_into_an_ipv6_form_of_a_private_address_is_refused_at_delivery(
    ctx: ServiceContext, lpsk: Api, receiver: Receiver, dispatchers: Make,
    monkeypatch: pytest.MonkeyPatch, address: str,
) -> None:
    # The retry an instant later, on a busy machine, would be a second attempt: not this time.
    later = {"webhook_backoff_base_seconds": 60, "webhook_backoff_max_seconds": 60}
    sub = rebound(ctx, lpsk, receiver, dispatchers, monkeypatch, address, **later)
    assert receiver.requests == []
    (delivery,) = deliveries(lpsk, sub["id"])
    (attempt,) = delivery["attempts"]
    # Refused before any connection: no status code, and the guard's reason.
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("refused"), attempt["error"]


def test_both_secrets_sign_during_a_rotation_overlap(
    lpsk: Api, receiver: Receiver, dispatchers: Make
) -> None:
    sub = subscribe(lpsk, receiver.url, ["referral.created"])
    old = sub["secret"]
    rotated = ok(lpsk.http.post(f"{PATH}/{sub['id']}/rotate-secret",
                                json={"overlap_seconds": 600}, headers=lpsk.headers()))
    new = rotated["secret"]
    assert new != old and rotated["previous_secret_expires_at"]
    lpsk.create_ok("KEMENSOS")
    drain(dispatchers())
    (during,) = receiver.wait_for(1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verified(old, during)
    verified(new, during)

    newest = ok(lpsk.http.post(f"{PATH}/{sub['id']}/rotate-secret",
                               json={"overlap_seconds": 0}, headers=lpsk.headers()))["secret"]
    lpsk.create_ok("KEMENSOS")
    drain(dispatchers())
    after = receiver.wait_for(2)[1]
    verified(newest, after)
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            verified(stale, after)


def test_two_workers_never_send_one_delivery_both(
    lpsk: Api, dispatchers: Make
) -> None:
    slow = Receiver(delay=0.03)
    try:
        sub = subscribe(lpsk, slow.url, ["referral.created"])
        for _ in range(30):
            lpsk.create_ok("KEMENSOS")
        workers = [dispatchers(f"worker-{i}", webhook_batch_size=4) for i in range(2)]
        stop = threading.Event()
        threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
        for t in threads:
            t.start()
        try:
            slow.wait_for(30, timeout=60)
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        ids = [r.headers["webhook-id"] for r in slow.requests]
        assert len(ids) == len(set(ids)) == 30
        listed = deliveries(lpsk, sub["id"], limit=100)
        assert all(d["status"] == "delivered" and len(d["attempts"]) == 1 for d in listed)
    finally:
        slow.close()


def test_a_claimed_delivery_is_left_alone_until_its_lease_expires(
    lpsk: Api, receiver: Receiver, dispatchers: Make
) -> None:
    """A worker dies after sending, before marking: the delivery is sent again after the
    lease, with the same webhook-id, and never lost."""
    sub = subscribe(lpsk, receiver.url, ["referral.created"])
    lpsk.create_ok("KEMENSOS")
    crashed = dispatchers("crashed", webhook_lease_seconds=1.5, webhook_timeout_seconds=1.0)
    (claim,) = crashed.claim()
    assert crashed.send(claim).delivered
    # ... and the process dies here, before record().
    survivor = dispatchers("survivor")
    assert survivor.claim() == []
    time.sleep(1.6)
    assert drain(survivor) == 1
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == str(claim.delivery_id)
    assert verified(sub["secret"], first) == verified(sub["secret"], second)
    (delivery,) = deliveries(lpsk, sub["id"])
    assert delivery["status"] == "delivered"


def test_the_embedded_dispatcher_delivers_inside_the_web_process(
    ctx: ServiceContext, lpsk: Api, receiver: Receiver
) -> None:
    sub = subscribe(lpsk, receiver.url, ["referral.created"])
    # A poll interval far longer than the test: only the wake-up on commit can deliver.
    embedded = variant(ctx, embedded_dispatcher=True, dispatcher_poll_seconds=60)
    with TestClient(create_app(ctx=embedded), raise_server_exceptions=False) as http:
        time.sleep(0.5)  # the dispatcher's first look found nothing; it now waits
        created = ok(http.post("/v1/referrals", json=referral_body("KEMENSOS"),
                               headers=lpsk.headers()), 201)
        (request,) = receiver.wait_for(1, timeout=10)
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 10  # shutdown does not wait out the poll
    assert verified(sub["secret"], request)["data"]["referral_id"] == created["id"]


def test_deleting_a_subscription_mid_delivery_stops_it_cleanly(
    lpsk: Api, receiver: Receiver, dispatchers: Make
) -> None:
    sub = subscribe(lpsk, receiver.url, ["referral.created"])
    lpsk.create_ok("KEMENSOS")
    worker = dispatchers()
    (claim,) = worker.claim()
    assert lpsk.http.delete(f"{PATH}/{sub['id']}", headers=lpsk.headers()).status_code == 204
    worker.record(claim, worker.send(claim))
    lpsk.create_ok("KEMENSOS")
    assert drain(worker) == 0
    assert len(receiver.requests) == 1


def test_a_waiting_worker_is_woken_by_a_commit(
    ctx: ServiceContext, lpsk: Api, receiver: Receiver, dispatchers: Make
) -> None:
    """On PostgreSQL through LISTEN/NOTIFY (any process), on SQLite in-process."""
    subscribe(lpsk, receiver.url, ["referral.created"])
    worker = dispatchers(dispatcher_poll_seconds=60)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.5)  # its first look found nothing; it now waits on the poll
        lpsk.create_ok("KEMENSOS")
        receiver.wait_for(1, timeout=10)
    finally:
        stop.set()
        wake_all(ctx)
        thread.join(15)
    assert not thread.is_alive()


def test_a_slow_receiver_times_out_and_a_redirect_is_not_followed(
    lpsk: Api, dispatchers: Make
) -> None:
    slow, redirecting = Receiver(delay=1.5), Receiver(status=lambda n: 302)
    try:
        slow_sub = subscribe(lpsk, slow.url, ["referral.created"])
        moved_sub = subscribe(lpsk, redirecting.url, ["referral.created"])
        lpsk.create_ok("KEMENSOS")
        started = time.monotonic()
        dispatchers(webhook_timeout_seconds=0.5, webhook_max_attempts=5).run_once()
        assert time.monotonic() - started < 1.4
        (timed_out,) = deliveries(lpsk, slow_sub["id"])
        assert timed_out["status"] == "pending"
        assert timed_out["attempts"][0]["error"] == "timeout"
        (moved,) = deliveries(lpsk, moved_sub["id"])
        assert moved["status"] == "pending" and moved["last_status_code"] == 302
        assert len(redirecting.requests) == 1
    finally:
        slow.close()
        redirecting.close()


class TricklingReceiver:
    """A loopback receiver that reads the request, then sends its answer's header one byte at
    a time, each byte well within a read timeout: only an overall deadline ends the attempt."""

    ANSWER = b"HTTP/1.1 204 No Content\r\n" + b"X-Slow: " + b"z" * 40 + b"\r\n\r\n"

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.requests = 0
        self.closed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/hook"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                self.requests += 1
                try:
                    for byte in self.ANSWER:
                        if self.closed.wait(self.gap):
                            return
                        conn.sendall(bytes([byte]))
                except OSError:
                    continue  # the sender hung up: the deadline worked

    def close(self) -> None:
        self.closed.set()
        self._server.close()


def test_a_trickling_receiver_cannot_hold_an_attempt_past_its_deadline(
    lpsk: Api, dispatchers: Make
) -> None:
    # 75 bytes at 0.1 s each: 7.5 s of answer, never 0.1 s without a byte.
    trickle = TricklingReceiver(gap=0.1)
    try:
        sub = subscribe(lpsk, trickle.url, ["referral.created"])
        lpsk.create_ok("KEMENSOS")
        started = time.monotonic()
        dispatchers(webhook_timeout_seconds=1.0, webhook_lease_seconds=3.0).run_once()
        took = time.monotonic() - started
        assert trickle.requests == 1
        assert took < 2.0, took
        (delivery,) = deliveries(lpsk, sub["id"])
        assert delivery["status"] == "pending"
        (attempt,) = delivery["attempts"]
        assert attempt["error"] == "timeout"
        assert 900 <= attempt["duration_ms"] < 3000  # ended before the lease
    finally:
        trickle.close()


def test_every_dead_delivery_can_be_queued_again_at_once(
    lpsk: Api, kemensos: Api, dispatchers: Make
) -> None:
    down = {"on": True}
    flaky = Receiver(status=lambda n: 503 if down["on"] else 204)
    try:
        sub = subscribe(lpsk, flaky.url, ["referral.created"])
        for _ in range(3):
            lpsk.create_ok("KEMENSOS")
        drain(dispatchers(webhook_max_attempts=1))
        assert {d["status"] for d in deliveries(lpsk, sub["id"])} == {"dead"}
        retry = f"{PATH}/{sub['id']}/deliveries/retry"
        assert_problem(kemensos.http.post(retry, headers=kemensos.headers()), 404)
        down["on"] = False
        assert ok(lpsk.http.post(retry, headers=lpsk.headers()), 202) == {"queued": 3}
        drain(dispatchers())
        assert {d["status"] for d in deliveries(lpsk, sub["id"])} == {"delivered"}
        ids = [r.headers["webhook-id"] for r in flaky.requests]
        assert len(ids) == 6 and len(set(ids)) == 3  # the same ids as the failed attempts
        assert ok(lpsk.http.post(retry, headers=lpsk.headers()), 202) == {"queued": 0}
    finally:
        flaky.close()


def _wait_for_a_lock_waiter(ctx: ServiceContext) -> None:
    """On PostgreSQL, until a session waits for an advisory lock (the audit lock)."""
    if ctx.db.sqlite:
        return  # The waiting writer queues for the database's write lock instead.
    deadline = time.monotonic() + 10
    with ctx.db.autocommit() as session:
        while time.monotonic() < deadline:
            waiting = session.execute(
                text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            ).scalar_one()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("no writer waited for the audit lock")


def test_an_event_written_while_a_subscription_commits_is_owed_to_it(
    ctx: ServiceContext, lpsk: Api
) -> None:
    """A subscription is committed while a create is already under way: the create's event,
    numbered after the subscription's audit entry, gets a delivery for it."""
    now = utcnow()
    row = WebhookSubscription(
        agency=lpsk.agency,
        url="https://hooks.example.org/rujukan",
        event_types=["referral.created"],
        secret_sealed="",
        created_by_client=lpsk.party.client_id,
        created_at=now,
        updated_at=now,
    )
    row.secret_sealed = ctx.keyring.seal(new_secret(), secret_context(row.id))
    created: dict[str, Any] = {}
    creating = threading.Thread(
        target=lambda: created.update(response=lpsk.create(referral_body("KEMENSOS")))
    )
    with held_write(ctx.db) as w:
        # What POST /v1/webhook-subscriptions does in its transaction; its commit is under
        # way (it holds the append lock) when the create reaches the lock.
        w.session.add(row)
        w.hold_append_lock()
        w.append_audit(
            action="webhook_subscription.create",
            agency=lpsk.agency,
            client_id=lpsk.party.client_id,
            detail={"subscription_id": str(row.id), "event_types": row.event_types},
        )
        creating.start()
        _wait_for_a_lock_waiter(ctx)
        w.commit()
    creating.join(30)
    referral = ok(created["response"], 201)
    (owed,) = deliveries(lpsk, str(row.id))
    (event,) = [e for e in all_events(lpsk) if e["referral_id"] == referral["id"]]
    assert owed["event_id"] == event["id"]


def test_deleting_a_subscription_while_an_action_owes_it_a_delivery_is_no_deadlock(
    ctx: ServiceContext, lpsk: Api
) -> None:
    """An action is committing (it holds the append lock) and owes the subscription a
    delivery; meanwhile the subscription is deleted. The delete waits for the action, then
    succeeds; the action is not made to wait for the delete's row lock in turn."""
    sid = subscribe(lpsk, "https://hooks.example.org/rujukan", ["referral.created"])["id"]
    lpsk.create_ok("KEMENSOS")
    (event,) = [e for e in all_events(lpsk) if e["type"] == "referral.created"]
    with held_write(ctx.db) as action:
        action.hold_append_lock()
        action.session.execute(text("SELECT 1"))  # SQLite: BEGIN IMMEDIATE, the write lock
        deleted: dict[str, Any] = {}
        deleting = threading.Thread(
            target=lambda: deleted.update(
                response=lpsk.http.delete(
                    f"/v1/webhook-subscriptions/{sid}", headers=lpsk.headers()
                )
            )
        )
        deleting.start()
        _wait_for_a_lock_waiter(ctx)
        now = utcnow()
        insert_rows(
            action.session,
            [
                WebhookDelivery(
                    subscription_id=uuid.UUID(sid),
                    event_seq=action.session.execute(
                        select(Event.seq).where(Event.id == uuid.UUID(event["id"]))
                    ).scalar_one(),
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            ],
        )
        action.commit()
    deleting.join(30)
    assert deleted["response"].status_code == 204, deleted["response"].text
    assert_problem(
        lpsk.http.get(f"/v1/webhook-subscriptions/{sid}", headers=lpsk.headers()), 404
    )
