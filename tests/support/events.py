"""Shared by the event and webhook tests: fast dispatcher settings, subscriptions, reading the
feed and walking a referral."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from service.context import ServiceContext
from service.events.dispatcher import Dispatcher
from tests.support import Api, assess_body, ok, service_body


def feed(api: Api, after: str | None = None, limit: int | None = None) -> dict[str, Any]:
    """One page of the caller's event feed."""
    params: dict[str, Any] = {}
    if after is not None:
        params["after"] = after
    if limit is not None:
        params["limit"] = limit
    return ok(api.http.get("/v1/events", params=params, headers=api.headers()))  # type: ignore[no-any-return]


def all_events(api: Api, after: str | None = None) -> list[dict[str, Any]]:
    """Every event of the caller's feed after the cursor, following next_cursor."""
    items: list[dict[str, Any]] = []
    while True:
        page = feed(api, after, limit=50)
        items += page["items"]
        after = page["next_cursor"]
        if not page["has_more"]:
            return items


def walk(lpsk: Api, kemensos: Api, **overrides: Any) -> str:
    """An LPSK -> KEMENSOS referral taken through assess, serve, a further service and a
    note; returns its id."""
    rid = lpsk.create_ok("KEMENSOS", **overrides)["id"]
    ok(kemensos.act(rid, "assess", assess_body()))
    ok(kemensos.act(rid, "serve", service_body()))
    ok(kemensos.act(rid, "services", service_body()))
    ok(
        lpsk.http.post(
            f"/v1/referrals/{rid}/notes", json={"text": "Call first."}, headers=lpsk.headers()
        ),
        201,
    )
    return rid


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
