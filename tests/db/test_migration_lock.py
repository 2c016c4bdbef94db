"""`rujukan migrate` while the running version writes (PostgreSQL).

An upgrade migrates the database while the old version still serves. The migration holds its
advisory lock for its whole run and its ALTER TABLE waits for the transactions that hold row
locks; each writer's transaction takes the audit append lock at its commit. Under one lock
key the two waited for each other (the writers stalled for the whole migration, or for ever,
unseen by PostgreSQL's deadlock detector since the migration's lock is held by another
connection of the same process). Here a pending migration that alters `referral` runs while
several clients keep creating referrals: both must finish, without an error.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.context import ServiceContext
from service.db import alembic_config, migrations_dir, upgrade_to_head
from tests.support import ALL_SCOPES, Party, referral_body
from tests.support.databases import POSTGRES_URL, make_settings
from tests.support.live import LiveServer, live_server

# Timed waits for a lock: with the other timed tests on one xdist worker.
pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="advisory locks are PostgreSQL's"),
    pytest.mark.xdist_group("served"),
]

WRITERS = 4
# A migration that waits longer than this for a table lock fails instead of hanging the suite.
LOCK_TIMEOUT = "10s"
# Bound on the whole migration and on each writer's last request.
DEADLINE_SECONDS = 60.0

_PROBE = '''"""a pending migration that alters `referral` while the service writes to it"""

import sqlalchemy as sa
from alembic import op

revision = "lock_probe"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("referral", sa.Column("lock_probe", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("referral", "lock_probe")
'''


def _with_pending_migration(url: str, target: Path) -> Path:
    """The service's migrations plus one more, after today's head, in `target`."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    shutil.copytree(migrations_dir(), target, ignore=shutil.ignore_patterns("__pycache__"))
    (target / "versions" / "9999_lock_probe.py").write_text(_PROBE.format(head=head))
    return target


def _terminate_backends(url: str) -> None:
    """End every session on the test database, so that threads stuck in it return."""
    name = make_url(url).database
    admin = create_engine(make_url(POSTGRES_URL or ""), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
    finally:
        admin.dispose()


@pytest.fixture
def serving(new_database_url, tmp_path: Path) -> Iterator[tuple[str, LiveServer, str]]:  # type: ignore[no-untyped-def]
    """A database at head, served over HTTP: (its URL, the server, an LPSK token)."""
    url = new_database_url("postgresql")
    upgrade_to_head(url)
    ctx = ServiceContext.build(make_settings(url, tmp_path / "keys"))
    try:
        with live_server(ctx) as server, server.client() as http:
            # Party.register takes a TestClient-like `post`; an httpx client has the same one.
            party = Party.register(ctx, http, "LPSK", ALL_SCOPES)  # type: ignore[arg-type]
            yield url, server, party.token
    finally:
        ctx.db.dispose()


def test_a_migration_and_the_writes_of_the_running_version_both_finish(
    serving: tuple[str, LiveServer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, server, token = serving
    monkeypatch.setenv(
        "RUJUKAN_MIGRATIONS_DIR", str(_with_pending_migration(url, tmp_path / "migrations"))
    )
    with server.client() as http:
        ready = http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reason"] == "migrations pending"

    statuses: list[int] = []
    failures: list[BaseException] = []
    migrated = threading.Event()
    lock = threading.Lock()

    def write() -> None:
        try:
            with server.client(token, timeout=DEADLINE_SECONDS) as http:
                # Until the migration is over, then once more: writes before, during, after.
                while True:
                    done = migrated.is_set()
                    status = http.post("/v1/referrals", json=referral_body()).status_code
                    with lock:
                        statuses.append(status)
                    if done:
                        return
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            failures.append(error)

    writers = [threading.Thread(target=write, daemon=True) for _ in range(WRITERS)]
    for writer in writers:
        writer.start()
    deadline = time.monotonic() + DEADLINE_SECONDS
    while len(statuses) < 2 * WRITERS and not failures and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(statuses) >= 2 * WRITERS, (statuses, failures)

    # The test's own bound on the migration's table locks: a lock it cannot get ends it with
    # an error instead of a hang.
    migration_url = (
        make_url(url)
        .update_query_dict({"options": f"-c lock_timeout={LOCK_TIMEOUT}"})
        .render_as_string(hide_password=False)
    )
    migration_errors: list[BaseException] = []

    def migrate() -> None:
        try:
            upgrade_to_head(migration_url)
        except BaseException as error:  # noqa: BLE001 - reported by the test below
            migration_errors.append(error)

    migration = threading.Thread(target=migrate, daemon=True)
    started = time.monotonic()
    migration.start()
    migration.join(DEADLINE_SECONDS)
    took = time.monotonic() - started
    hung = migration.is_alive()
    migrated.set()
    for writer in writers:
        writer.join(DEADLINE_SECONDS)
    stuck = [writer for writer in writers if writer.is_alive()]
    if hung or stuck:
        _terminate_backends(url)

    assert not hung, f"the migration did not finish within {DEADLINE_SECONDS} s"
    assert not migration_errors, f"the migration failed after {took:.1f} s: {migration_errors!r}"
    assert not stuck, f"{len(stuck)} writers did not finish"
    assert not failures, failures
    assert set(statuses) == {201}, statuses
    with server.client() as http:
        assert http.get("/readyz").status_code == 200
