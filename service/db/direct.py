"""Direct statements: SQLAlchemy's SQL and binding, compiled once, run on the driver's cursor."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, Table, exc
from sqlmodel import Session, SQLModel

from service.tables import table_of

# Each model's table and its INSERT, built once: the compiled form is kept per statement object.
_INSERTS: dict[type[SQLModel], tuple[Table, Insert]] = {}
# The row class of each set of selected columns (see `row_class`).
_ROW_CLASSES: dict[tuple[str, ...], type] = {}


def row_class(table: Any, name: str) -> type:
    """A slotted dataclass with a field for each of `table`'s columns, in order: the class
    of the rows `fetch_direct` reads from a SELECT of all of them (made once per table)."""
    fields = []
    for column in table.columns:
        try:
            kind: Any = column.type.python_type
        except NotImplementedError:
            kind = Any
        fields.append((column.key, kind if column.nullable is False else kind | None))
    cls = dataclasses.make_dataclass(name, fields, slots=True)
    _ROW_CLASSES[tuple(column.key for column in table.columns)] = cls
    return cls


def _row_class_of(keys: tuple[str, ...]) -> type:
    """The row class of a SELECT of these columns: a table's, or one made for them."""
    cls = _ROW_CLASSES.get(keys)
    if cls is None:
        cls = _ROW_CLASSES[keys] = dataclasses.make_dataclass("Row", keys, slots=True)
    return cls


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
        self.row_class = _row_class_of(self.keys) if self.keys else None
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
    """The rows of a SELECT of columns, run as `execute_direct` runs a statement, each a
    typed row (`row_class`: a table's, or a dataclass of the columns selected) with the
    values SQLAlchemy would return (each type's result processing: UUIDs, UTC timestamps,
    JSON).

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
    make, processors = entry.row_class, entry.result_processors
    assert make is not None, "fetch_direct reads a SELECT of columns"
    rows = []
    for raw in raw_rows:
        values = list(raw)
        for position, processor in processors:
            values[position] = processor(values[position])
        rows.append(make(*values))
    return rows


def _insert_of(model: type[SQLModel]) -> tuple[Table, Insert]:
    entry = _INSERTS.get(model)
    if entry is None:
        table = table_of(model)
        entry = _INSERTS[model] = (table, table.insert())
    return entry


def insert_values(
    session: Session, model: type[SQLModel], values: Sequence[dict[str, Any]]
) -> None:
    """INSERT rows given as column values into `model`'s table, with one statement (an
    executemany for several; every row names the same columns).

    For rows that are only written, never changed later in the transaction: building ORM
    objects and flushing them through the unit of work (identity map, change tracking,
    flush ordering) costs several times the INSERT itself on the hot paths. Executed at
    once, in call order, through `execute_direct`.
    """
    if not values:
        return
    execute_direct(session, _insert_of(model)[1], values, list(values[0]))


def insert_rows(session: Session, rows: Sequence[SQLModel]) -> None:
    """`insert_values` for model instances; an autoincrement key left None is assigned by
    the database."""
    if not rows:
        return
    table, statement = _insert_of(type(rows[0]))
    values = [
        {
            column.key: value
            for column in table.columns
            if (value := getattr(row, column.key)) is not None or not column.primary_key
        }
        for row in rows
    ]
    execute_direct(session, statement, values, list(values[0]))
