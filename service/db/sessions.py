"""The database of a process: its engine and its sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from service.db.engines import WriterGate, is_sqlite, make_engine
from service.db.writes import GroupCommit

T = TypeVar("T")


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
