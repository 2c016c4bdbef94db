"""Engines: the connection policy of each database, and the gate SQLite writers queue at."""

from __future__ import annotations

import fcntl
import os
import select
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson
from psycopg import pq
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from service.crypto import private_directory, wider_than

SQLITE_BUSY_TIMEOUT_MS = 30_000
# Each SQLite connection holds its own page cache: 40 of them (one per thread of the
# server's pool) took a worker past 200 MiB at 1,000,000 rows. Writers queue on the gate
# below anyway, so 10 kept and 10 more under a burst serve as many requests.
SQLITE_POOL_SIZE = 10
# The keys of the PostgreSQL advisory locks, one per lock. A migration holds its lock for its
# whole run while its ALTER TABLE waits for the writers' row locks, and a writer takes the
# append lock at its commit, holding row locks: under one key each waited for the other, for
# ever. Appends keep the key of earlier releases, so that the processes of an old and a new
# version serialise their appends together during a rolling upgrade.
AUDIT_APPEND_LOCK_KEY = 0x52554A554B414E  # "RUJUKAN"
MIGRATION_LOCK_KEY = 0x524A4B4D494752  # "RJKMIGR"


def is_sqlite(engine_or_url: Engine | str) -> bool:
    """True when the URL or engine talks to SQLite."""
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def prepare_sqlite_file(url: str) -> None:
    """Create the database file, empty, readable by its owner only, in a 0700 directory.

    SQLite creates the -wal and -shm files with the database file's permission bits, so
    creating the file (an empty file is an empty database) before SQLite does keeps all
    three private. A file left readable by others by an earlier version is tightened.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    private_directory(path.parent)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, Path(f"{database}-wal"), Path(f"{database}-shm")):
        with suppress(OSError):
            if wider_than(file, 0o600):
                os.chmod(file, 0o600)


def make_engine(url: str, *, writer_gate: WriterGate | None = None, **kwargs: Any) -> Engine:
    """Create an engine with this service's connection policy for the URL's database.

    On SQLite, `writer_gate` (if given) is taken before each `BEGIN IMMEDIATE`.
    """
    # Statement parameters are people's data: never let them reach an exception text.
    kwargs.setdefault("hide_parameters", True)
    # JSON columns are read on every row of a list page: orjson decodes them several times
    # faster than the standard library (writes keep the standard encoder).
    kwargs.setdefault("json_deserializer", orjson.loads)
    if not is_sqlite(url):
        kwargs.setdefault("pool_size", 10)
        kwargs.setdefault("max_overflow", 10)
        engine = create_engine(url, **kwargs)
        event.listen(engine, "checkout", _discard_if_closed)
        return engine

    prepare_sqlite_file(url)
    connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    if make_url(url).database in (None, "", ":memory:"):
        kwargs.setdefault("poolclass", StaticPool)
    else:
        kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
        kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, connect_args=connect_args, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself, so writers can
        # take the write lock up front instead of failing on a lock upgrade.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted or overwritten content is zeroed in the file, so personal data erased by
        # `rujukan purge` does not linger in free space (UU PDP retention).
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is None:  # `Database.autocommit`: each statement is its own transaction
            return
        if mode == "IMMEDIATE" and writer_gate is not None:
            # In this listener, not one of its own: the gate must be held before BEGIN
            # IMMEDIATE asks SQLite for the lock, or waiters fall back to its busy handler.
            writer_gate.acquire()
            try:
                conn.exec_driver_sql(f"BEGIN {mode}")
            except BaseException:
                writer_gate.release()
                raise
            return
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _discard_if_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """Checkout check of a pooled PostgreSQL connection, without a round trip.

    A connection waiting in the pool has nothing to read: the server sends nothing unasked
    to a session that does not LISTEN. When it closes one (a restart, `pg_terminate_backend`,
    `idle_session_timeout`), its "terminating connection" message and the end of the stream
    arrive on the socket. So a readable socket means a closed session (or, rarely, a setting
    the server reports): the pool drops the connection and hands out a new one, as
    `pool_pre_ping` would, without that ping's round trip on every checkout.
    """
    pgconn = dbapi_conn.pgconn
    if pgconn.status != pq.ConnStatus.OK:
        raise exc.DisconnectionError("the connection is closed")
    poller = select.poll()
    poller.register(pgconn.socket, select.POLLIN)
    if poller.poll(0):
        raise exc.DisconnectionError("the server closed the connection")


class WriterGate:
    """Lets one SQLite writer transaction at a time, across threads and worker processes,
    ask for the database write lock.

    SQLite's own busy handler makes a waiting writer sleep and poll (up to 100 ms a try), so
    the lock often sits free while every waiter sleeps, and writes queue up to time out. Here
    waiters queue on a thread lock and an flock(2) on a file beside the database instead, and
    the kernel wakes the next one the moment the previous transaction ends. Taken just before
    `BEGIN IMMEDIATE`, given back once the transaction has committed or rolled back.
    """

    def __init__(self, database_path: str) -> None:
        self._path = f"{database_path}.writer-lock"
        self._lock = threading.RLock()
        self._held = threading.local()
        self._fd: int | None = None
        self._pid = 0

    def _file(self) -> int:
        # One descriptor per process: a forked child must not share its parent's lock.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self) -> None:
        """Wait for the gate (reentrant within a thread)."""
        self._lock.acquire()
        depth = getattr(self._held, "depth", 0)
        if depth == 0:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        self._held.depth = depth + 1

    def release(self) -> None:
        """Give the gate back, if this thread holds it."""
        depth = getattr(self._held, "depth", 0)
        if depth == 0:
            return
        self._held.depth = depth - 1
        if depth == 1:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        self._lock.release()
