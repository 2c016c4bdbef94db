"""The schema's migrations (Alembic), run under a lock so that one process migrates."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from service.db.engines import MIGRATION_LOCK_KEY, is_sqlite, prepare_sqlite_file


def migrations_dir() -> Path:
    """Where the Alembic scripts live: env override, the source tree, or the working dir."""
    override = os.environ.get("RUJUKAN_MIGRATIONS_DIR")
    if override:
        return Path(override)
    beside_package = Path(__file__).resolve().parents[2] / "migrations"
    if beside_package.is_dir():
        return beside_package
    return Path.cwd() / "migrations"


def alembic_config(url: str) -> AlembicConfig:
    """An Alembic configuration for this URL, independent of the working directory."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["rujukan_url"] = url
    return cfg


# The revisions of a database before and after `upgrade_to_head` (None: no schema yet).
Revisions = tuple[str | None, str | None]


def _revision(url: str) -> str | None:
    """The migration a database is at, read now; None before the first."""
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url, poolclass=NullPool, hide_parameters=True)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade_to_head(url: str, *, then: Callable[[], None] | None = None) -> Revisions:
    """Apply every migration, then run `then` (the grants) under the same lock; the revision
    before and after."""
    from alembic import command

    revisions: list[str | None] = []

    def upgrade() -> None:
        revisions.append(_revision(url))
        command.upgrade(alembic_config(url), "head")
        revisions.append(_revision(url))
        if then is not None:
            then()

    def result() -> Revisions:
        return revisions[0], revisions[1]

    if is_sqlite(url):
        prepare_sqlite_file(url)
        database = make_url(url).database
        if not database or database == ":memory:":
            upgrade()
            return result()
        # Two processes migrating one file would both find the schema missing: a lock file
        # beside the database lets one migrate while the other waits.
        # Private like the database beside it, as the writer's lock file is.
        descriptor = os.open(f"{database}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "r+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                upgrade()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return result()
    # Several containers may start at once, each running `rujukan migrate`: the first takes
    # the lock and migrates, the others wait for it and then find nothing left to do. Their
    # grants too wait: PostgreSQL fails a GRANT that races another on the same table.
    engine = create_engine(
        url, poolclass=NullPool, hide_parameters=True, isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                upgrade()
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
    finally:
        engine.dispose()
    return result()


def migration_state(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision in the database, head revision of the scripts)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head
