"""The database of a process: its engine and its sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from service.db.engines import WriterGate, is_sqlite, make_engine
from service.db.group import GroupCommit

if TYPE_CHECKING:
    from service.db.writes import Writes

T = TypeVar("T")


class Database:
    """The engine, the sessions that read, and the write path (`write`)."""

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
        # Imported here: the write path knows the tables, whose column types import this
        # package.
        from service.db.writes import writes_for

        self._writes = writes_for(self.sqlite)
        self._group = GroupCommit(self._session, self._writes) if gate is not None else None
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
        """A session whose every statement stands alone (autocommit), for reads that need no
        snapshot shared between them (writes go through `write`). It saves the BEGIN and
        ROLLBACK of a transaction: round trips on PostgreSQL, statements on SQLite."""
        with Session(self._autocommit, expire_on_commit=False, info=self._info) as session:
            yield session

    def _session(self) -> Session:
        """A session whose transaction holds the write lock from its first statement (SQLite)."""
        return self._writer_sessions()

    def write(self, work: Callable[[Writes], T]) -> T:
        """Run `work` in a write transaction and commit it; its result.

        `work` gets the write object of this database (`service.db.writes`): its session
        (`w.session`) for reads and ORM writes, and the writes of the service. It must not
        commit or roll back. On a SQLite file it may share its transaction (and its commit)
        with other threads' writes, each in a savepoint of its own (see `GroupCommit`), and
        run on another thread: it must not depend on what the session holds besides its own
        writes, nor need a transaction of its own.
        """
        if self._group is not None:
            return self._group.run(work)
        with self._session() as session:
            w = self._writes(session)
            result = work(w)
            w.commit()
            return result

    @property
    def listen_url(self) -> str | None:
        """The URL a LISTEN connection opens (libpq's form); None on SQLite, which has no
        server to send notifications."""
        if self.sqlite:
            return None
        url = make_url(self.url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def notify(self, channel: str) -> None:
        """NOTIFY `channel` (PostgreSQL: every process that LISTENs; nothing on SQLite)."""
        if self.sqlite:
            return
        with self.engine.connect() as conn:
            conn.execute(text(f"NOTIFY {channel}"))
            conn.commit()

    def checkpoint_wal(self) -> bool | None:
        """SQLite: copy the write-ahead log into the database file and truncate it, so old
        page images (erased values among them) are gone; False if readers kept it from
        completing. None on PostgreSQL, which has no such log to empty."""
        if not self.sqlite:
            return None
        with self.engine.connect() as conn:
            # The driver connection runs in autocommit mode (see `make_engine`): no
            # transaction is open around the checkpoint.
            raw = conn.connection.driver_connection
            assert raw is not None
            busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return bool(busy == 0)

    def dispose(self) -> None:
        self.engine.dispose()
