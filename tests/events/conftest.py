"""Fixtures of the webhook tests: a receiver, fast dispatchers, subscriptions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.context import ServiceContext
from service.events import urlguard
from service.events.dispatcher import Dispatcher
from tests.support.receiver import Receiver
from tests.support import Api, ok

# Backoff in tens of milliseconds, so that retries and dead ends happen within a test.
FAST = {
    "webhook_backoff_base_seconds": 0.05,
    "webhook_backoff_max_seconds": 0.2,
    "webhook_max_attempts": 3,
    "webhook_timeout_seconds": 2.0,
    "webhook_lease_seconds": 5.0,
}


def variant(ctx: ServiceContext, **settings: Any) -> ServiceContext:
    """The same database and keys with other settings."""
    return dataclasses.replace(ctx, settings=ctx.settings.model_copy(update=settings))


PUBLIC_ADDRESS = "93.184.216.34"

# IPv6 addresses that carry a non-public IPv4 address (or are never public), one per form.
EMBEDDED_IPV4_FORMS = [
    pytest.param("64:ff9b::a9fe:a9fe", id="nat64-metadata"),  # 169.254.169.254
    pytest.param("64:ff9b::a00:1", id="nat64-private"),  # 10.0.0.1
    pytest.param("64:ff9b:1::a00:1", id="nat64-local-use"),
    pytest.param("2002:7f00:1::", id="6to4-loopback"),  # 127.0.0.1
    pytest.param("2001:0:a00:1::80ff:fffe", id="teredo"),  # server 10.0.0.1, client 127.0.0.1
    pytest.param("::127.0.0.1", id="ipv4-compatible"),
    pytest.param("::ffff:169.254.169.254", id="ipv4-mapped"),
    pytest.param("::ffff:0:127.0.0.1", id="ipv4-translated"),
]


@pytest.fixture(autouse=True)
def public_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names under example.org resolve to a public address (the test machine has no DNS);
    every other name resolves for real."""
    real = urlguard.resolve

    def resolve(host: str, port: int) -> list[str]:
        if host.endswith(".example.org"):
            return [PUBLIC_ADDRESS]
        return real(host, port)

    monkeypatch.setattr(urlguard, "resolve", resolve)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def dispatchers(ctx: ServiceContext) -> Iterator[Callable[..., Dispatcher]]:
    """Makes dispatchers on the test database (fast backoff unless overridden)."""
    made: list[Dispatcher] = []

    def make(name: str | None = None, **settings: Any) -> Dispatcher:
        dispatcher = Dispatcher(variant(ctx, **{**FAST, **settings}), name=name)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close()


def subscribe(api: Api, url: str, types: list[str] | None = None) -> dict[str, Any]:
    """Create a subscription (every event type unless given)."""
    from service.referrals.workflow import EVENT_TYPES

    body = {"url": url, "event_types": types or list(EVENT_TYPES)}
    return ok(  # type: ignore[no-any-return]
        api.http.post("/v1/webhook-subscriptions", json=body, headers=api.headers()), 201
    )


def drain(dispatcher: Dispatcher, rounds: int = 50) -> int:
    """Run the dispatcher until nothing is due; the number of deliveries handled."""
    total = 0
    for _ in range(rounds):
        handled = dispatcher.run_once()
        if not handled:
            return total
        total += handled
    return total
