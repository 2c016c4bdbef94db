"""Liveness and readiness probes (CONTRACT §8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.context import ServiceContext
from tests.support.databases import make_settings

LEAKS = ("Traceback", "sqlalchemy", "psycopg", "sqlite3", "password", "postgres@")


def test_healthz(http: TestClient) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_probes_need_no_token(http: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        assert http.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 200


def test_readyz_when_migrated(http: TestClient) -> None:
    response = http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ready"}


@pytest.fixture
def unmigrated(backend: str, new_database_url, tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    ctx = ServiceContext.build(make_settings(new_database_url(backend), tmp_path / "keys"))
    try:
        with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as client:
            yield client
    finally:
        ctx.db.dispose()


def assert_not_ready(response, reason: str, database: str, migrations: str) -> None:  # type: ignore[no-untyped-def]
    """The 503 is a problem document that still says which readiness check failed."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:rujukan:problem:not-ready"
    assert body["status"] == 503
    assert body["title"] and body["detail"]
    assert (body["reason"], body["database"], body["migrations"]) == (reason, database, migrations)


def test_readyz_is_503_on_an_unmigrated_database(unmigrated: TestClient) -> None:
    response = unmigrated.get("/readyz")
    assert_not_ready(response, "migrations pending", "reachable", "not_at_head")
    for leak in LEAKS:
        assert leak not in response.text
    # The process itself is alive.
    assert unmigrated.get("/healthz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = "postgresql+psycopg://rujukan:hunter2@127.0.0.1:9/nowhere?connect_timeout=2"
    ctx = ServiceContext.build(make_settings(url, tmp_path / "keys"))
    try:
        with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as client:
            response = client.get("/readyz")
            assert_not_ready(response, "database unreachable", "unreachable", "unknown")
            for leak in (*LEAKS, "hunter2", "nowhere"):
                assert leak not in response.text
            assert client.get("/healthz").status_code == 200
    finally:
        ctx.db.dispose()
