"""Delivering the webhook outbox: claim due deliveries, sign, send, record the outcome.

At-least-once: a delivery is marked only after its HTTP attempt, so a worker that dies in
between leaves a claim whose lease expires, and another worker sends it again under the same
`webhook-id` (receivers deduplicate on it). Nothing is lost; nothing is sent by two workers
at the same time while a lease holds.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
import psycopg
from standardwebhooks import Webhook

from service.audit.head import HeadWriter
from service.context import ServiceContext
from service.db.types import utcnow
from service.db.writes import EVENTS_COMMITTED, OUTBOX_CHANNEL, Writes
from service.events import repository as repo
from service.events import service, urlguard
from service.events.models import WebhookAttempt

log = logging.getLogger("rujukan.webhooks")
USER_AGENT = "Rujukan-Webhooks/1"
SUBSCRIPTION_DISABLED = "subscription disabled"


def backoff_seconds(
    failures: int, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Wait after the n-th consecutive failure: exponential, capped, with "equal jitter"
    (half fixed, half random) so receivers coming back are not hit by every sender at once,
    yet the schedule still grows. The schedule is stored in the outbox rather than slept
    through in-process, which is why a retry library's sleep loop does not fit here."""
    step: float = min(cap, base * 2 ** max(0, failures - 1))
    jitter = rng.random() if rng else random.random()  # noqa: S311 - jitter, not crypto
    return step / 2 + jitter * step / 2


@dataclass(frozen=True)
class Claim:
    """A leased delivery with everything needed to send it."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    url: str
    secrets: list[str]
    body: str
    attempt: int
    failures: int


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt gave."""

    started_at: dt.datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# The end of the current thread's attempt (time.monotonic()); each pool thread sends one
# attempt at a time, so a thread-local is the attempt's own.
_attempt = threading.local()


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """The smaller of an operation's own timeout and what is left of the attempt's budget."""
    deadline: float | None = getattr(_attempt, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the attempt's overall deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write also ends at the attempt's deadline.

    httpx's timeouts hold per operation: a receiver answering one byte at a time just under
    the read timeout would otherwise keep an attempt going past the delivery's lease.
    """

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(
            self._stream.start_tls(
                ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout)
            )
        )

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own socket backend, its connections bounded by the attempt's deadline."""

    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _transport() -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(trust_env=False)
    # httpx (0.28) takes no network backend of its own; its pool is replaced by the same
    # pool over the deadline backend. No kept-alive connections (see Dispatcher).
    transport._pool = httpcore.ConnectionPool(  # noqa: SLF001
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_keepalive_connections=0,
        network_backend=_DeadlineBackend(),
    )
    return transport


def payload(event_read: dict[str, Any]) -> str:
    """The webhook body: Standard Webhooks' {type, timestamp, data}, data a feed item."""
    return json.dumps(
        {"type": event_read["type"], "timestamp": event_read["occurred_at"], "data": event_read},
        separators=(",", ":"),
    )


class _Waiter:
    """Waits for newly committed events, or at most the poll interval: LISTEN on PostgreSQL
    (commits in any process), the in-process commit signal on SQLite."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._url = ctx.db.listen_url
        self._conn: psycopg.Connection | None = None

    def wait(self, timeout: float) -> None:
        if self._url is None:
            if EVENTS_COMMITTED.wait(timeout):
                EVENTS_COMMITTED.clear()
            return
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._url, autocommit=True)
                self._conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            # Without notifications the dispatcher still polls.
            self.close()
            time.sleep(timeout)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def wake_all(ctx: ServiceContext) -> None:
    """Wake every waiting dispatcher, so that one being stopped need not wait out its poll."""
    EVENTS_COMMITTED.set()
    ctx.db.notify(OUTBOX_CHANNEL)


class Dispatcher:
    """One worker of the outbox; several may run at once, in threads or processes."""

    def __init__(
        self, ctx: ServiceContext, *, name: str | None = None, heads: HeadWriter | None = None
    ) -> None:
        self.ctx = ctx
        # Signed heads of the audit trail, written while it runs and when it closes.
        self.heads = heads if heads is not None else HeadWriter.from_settings(ctx)
        self.settings = ctx.settings
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # No redirects (a 3xx could point anywhere) and no proxies from the environment (the
        # connection must reach the address the SSRF guard checked). No kept-alive
        # connections either: they are pooled by address, and a TLS connection verified for
        # one host name must not carry a request meant for another name on the same address.
        self._http = httpx.Client(
            timeout=self.settings.webhook_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            headers={"User-Agent": USER_AGENT},
            transport=_transport(),
        )
        self._pool = ThreadPoolExecutor(
            self.settings.webhook_concurrency, thread_name_prefix="rujukan-webhook"
        )
        self._waiter = _Waiter(ctx)

    def close(self) -> None:
        """Write a last audit head; release the HTTP connections and threads."""
        if self.heads is not None:
            self.heads.write()
        self._pool.shutdown(wait=True)
        self._http.close()
        self._waiter.close()

    # ---- the three steps ----------------------------------------------------------------

    def claim(self) -> list[Claim]:
        """Lease due deliveries to this worker and read what sending them needs."""
        now = utcnow()
        with self.ctx.db.reader() as session:
            # Polling must not take the SQLite write lock when there is nothing to do.
            if not repo.any_due(session, now):
                return []
        lease_until = now + dt.timedelta(seconds=self.settings.webhook_lease_seconds)

        def lease(w: Writes) -> list[Claim]:
            session = w.session
            rows = repo.claim_due(
                session, now, self.settings.webhook_batch_size, self.name, lease_until
            )
            subscriptions = repo.subscriptions_by_id(session, [r.subscription_id for r in rows])
            events = repo.events_by_seq(session, [r.event_seq for r in rows])
            claims = []
            for row in rows:
                sub = subscriptions[row.subscription_id]
                item = service.event_read(events[row.event_seq]).model_dump(mode="json")
                claims.append(
                    Claim(
                        delivery_id=row.id,
                        subscription_id=sub.id,
                        url=sub.url,
                        secrets=service.signing_secrets(self.ctx, sub, now),
                        body=payload(item),
                        attempt=row.attempts + 1,
                        failures=row.failures,
                    )
                )
            return claims

        return self.ctx.db.write(lease)

    def send(self, claim: Claim) -> Outcome:
        """One signed HTTP POST to the checked address of the subscription's URL, ended
        after `webhook_timeout_seconds` in all (shorter than the lease, see Settings)."""
        _attempt.deadline = time.monotonic() + self.settings.webhook_timeout_seconds
        try:
            return self._send(claim)
        finally:
            _attempt.deadline = None

    def _send(self, claim: Claim) -> Outcome:
        started = utcnow()
        clock = time.perf_counter()

        def outcome(status_code: int | None, error: str | None) -> Outcome:
            elapsed = int((time.perf_counter() - clock) * 1000)
            return Outcome(started, elapsed, status_code, error)

        try:
            # Checked again now, after resolving: the name may point elsewhere since creation.
            target = service.check_url(self.ctx, claim.url)
        except urlguard.UrlRefused as exc:
            return outcome(None, f"refused: {exc}"[:200])
        msg_id = str(claim.delivery_id)
        timestamp = utcnow()
        signature = " ".join(
            Webhook(secret).sign(msg_id, timestamp, claim.body) for secret in claim.secrets
        )
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature,
        }
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            # Streamed and closed unread: only the status matters, and a receiver must not be
            # able to make the worker download a large answer.
            with self._http.stream(
                "POST",
                target.connect_url,
                content=claim.body.encode("utf-8"),
                headers=headers,
                extensions=extensions,
            ) as response:
                code = response.status_code
        except httpx.TimeoutException:
            return outcome(None, "timeout")
        except httpx.HTTPError as exc:
            return outcome(None, f"connection failed ({type(exc).__name__})")
        return outcome(code, None if 200 <= code < 300 else f"HTTP {code}")

    def record(self, claim: Claim, result: Outcome) -> None:
        """Store the attempt and the delivery's next state (if this worker still holds it)."""
        now = utcnow()
        values: dict[str, object] = {
            "attempts": claim.attempt,
            "last_status_code": result.status_code,
            "last_error": result.error,
            "updated_at": now,
        }
        gone = result.status_code == 410
        if result.delivered:
            values.update(status="delivered", delivered_at=now, failures=0)
        elif gone or claim.failures + 1 >= self.settings.webhook_max_attempts:
            values.update(status="dead", failures=claim.failures + 1)
        else:
            wait = backoff_seconds(
                claim.failures + 1,
                self.settings.webhook_backoff_base_seconds,
                self.settings.webhook_backoff_max_seconds,
            )
            values.update(
                status="pending",
                failures=claim.failures + 1,
                next_attempt_at=now + dt.timedelta(seconds=wait),
            )

        def record(w: Writes) -> None:
            session = w.session
            held = repo.finish_delivery(session, claim.delivery_id, self.name, values)
            if not held and not repo.delivery_exists(session, claim.delivery_id):
                # The subscription was deleted while this attempt was under way.
                return
            # The attempt happened whether or not the lease was lost meanwhile.
            repo.add_attempt(
                session,
                WebhookAttempt(
                    delivery_id=claim.delivery_id,
                    number=claim.attempt,
                    started_at=result.started_at,
                    duration_ms=result.duration_ms,
                    status_code=result.status_code,
                    error=result.error,
                    worker=self.name[:64],
                ),
            )
            if gone and held:
                repo.update_subscription(
                    session,
                    claim.subscription_id,
                    active=False,
                    disabled_reason="the receiver answered 410 Gone",
                    disabled_at=now,
                    updated_at=now,
                )
                # A disabled subscription is never claimed again: left pending, its other
                # deliveries would wait forever without saying why.
                repo.settle_pending(session, claim.subscription_id, now, SUBSCRIPTION_DISABLED)

        self.ctx.db.write(record)
        if not result.delivered:
            log.warning(
                "webhook attempt failed",
                extra={"status": result.status_code, "error_type": result.error},
            )

    # ---- loops --------------------------------------------------------------------------

    def _deliver(self, claim: Claim) -> None:
        self.record(claim, self.send(claim))

    def run_once(self) -> int:
        """Claim, send and record one batch; the number of deliveries handled."""
        claims = self.claim()
        if claims:
            list(self._pool.map(self._deliver, claims))
        return len(claims)

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set, polling while the outbox is empty."""
        while not stop.is_set():
            if self.heads is not None:
                self.heads.tick()
            try:
                handled = self.run_once()
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the loop
                log.error("webhook dispatch failed", extra={"error_type": type(exc).__name__})
                handled = 0
            if not handled:
                self._waiter.wait(self.settings.dispatcher_poll_seconds)


class BackgroundDispatcher:
    """A dispatcher on a daemon thread, for the embedded (`make run`) deployment."""

    def __init__(self, ctx: ServiceContext, *, heads: HeadWriter | None = None) -> None:
        self._ctx = ctx
        self._stop = threading.Event()
        self._dispatcher = Dispatcher(ctx, heads=heads)
        self._thread = threading.Thread(
            target=self._dispatcher.run, args=(self._stop,), name="rujukan-dispatcher", daemon=True
        )

    def start(self) -> BackgroundDispatcher:
        """Start the thread."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the thread to finish its batch and wait for it."""
        self._stop.set()
        wake_all(self._ctx)  # a spare wake costs the other dispatchers one query
        self._thread.join(timeout)
        self._dispatcher.close()
