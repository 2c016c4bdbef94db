"""Test fixtures: every database test runs on SQLite and, where configured, on PostgreSQL.

The schema is built only by `alembic upgrade head`, as in production. Set
RUJUKAN_TEST_POSTGRES_URL (``.ci/run`` does) to add the PostgreSQL run; if it is set and the
server cannot be reached, the run fails instead of skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.app import create_app
from service.config import Settings
from service.context import ServiceContext
from service.db import upgrade_to_head
from tests.support import AGENCIES, ALL_SCOPES, Api, Party, writer_session

POSTGRES_URL = os.environ.get("RUJUKAN_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])

# Rows of these tables are removed between tests; reference data, clients and the
# append-only audit trail stay.
_MUTABLE_TABLES = (
    "webhook_attempt",
    "webhook_delivery",
    "webhook_subscription",
    "event",
    "idempotency_record",
    "referral_group",
    "referral_case_type",
    "referral_service",
    "referral_note",
    "referral_history",
    "referral",
    "agreement",
)


def _create_postgres_database(base_url: str) -> tuple[str, str]:
    """A fresh, empty database on the configured server: (its URL, its name)."""
    url = make_url(base_url)
    name = f"rujukan_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"RUJUKAN_TEST_POSTGRES_URL is set but PostgreSQL is unusable: {exc}")
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def _drop_postgres_database(base_url: str, name: str) -> None:
    admin = create_engine(make_url(base_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def new_database_url(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A factory of fresh, empty databases of a backend (dropped at the end of the run)."""
    created: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("sqlite") / "rujukan.db"
            return f"sqlite:///{path}"
        assert POSTGRES_URL
        url, name = _create_postgres_database(POSTGRES_URL)
        created.append(name)
        return url

    yield make
    for name in created:
        _drop_postgres_database(POSTGRES_URL or "", name)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The database engine under test: 'sqlite' or 'postgresql'."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def database_url(backend: str, new_database_url) -> str:  # type: ignore[no-untyped-def]
    """A migrated database of the current backend, shared by the tests of the session."""
    url = new_database_url(backend)
    upgrade_to_head(url)
    return url  # type: ignore[no-any-return]


def make_settings(url: str, key_dir: Path, **overrides: object) -> Settings:
    """Dev settings with key files in `key_dir`."""
    values: dict[str, object] = {
        "database_url": url,
        "env": "dev",
        "signing_key_file": key_dir / "signing-keys.pem",
        "data_key_file": key_dir / "data-keys.json",
        "token_ttl_seconds": 3600,
        # The suite sends thousands of requests as one client within minutes; the production
        # limits are tested in tests/test_rate_limits.py with their own, small values.
        "rate_limit": "100000/minute",
        "token_failure_limit": "10000/minute",
        "token_address_failure_limit": "10000/minute",
        # Tests start the webhook dispatcher themselves, when and where they need it.
        "embedded_dispatcher": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(database_url, tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def ctx(settings: Settings) -> Iterator[ServiceContext]:
    """The service context (database, keys) of the current backend."""
    context = ServiceContext.build(settings)
    yield context
    context.db.dispose()


@pytest.fixture(scope="session")
def app(ctx: ServiceContext):  # type: ignore[no-untyped-def]
    return create_app(ctx=ctx)


@pytest.fixture(scope="session")
def http(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """An in-process HTTP client (no token)."""
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def parties(ctx: ServiceContext, http: TestClient) -> dict[str, Party]:
    """One client with every scope per agency, with a token."""
    return {code: Party.register(ctx, http, code, ALL_SCOPES) for code in AGENCIES}


@pytest.fixture
def clean(ctx: ServiceContext) -> None:
    """Remove the referrals of earlier tests."""
    with writer_session(ctx.db) as session:
        session.execute(text("UPDATE referral SET parent_id = NULL"))
        for table in _MUTABLE_TABLES:
            session.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - fixed table names
        session.commit()


@pytest.fixture
def lpsk(parties: dict[str, Party], http: TestClient, clean: None) -> Api:
    return Api(http, parties["LPSK"])


@pytest.fixture
def kemensos(parties: dict[str, Party], http: TestClient, clean: None) -> Api:
    return Api(http, parties["KEMENSOS"])


@pytest.fixture
def kemenham(parties: dict[str, Party], http: TestClient, clean: None) -> Api:
    return Api(http, parties["KEMENHAM"])
