"""The database layer: engines, sessions, the write path of each database, direct statements
and migrations; the only package that knows which database it talks to."""

from service.db.direct import (
    execute_direct,
    fetch_direct,
    insert_rows,
)
from service.db.engines import (
    SQLITE_POOL_SIZE,
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
    "SQLITE_POOL_SIZE",
    "Database",
    "alembic_config",
    "execute_direct",
    "fetch_direct",
    "insert_rows",
    "is_sqlite",
    "make_engine",
    "migration_state",
    "migrations_dir",
    "upgrade_to_head",
]
