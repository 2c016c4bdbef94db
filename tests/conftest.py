"""Test fixtures: a database test runs on SQLite and, where configured, on PostgreSQL.

The schema is built only by `alembic upgrade head`, as in production. Set
RUJUKAN_TEST_POSTGRES_URL (``.ci/run`` does) to add the PostgreSQL run; if it is set and the
server cannot be reached, the run fails instead of skipping.

Which tests run on both databases: every test that uses a database does, unless its module is
marked `one_database` (``pytestmark = pytest.mark.one_database``); those run on SQLite only. A
module earns the mark when nothing it tests can differ between the dialects: no SQL, query,
ordering, constraint, lock, transaction, migration or stored byte of its own is under test,
only what the service does above the database (validation, tokens and keys, problem
documents, logs, documents served). When in doubt, a module keeps both.

Under pytest-xdist (`make test` runs two workers per core, `--dist loadgroup`) each worker is
a session of its own: its own migrated databases (a SQLite file under its temporary directory,
a PostgreSQL database created from the configured URL; all dropped together at the end). The
tests of `rujukan serve` that measure time or race their own requests are marked
`xdist_group("served")`, to run one after another on one worker.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.app import create_app
from service.config import Settings
from service.context import ServiceContext
from service.db import upgrade_to_head
from tests.support import AGENCIES, ALL_SCOPES, Api, Party, writer_session
from tests.support.databases import (
    BACKENDS,
    MUTABLE_TABLES,
    POSTGRES_URL,
    create_postgres_database,
    drop_postgres_databases,
    make_settings,
)


@pytest.fixture(scope="session")
def new_database_url(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A factory of fresh, empty databases of a backend (dropped at the end of the run)."""
    created: list[str] = []

    def make(backend: str) -> str:
        if backend == "sqlite":
            path = tmp_path_factory.mktemp("sqlite") / "rujukan.db"
            return f"sqlite:///{path}"
        assert POSTGRES_URL
        url, name = create_postgres_database(POSTGRES_URL)
        created.append(name)
        return url

    yield make
    drop_postgres_databases(POSTGRES_URL or "", created)


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
        for table in MUTABLE_TABLES:
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests of `one_database` modules on SQLite only (see the module docstring)."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgresql = callspec is not None and callspec.params.get("backend") == "postgresql"
        if on_postgresql and item.get_closest_marker("one_database"):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
