"""Fixtures of the authentication tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import service.context
from service.app import create_app
from service.auth import clients
from service.context import ServiceContext
from tests.support import writer_session
from tests.support.databases import make_settings
from tests.support.tokens import Service


@pytest.fixture
def own_keys(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Service]:
    """A service on the session database with a key directory of its own, re-reading its
    key file on every use."""
    monkeypatch.setattr(service.context, "KEY_RELOAD_SECONDS", 0)
    settings = make_settings(database_url, tmp_path / "keys")
    ctx = ServiceContext.build(settings)
    with writer_session(ctx.db) as session:
        client, secret = clients.create_client(
            session,
            agency="LPSK",
            name="rotation test",
            scope="referrals:read",
            keyring=ctx.keyring,
        )
        session.commit()
    with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as http:
        yield Service(ctx, http, settings.signing_key_path, client.client_id, secret)
    ctx.db.dispose()
