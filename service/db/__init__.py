"""The database layer: engines, sessions, the write path of each database, direct statements
and migrations; the only package that knows which database it talks to."""

from service.db.direct import (
    compiled_for,
    execute_direct,
    fetch_direct,
    insert_rows,
    insert_values,
)
from service.db.engines import (
    AUDIT_APPEND_LOCK_KEY,
    MIGRATION_LOCK_KEY,
    SQLITE_BUSY_TIMEOUT_MS,
    SQLITE_POOL_SIZE,
    WriterGate,
    is_sqlite,
    make_engine,
)
from service.db.migrations import (
    alembic_config,
    migration_state,
    migrations_dir,
    upgrade_to_head,
)
from service.db.sessions import Database

__all__ = [
    "AUDIT_APPEND_LOCK_KEY",
    "MIGRATION_LOCK_KEY",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_POOL_SIZE",
    "Database",
    "WriterGate",
    "alembic_config",
    "compiled_for",
    "execute_direct",
    "fetch_direct",
    "insert_rows",
    "insert_values",
    "is_sqlite",
    "make_engine",
    "migration_state",
    "migrations_dir",
    "upgrade_to_head",
]
