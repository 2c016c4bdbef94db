"""The embedded SQLite database: durable, enforcing pragmas, and writers that lock up front."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, select, text

from service.db import Database, fetch_direct, make_engine, upgrade_to_head
from service.db.types import UTCDateTime
from tests.support import writer_session


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'settings.db'}"
    upgrade_to_head(url)
    return url


@pytest.fixture
def db(sqlite_url: str) -> Iterator[Database]:
    database = Database(sqlite_url)
    yield database
    database.dispose()


def _db_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _pragmas(conn) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        name: conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
        for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
    }


def test_engine_connections_have_the_durability_pragmas(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            values = _pragmas(conn)
    finally:
        engine.dispose()
    assert values["journal_mode"] == "wal"
    assert values["synchronous"] == 2  # FULL
    assert values["foreign_keys"] == 1
    assert int(values["busy_timeout"]) >= 5000  # type: ignore[call-overload]


def test_every_pooled_connection_of_reader_and_writer_has_them(db: Database) -> None:
    """Pragmas are per connection: check several connections open at once."""
    with db.reader() as r1, db.reader() as r2, writer_session(db) as w:
        seen = [_pragmas(s.connection()) for s in (r1, r2)]
        seen.append(_pragmas(w.connection()))
        w.rollback()
    for values in seen:
        assert values["journal_mode"] == "wal"
        assert values["synchronous"] == 2
        assert values["foreign_keys"] == 1
        assert int(values["busy_timeout"]) >= 5000  # type: ignore[call-overload]


def test_foreign_keys_are_enforced(db: Database) -> None:
    with writer_session(db) as session:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            session.execute(
                text(
                    "INSERT INTO api_client (id, client_id, name, agency, scopes, secret_hash, "
                    "active, created_at, secret_changed_at) VALUES ('00000000000000000000000000000"
                    "001', 'x', 'x', 'NO_SUCH_AGENCY', '', 'h', 1, '2026-01-01', '2026-01-01')"
                )
            )
        session.rollback()


def _try_write_lock(path: str, timeout: float = 0.2) -> str | None:
    """Try to take the write lock from an unrelated connection: None if it worked."""
    other = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        return None
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        other.close()


def test_writer_holds_the_write_lock_from_its_first_read(db: Database, sqlite_url: str) -> None:
    path = _db_path(sqlite_url)
    with writer_session(db) as session:
        session.execute(text("SELECT count(*) FROM agency")).scalar_one()  # a read only
        dbapi = session.connection().connection.dbapi_connection
        assert dbapi is not None and dbapi.in_transaction
        assert _try_write_lock(path) == "database is locked"
        session.rollback()
    # Released at the end of the transaction.
    assert _try_write_lock(path) is None


def test_reader_does_not_take_the_write_lock(db: Database, sqlite_url: str) -> None:
    """The control: a deferred (reader) transaction after the same read blocks nobody."""
    path = _db_path(sqlite_url)
    with db.reader() as session:
        session.execute(text("SELECT count(*) FROM agency")).scalar_one()
        dbapi = session.connection().connection.dbapi_connection
        assert dbapi is not None and dbapi.in_transaction
        assert _try_write_lock(path) is None
        session.rollback()


def test_second_writer_waits_before_its_first_read(db: Database) -> None:
    """Two writers never interleave: the second cannot begin until the first commits.

    With deferred transactions both would read, then one would fail to upgrade its
    lock (SQLITE_BUSY without waiting for the busy timeout): the classic lost race.
    """
    events: list[str] = []
    first_has_read = threading.Event()

    def second() -> None:
        first_has_read.wait(5)
        with writer_session(db) as session:
            session.execute(text("SELECT count(*) FROM agency")).scalar_one()
            events.append("second read")
            session.rollback()

    thread = threading.Thread(target=second)
    thread.start()
    with writer_session(db) as session:
        session.execute(text("SELECT count(*) FROM agency")).scalar_one()
        events.append("first read")
        first_has_read.set()
        time.sleep(0.5)  # the second writer is now trying to begin
        events.append("first done")
        session.rollback()
    thread.join(10)
    assert events == ["first read", "first done", "second read"]


def test_a_waiting_writer_queues_on_the_gate_not_on_sqlite_busy_polling(db: Database) -> None:
    """A second writer asks SQLite for the lock only after the first has committed: it waits
    on the gate (woken at once) instead of SQLite's busy handler (which sleeps and polls)."""
    events: list[str] = []
    first_holds = threading.Event()

    def first() -> None:
        with writer_session(db) as session:
            session.execute(text("SELECT 1"))
            first_holds.set()
            time.sleep(0.3)
            events.append("first commits")
            session.commit()

    def second() -> None:
        first_holds.wait(5)
        with writer_session(db) as session:
            session.execute(text("SELECT 1"))
            events.append("second began")
            session.rollback()

    @event.listens_for(db.engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.startswith("BEGIN IMMEDIATE"):
            events.append(f"BEGIN IMMEDIATE {threading.current_thread().name}")

    threads = [
        threading.Thread(target=first, name="one"),
        threading.Thread(target=second, name="two"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert events == [
        "BEGIN IMMEDIATE one",
        "first commits",
        "BEGIN IMMEDIATE two",
        "second began",
    ]


def test_a_read_only_session_holds_no_transaction_between_its_reads(
    db: Database, sqlite_url: str
) -> None:
    """A get or a list reads with `Database.autocommit`: each SELECT is its own read
    transaction, so a slow client never pins an old snapshot (which would keep the WAL from
    being checkpointed), and a writer can commit between two of its reads."""
    with db.autocommit() as session:
        counted = text("SELECT count(*) FROM reference_counter WHERE year = 1999")
        assert session.execute(counted).scalar_one() == 0
        assert not session.connection().connection.driver_connection.in_transaction
        with sqlite3.connect(_db_path(sqlite_url)) as other:
            other.execute("INSERT INTO reference_counter (year, last) VALUES (1999, 1)")
        assert session.execute(counted).scalar_one() == 1
    # Its connection goes back to the pool as a writer expects it: the write lock up front.
    with writer_session(db) as session:
        session.execute(text("SELECT count(*) FROM reference_counter")).scalar_one()
        assert _try_write_lock(_db_path(sqlite_url)) == "database is locked"
        session.execute(text("DELETE FROM reference_counter WHERE year = 1999"))
        session.commit()


def test_timestamps_read_back_in_utc_whatever_form_sqlite_holds(db: Database) -> None:
    """Timestamps are stored as UTC text without an offset; text written by other tools (an
    offset, a 'T', no fraction) reads back as the same instant, timezone-aware, in UTC."""
    stamps = Table("stamp_probe", MetaData(), Column("n", Integer), Column("at", UTCDateTime()))
    stamps.create(db.engine)
    held = [
        "2026-01-31 23:52:38.496000",
        "2026-01-31 23:52:38",
        "2026-02-01T06:52:38.496+07:00",
        None,
    ]
    with db.engine.begin() as conn:
        for n, value in enumerate(held):
            conn.exec_driver_sql("INSERT INTO stamp_probe (n, at) VALUES (?, ?)", (n, value))
    at = dt.datetime(2026, 1, 31, 23, 52, 38, 496000, tzinfo=dt.UTC)
    expected = [at, at.replace(microsecond=0), at, None]
    query = select(stamps.c.n, stamps.c.at).order_by(stamps.c.n)
    with db.autocommit() as session:
        through_core = [row.at for row in session.execute(query)]
        direct = [row.at for row in fetch_direct(session, query, {})]
    assert through_core == expected
    assert direct == expected
    assert all(value.tzinfo is dt.UTC for value in direct if value is not None)
