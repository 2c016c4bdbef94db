"""Engines and sessions for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import contextvars
import fcntl
import os
import select
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import orjson
from alembic.config import Config as AlembicConfig
from psycopg import pq
from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool, StaticPool
from sqlmodel import Session, SQLModel

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


def _prepare_sqlite_file(url: str) -> None:
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

    _prepare_sqlite_file(url)
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


_INSERTS: dict[Any, Any] = {}
_COMPILED: dict[tuple[Any, str, tuple[str, ...]], Any] = {}


class _Compiled:
    """A statement compiled once for a dialect, with what binding its parameters needs."""

    def __init__(self, statement: Any, dialect: Any, keys: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        self.compiled = compiled
        self.sql: str = compiled.string
        self.positions: list[str] | None = (
            list(compiled.positiontup) if compiled.positional else None
        )
        # Columns whose default SQLAlchemy computes at execution: not for `driver_params`.
        self.needs_defaults = bool(
            getattr(compiled, "insert_prefetch", None) or getattr(compiled, "update_prefetch", None)
        )
        self.processors = {}
        for bind, name in compiled.bind_names.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
        # A SELECT's columns: their keys, and each one's result processing by position.
        columns = getattr(statement, "selected_columns", ())
        self.keys: tuple[str, ...] = tuple(column.key for column in columns)
        self.result_processors: list[tuple[int, Any]] = []
        for position, column in enumerate(columns):
            processor = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                self.result_processors.append((position, processor))

    def driver_params(self, params: dict[str, Any]) -> Any:
        """`params` bound as SQLAlchemy binds them (each type's bind processing: JSON, UTC
        timestamps, UUIDs), in the driver's parameter style."""
        values = self.compiled.construct_params(params)
        for name, processor in self.processors.items():
            if name in values:
                values[name] = processor(values[name])
        if self.positions is None:
            return values
        return [values[name] for name in self.positions]


def compiled_for(dialect: Any, statement: Any, keys: Sequence[str] = ()) -> _Compiled:
    """`statement` compiled for `dialect` (once per statement, dialect and parameter names)."""
    key = (statement, dialect.name, tuple(keys))
    entry = _COMPILED.get(key)
    if entry is None:
        entry = _COMPILED[key] = _Compiled(statement, dialect, tuple(keys))
    return entry


def execute_direct(
    session: Session,
    statement: Any,
    rows: Sequence[dict[str, Any]],
    column_keys: Sequence[str] = (),
) -> Any:
    """Execute `statement` for `rows` (of parameters; `column_keys`: the columns they give,
    for an INSERT without values of its own) through the driver's cursor, past SQLAlchemy's
    per-statement machinery (execution context, result set-up, events); the cursor.

    For the few statements of the write path (on SQLite, run while the database's write
    lock is held, which every other writer waits for): SQLAlchemy's work around a small
    INSERT costs more than SQLite's. The SQL and the parameter binding are SQLAlchemy's,
    compiled once; a driver error is raised as SQLAlchemy raises it (`IntegrityError` and
    the rest), without the parameters. A statement with defaults SQLAlchemy computes at
    execution goes through SQLAlchemy.
    """
    connection = session.connection()
    entry = compiled_for(connection.dialect, statement, column_keys)
    if entry.needs_defaults:
        return connection.execute(statement, list(rows) if len(rows) > 1 else rows[0])
    return _run(connection, entry, rows)


def _run(connection: Any, entry: _Compiled, rows: Sequence[dict[str, Any]]) -> Any:
    dialect = connection.dialect
    cursor = connection.connection.driver_connection.cursor()
    try:
        if len(rows) == 1:
            cursor.execute(entry.sql, entry.driver_params(rows[0]))
        else:
            cursor.executemany(entry.sql, [entry.driver_params(row) for row in rows])
    except dialect.loaded_dbapi.Error as error:
        raise _as_sqlalchemy_error(entry, dialect, error) from error
    return cursor


def _as_sqlalchemy_error(entry: _Compiled, dialect: Any, error: Exception) -> Exception:
    """A driver error as SQLAlchemy raises it (`IntegrityError` and the rest), without the
    parameters."""
    return exc.DBAPIError.instance(
        entry.sql, None, error, dialect.loaded_dbapi.Error, hide_parameters=True,
        dialect=dialect,
    )  # fmt: skip


def fetch_direct(session: Session, statement: Any, params: dict[str, Any]) -> list[Any]:
    """The rows of a SELECT of columns, run as `execute_direct` runs a statement, each as a
    plain object with the columns as attributes and the values SQLAlchemy would return
    (each type's result processing: UUIDs, UTC timestamps, JSON).

    For the reads every request makes (a referral, a page of them): SQLAlchemy's result
    machinery (result metadata, Row objects, then a copy into a plain object) cost more than
    the processing of the values themselves. `statement` must be built once and reused, with
    its values as bound parameters: it is compiled once per statement object.
    """
    connection = session.connection()
    entry = compiled_for(connection.dialect, statement)
    cursor = _run(connection, entry, [params])
    try:
        raw_rows = cursor.fetchall()
    except connection.dialect.loaded_dbapi.Error as error:
        raise _as_sqlalchemy_error(entry, connection.dialect, error) from error
    finally:
        cursor.close()
    keys, processors = entry.keys, entry.result_processors
    rows = []
    for raw in raw_rows:
        values = list(raw)
        for position, processor in processors:
            values[position] = processor(values[position])
        row = SimpleNamespace()
        row.__dict__.update(zip(keys, values, strict=True))
        rows.append(row)
    return rows


def insert_values(session: Session, model: Any, values: Sequence[dict[str, Any]]) -> None:
    """INSERT rows given as column values into `model`'s table, with one statement (an
    executemany for several; every row names the same columns).

    For rows that are only written, never changed later in the transaction: building ORM
    objects and flushing them through the unit of work (identity map, change tracking,
    flush ordering) costs several times the INSERT itself on the hot paths. Executed at
    once, in call order, through `execute_direct`.
    """
    if not values:
        return
    table = model.__table__
    statement = _INSERTS.get(table)
    if statement is None:
        # Built once per table and reused: the compiled form is kept per statement object.
        statement = _INSERTS[table] = table.insert()
    execute_direct(session, statement, values, list(values[0]))


def insert_rows(session: Session, rows: Sequence[SQLModel]) -> None:
    """`insert_values` for model instances; an autoincrement key left None is assigned by
    the database."""
    if not rows:
        return
    model = type(rows[0])
    columns = model.__table__.columns  # type: ignore[attr-defined]
    insert_values(
        session,
        model,
        [
            {
                column.key: value
                for column in columns
                if (value := getattr(row, column.key)) is not None or not column.primary_key
            }
            for row in rows
        ],
    )


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


T = TypeVar("T")


class _Write:
    """One caller's part of a group commit: its work, its context, and how it ended."""

    __slots__ = ("work", "context", "woken", "done", "result", "error")

    def __init__(self, work: Callable[[Session], Any]) -> None:
        self.work = work
        # The caller's context variables (its request id, read by the audit trail), so the
        # work runs as the caller's even when another thread commits it.
        self.context = contextvars.copy_context()
        self.woken = threading.Event()
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class GroupCommit:
    """Commits the writes of a worker's concurrent requests together, on SQLite.

    On SQLite every commit waits for the disk (synchronous=FULL: the WAL is synced before
    COMMIT returns), and that wait happens under the database's one write lock, which every
    writer of every worker process queues for. So when several of a process's threads wait
    to write, the first to get the lock (the leader) runs the waiting writes in one
    transaction, each in a savepoint of its own, and commits them with one sync. A write
    that fails is rolled back to its savepoint and its error goes to its own caller, the
    others commit; if the commit fails, every caller of the group gets that error. Nothing
    is answered before its commit: a caller returns once the transaction holding its write
    has committed.

    Leadership passes on: a leader commits one group and then wakes the oldest waiting
    caller to lead the next, so no request waits behind more than the group before its own.
    """

    def __init__(self, sessions: Callable[[], Any]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._waiting: list[_Write] = []
        self._leading = False
        self._leader: int | None = None  # the thread running a group's writes

    def run(self, work: Callable[[Session], T]) -> T:
        if self._leader == threading.get_ident():
            # Its own group could not commit before this returned: it would wait forever.
            raise RuntimeError("Database.write called inside a write")
        write = _Write(work)
        with self._lock:
            self._waiting.append(write)
            lead = not self._leading
            self._leading = True
        if not lead:
            write.woken.wait()
        if not write.done:  # woken to lead, or leading from the start
            self._lead(write)
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[no-any-return]

    def _lead(self, own: _Write) -> None:
        try:
            with self._sessions() as session:
                try:
                    # The write lock first (BEGIN IMMEDIATE, after the gate): every write
                    # that arrives while this waits for it joins the group.
                    session.connection()
                except BaseException as error:
                    # No lock, no group: this caller gets the error, the next one leads.
                    with self._lock:
                        self._waiting.remove(own)
                    own.error, own.done = error, True
                    return
                with self._lock:
                    group, self._waiting = self._waiting, []
                self._leader = threading.get_ident()
                try:
                    self._commit_group(session, group)
                finally:
                    self._leader = None
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].woken.set()
                else:
                    self._leading = False

    @staticmethod
    def _commit_group(session: Session, group: list[_Write]) -> None:
        try:
            transaction = session.get_transaction()
            ran: list[_Write] = []  # the writes of the transaction open now
            for write in group:
                try:
                    # A write alone needs no savepoint: if it fails, the transaction is its own.
                    with session.begin_nested() if len(group) > 1 else nullcontext():
                        write.result = write.context.run(write.work, session)
                except BaseException as error:  # noqa: BLE001 - handed to its own caller
                    write.error = error
                if session.get_transaction() is not transaction:
                    # The work ended the group's transaction itself (a rollback or commit,
                    # which a work must not do): what ran in it is in doubt, so each of its
                    # writes fails, and the rest run in a transaction of their own.
                    for earlier in (*ran, write):
                        if earlier.error is None:
                            earlier.error = RuntimeError("a write ended its group's transaction")
                    with suppress(Exception):
                        session.rollback()
                    session.connection()
                    transaction, ran = session.get_transaction(), []
                    continue
                ran.append(write)
            if any(write.error is None for write in ran):
                session.commit()
            else:
                session.rollback()
        except BaseException as error:  # noqa: BLE001 - the commit failed: every caller of
            # the group gets its error, even one whose own write failed first (that failure
            # may have been decided by what another write of the group did, never committed).
            for write in group:
                write.error = error
            with suppress(Exception):
                session.rollback()
        finally:
            for write in group:
                write.done = True
                write.woken.set()


class Database:
    """The engine plus the two kinds of session the service uses."""

    def __init__(
        self, url: str, *, session_info: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.url = url
        # Given to every session (`Session.info`): what the writes need besides the database,
        # such as the audit trail's keys.
        self._info = dict(session_info or {})
        self.sqlite = is_sqlite(url)
        database = make_url(url).database if self.sqlite else None
        gate = WriterGate(database) if database and database != ":memory:" else None
        self.engine = make_engine(url, writer_gate=gate, **kwargs)
        self._writer = (
            self.engine.execution_options(sqlite_begin="IMMEDIATE") if self.sqlite else self.engine
        )
        self._writer_sessions = sessionmaker(
            self._writer, class_=Session, expire_on_commit=False, info=self._info
        )
        # On SQLite, by not issuing BEGIN (the driver's own transaction handling is off): the
        # driver-level AUTOCOMMIT setting would also cost a PRAGMA on every return to the pool.
        self._autocommit = (
            self.engine.execution_options(sqlite_begin=None)
            if self.sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._group = GroupCommit(self.writer) if gate is not None else None
        if gate is not None:

            @event.listens_for(self._writer_sessions, "after_transaction_end")
            def _open_gate(_: Session, transaction: Any) -> None:
                if transaction.parent is None:
                    gate.release()

    @contextmanager
    def reader(self) -> Iterator[Session]:
        """A session for queries only."""
        with Session(self.engine, expire_on_commit=False, info=self._info) as session:
            yield session

    @contextmanager
    def autocommit(self) -> Iterator[Session]:
        """A session whose every statement stands alone (autocommit): for reads that need no
        snapshot shared between them, and single-statement writes (PostgreSQL; on SQLite a
        write belongs in `writer`, which takes the write lock in turn). It saves the BEGIN
        and ROLLBACK or COMMIT of a transaction: round trips on PostgreSQL, statements on
        SQLite."""
        with Session(self._autocommit, expire_on_commit=False, info=self._info) as session:
            yield session

    @contextmanager
    def writer(self) -> Iterator[Session]:
        """A session whose transaction holds the write lock from its first statement (SQLite)."""
        with self._writer_sessions() as session:
            yield session

    def write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a writer transaction and commit it; its result.

        `work` writes through the session it is given and must not commit or roll back. On
        a SQLite file it may share its transaction (and its commit) with other threads'
        writes, each in a savepoint of its own (see `GroupCommit`): it must not depend on
        what the session holds besides its own writes.
        """
        if self._group is not None:
            return self._group.run(work)
        with self.writer() as session:
            result = work(session)
            session.commit()
            return result

    def dispose(self) -> None:
        self.engine.dispose()


def migrations_dir() -> Path:
    """Where the Alembic scripts live: env override, the source tree, or the working dir."""
    override = os.environ.get("RUJUKAN_MIGRATIONS_DIR")
    if override:
        return Path(override)
    beside_package = Path(__file__).resolve().parent.parent / "migrations"
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


def upgrade_to_head(url: str, *, then: Callable[[], None] | None = None) -> None:
    """Apply every migration, then run `then` (the grants) under the same lock."""
    from alembic import command

    def upgrade() -> None:
        command.upgrade(alembic_config(url), "head")
        if then is not None:
            then()

    if is_sqlite(url):
        _prepare_sqlite_file(url)
        database = make_url(url).database
        if not database or database == ":memory:":
            upgrade()
            return
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
        return
    # Several containers may start at once, each running `rujukan migrate`: the first takes
    # the lock and migrates, the others wait for it and then find nothing left to do. Their
    # grants too wait: PostgreSQL fails a GRANT that races another on the same table.
    engine = create_engine(
        url, poolclass=NullPool, hide_parameters=True, isolation_level="AUTOCOMMIT"
    )
    try:
        with engine.connect() as lock:
            lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                upgrade()
            finally:
                lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
    finally:
        engine.dispose()


def migration_state(engine: Engine) -> tuple[str | None, str | None]:
    """(current revision in the database, head revision of the scripts)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head
