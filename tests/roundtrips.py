"""Counting the database round trips of a piece of work, at the driver.

The hot statements of the service run on the driver's cursor, past SQLAlchemy's events
(`service.db.execute_direct`), and the PostgreSQL commit goes through psycopg's pipeline
mode, several statements to one round trip: so the counting is done below SQLAlchemy.

PostgreSQL: a round trip is a wait for the server. Each connection is traced by libpq
(`PGconn.trace`, one line per protocol message, F for the frontend, B for the backend, in
the order the client builds and reads them), and a round trip is counted at each switch from
F to B: a batch of messages sent, then the answer read. A pipeline's queued statements and
its Sync are one batch; the Parse and Sync with which psycopg prepares a statement at its
sixth execution on a connection are a round trip of their own (a one-off per connection and
statement: measure warmed-up work). The statements listed are those bound (extended
protocol, named prepared statements resolved to their SQL) or sent as a simple query.

SQLite: there is no network; what is counted is the statements SQLite runs
(`sqlite3.Connection.set_trace_callback`), BEGIN and COMMIT included: the work done while a
writer holds the database's write lock.

Statements are reported by their first words only (the verb and its table), never with
their parameters.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from psycopg import pq
from sqlalchemy import Engine, event
from sqlalchemy.pool import QueuePool

# A message in libpq's trace (regress mode, no timestamps): direction, length, type,
# contents; the contents go on over several lines when they hold newlines (SQL).
_TRACE_MESSAGE = re.compile(r"^([FB])\t\d+\t(\w+)\t?(.*?)(?=^[FB]\t\d+\t|\Z)", re.M | re.S)
# Parse: ` "name" "sql" nparams [oids]`; Bind: ` "portal" "name" ...`; Query: ` "sql"`.
_PARSE = re.compile(r'^ "([^"]*)" "(.*)" \d+( \w+)*$', re.DOTALL)
_BIND = re.compile(r'^ "[^"]*" "([^"]*)"')
_QUERY = re.compile(r'^ "(.*)"$', re.DOTALL)
_TARGET = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?(\w+)', re.IGNORECASE)
_CALLED = re.compile(r"^SELECT\s+(\w+)\s*\(", re.IGNORECASE)
# Statements whose second word is a name (a savepoint's, a channel's, a mode), never a value.
_NAMED = {"BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "NOTIFY", "LISTEN"}


def first_words(sql: str) -> str:
    """A statement's verb and the table it works on (or the function it calls): never a
    parameter, even of SQL with its values written in (SQLite's traced statements)."""
    words = sql.split()
    if not words:
        return ""
    verb = words[0].upper()
    if verb in _NAMED:
        return " ".join(words[:2]) if len(words) > 1 and words[1].isidentifier() else verb
    if verb == "PRAGMA":
        return " ".join(["PRAGMA", *re.findall(r"^\w+", words[1] if len(words) > 1 else "")])
    target = _TARGET.search(sql) or _CALLED.search(sql)
    return f"{verb} {target.group(1)}" if target else verb


def _messages(trace: str) -> Iterator[tuple[str, str, str]]:
    """The messages of a libpq trace: (F or B, the message's type, its contents)."""
    for match in _TRACE_MESSAGE.finditer(trace):
        yield match.group(1), match.group(2), match.group(3).rstrip("\n")


@dataclass
class Trips:
    """What one counted piece of work cost: its round trips, and what each one sent (on
    PostgreSQL the statements of a batch joined by "+"; on SQLite one statement each)."""

    count: int = 0
    statements: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(f"{n}. {sent}" for n, sent in enumerate(self.statements, start=1))


class _TracedConnection:
    """One PostgreSQL connection traced by libpq into a file of its own, until it closes.

    Traced from its first message, so that the SQL of a statement psycopg prepares (parsed
    once, bound by name afterwards) is known when it is bound. libpq writes its trace through
    a buffered stream that only untracing flushes: each read untraces and traces again, and a
    connection is untraced before it closes (the stream would otherwise be flushed at exit,
    into whatever file then has its descriptor).
    """

    def __init__(self, dbapi_conn: Any) -> None:
        self.dbapi_conn = dbapi_conn
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by `stop`
        self.read_to = 0
        self.prepared: dict[str, str] = {}
        self.unnamed = ""
        self.tracing = False
        self._trace()

    def _trace(self) -> None:
        pgconn = self.dbapi_conn.pgconn
        pgconn.trace(self.file.fileno())
        # After `trace`, which resets them.
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        self.tracing = True

    def _untrace(self) -> None:
        if self.tracing:
            self.dbapi_conn.pgconn.untrace()  # flushes the stream
            self.tracing = False

    def read(self, trips: Trips | None) -> None:
        """Take the messages traced since the last read; count them into `trips` if given."""
        if self.tracing:
            self._untrace()
            self._trace()
        self.file.seek(self.read_to)
        raw = self.file.read()
        self.read_to += len(raw)
        batch: list[str] = []  # what was sent since the last answer
        sent = False
        for direction, message, contents in _messages(raw.decode("utf-8", "replace")):
            if direction == "F":
                sent = True
                if (sql := self._statement(message, contents)) is not None:
                    batch.append(sql)
                elif message in ("Sync", "Flush") and not batch:
                    batch.append(f"({message})")
            elif sent:
                if trips is not None:
                    trips.count += 1
                    trips.statements.append(" + ".join(batch))
                batch, sent = [], False

    def stop(self) -> None:
        """Untrace the connection, which is about to close."""
        self._untrace()

    def _statement(self, message: str, contents: str) -> str | None:
        """The first words of what a message runs or prepares, or None."""
        if message == "Parse" and (parse := _PARSE.match(contents)):
            name, sql = parse.group(1), parse.group(2)
            if not name:
                self.unnamed = sql
                return None
            self.prepared[name] = sql
            return f"prepare {first_words(sql)}"
        if message == "Bind" and (bind := _BIND.match(contents)):
            name = bind.group(1)
            return first_words(self.prepared.get(name, "") if name else self.unnamed)
        if message == "Query" and (query := _QUERY.match(contents)):
            return first_words(query.group(1))
        return None


class RoundTrips:
    """Counts the round trips (PostgreSQL) or statements (SQLite) of every connection of an
    engine, from its first connection on.

    Made before the engine connects (a fresh `ServiceContext`, say), so that no connection
    escapes; `counting()` measures the work done inside it, on any thread.
    """

    def __init__(self, engine: Engine) -> None:
        pool = engine.pool
        if isinstance(pool, QueuePool) and (pool.checkedin() or pool.checkedout()):
            raise RuntimeError("count round trips on an engine that has not connected yet")
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._traced: list[_TracedConnection] = []
        self._lock = threading.Lock()
        self._current: Trips | None = None
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "close", self._on_close)
        event.listen(engine, "close_detached", self._on_close)

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        if self.sqlite:
            dbapi_conn.set_trace_callback(self._on_sqlite_statement)
            return
        with self._lock:
            self._traced.append(_TracedConnection(dbapi_conn))

    def _on_close(self, dbapi_conn: Any, _record: Any = None) -> None:
        with self._lock:
            for traced in self._traced:
                if traced.dbapi_conn is dbapi_conn:
                    traced.stop()

    def _on_sqlite_statement(self, sql: str) -> None:
        trips = self._current
        if trips is not None:
            with self._lock:
                trips.count += 1
                trips.statements.append(first_words(sql))

    @contextmanager
    def counting(self) -> Iterator[Trips]:
        """The round trips of the work done in the block (filled in when it ends)."""
        trips = Trips()
        with self._lock:
            for traced in self._traced:
                traced.read(None)  # what came before is not counted
            self._current = trips
        try:
            yield trips
        finally:
            with self._lock:
                self._current = None
                for traced in self._traced:
                    traced.read(trips)

    def close(self) -> None:
        """Stop counting: every connection untraced, the trace files removed."""
        for name, listener in (
            ("connect", self._on_connect),
            ("close", self._on_close),
            ("close_detached", self._on_close),
        ):
            event.remove(self.engine, name, listener)
        with self._lock:
            for traced in self._traced:
                traced.stop()
                traced.file.close()
            self._traced.clear()
