"""Fixtures of the event and webhook tests: public names, a receiver, fast dispatchers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from service.context import ServiceContext
from service.events import urlguard
from service.events.dispatcher import Dispatcher
from tests.support.events import FAST, PUBLIC_ADDRESS, variant
from tests.support.receiver import Receiver


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
