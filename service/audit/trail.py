"""Appending to and verifying the audit chain."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, text
from sqlmodel import Session

from service.audit.models import AuditEntry
from service.db import insert_values
from service.dbtypes import utcnow
from service.requestctx import request_id

GENESIS = "0" * 64
# Any fixed 64-bit number: the key of the PostgreSQL advisory lock that serialises appends.
_PG_LOCK_KEY = 0x52554A554B414E


def _canonical(entry: AuditEntry) -> bytes:
    content = {
        "id": entry.id,
        "occurred_at": entry.occurred_at.isoformat(),
        "agency": entry.agency,
        "client_id": entry.client_id,
        "action": entry.action,
        "referral_id": str(entry.referral_id) if entry.referral_id else None,
        "request_id": entry.request_id,
        "detail": entry.detail,
        "detail_sealed": entry.detail_sealed,
        "prev_hash": entry.prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")


def entry_hash(entry: AuditEntry) -> str:
    """The hash an entry must carry."""
    return hashlib.sha256(entry.prev_hash.encode("ascii") + _canonical(entry)).hexdigest()


_LOCK_HELD = "rujukan_audit_lock_held"
_HEAD_READ = "rujukan_audit_head"
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_HEAD = select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)  # type: ignore[union-attr]
_compiled: dict[tuple[Any, tuple[str, ...]], Any] = {}


def _held(session: Session) -> bool:
    transaction = session.get_transaction()
    return transaction is not None and session.info.get(_LOCK_HELD) is transaction


def hold_append_lock(session: Session) -> None:
    """Take, until the transaction ends, the lock that serialises appends (re-entrant)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # On SQLite the writer transaction already holds the database write lock.
    if _held(session):
        return  # Taken earlier in this transaction: it is held until the transaction ends.
    session.execute(_LOCK, {"k": _PG_LOCK_KEY})
    session.info[_LOCK_HELD] = session.get_transaction()


def _for_driver(
    connection: Any, statement: Any, params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """`statement` as psycopg takes it: its SQL (compiled once) and its parameters."""
    key = (statement, tuple(params))
    compiled = _compiled.get(key)
    if compiled is None:
        compiled = _compiled[key] = statement.compile(
            dialect=connection.dialect, column_keys=list(params)
        )
    return compiled.string, compiled.construct_params(params)


def locked_insert(
    session: Session,
    statement: Any,
    params: dict[str, Any],
    *,
    notify: str | None = None,
    reads: Sequence[tuple[Any, dict[str, Any]]] = (),
) -> tuple[Any, list[list[Any]]]:
    """Hold the append lock, then run `statement` (an INSERT ... RETURNING of one row) and
    the `reads` (statement, parameters) under it: the row the insert returns, and the rows
    of each read (as tuples). For writes that must be ordered like the chain (event numbers).
    `notify`: on PostgreSQL, a channel to NOTIFY (the server sends it at commit only, never
    for a rolled-back transaction, and folds the NOTIFYs of one transaction into one).

    On PostgreSQL, when the lock is not held yet, the NOTIFY, the lock, the statement, the
    read of the chain's head and the `reads` go to the server together, in one round trip
    (psycopg's pipeline mode). The server still runs them one after the other, each with a
    snapshot of its own taken when it starts, so the statement and the reads see everything
    committed before the lock was granted. The head is kept for the `append` that follows in
    this transaction: from the lock to the commit is the time every other writer waits, and
    each round trip saved there is saved for all of them. In that case the parameters go to
    psycopg as they are, without SQLAlchemy's bind processing: only values psycopg adapts
    itself (text, numbers, UUIDs, timezone-aware datetimes), no JSON columns.
    """
    session.flush()
    connection = session.connection()
    notify_sql = f"NOTIFY {notify}" if notify and connection.dialect.name == "postgresql" else None
    if connection.dialect.name != "postgresql" or _held(session):
        if notify_sql:
            connection.exec_driver_sql(notify_sql)
        inserted = connection.execute(statement, params).one()
        return inserted, [[tuple(row) for row in connection.execute(*read)] for read in reads]
    driver: Any = connection.connection.driver_connection
    with driver.pipeline():
        if notify_sql:
            driver.execute(notify_sql)
        driver.execute(*_for_driver(connection, _LOCK, {"k": _PG_LOCK_KEY}))
        insert_cursor = driver.execute(*_for_driver(connection, statement, params))
        head_cursor = driver.execute(*_for_driver(connection, _HEAD, {}))
        read_cursors = [driver.execute(*_for_driver(connection, *read)) for read in reads]
    transaction = session.get_transaction()
    session.info[_LOCK_HELD] = transaction
    session.info[_HEAD_READ] = (transaction, head_cursor.fetchone())
    return insert_cursor.fetchone(), [cursor.fetchall() for cursor in read_cursors]


def _head(session: Session) -> Any:
    """The chain's last entry (id, hash), or None, read under the append lock."""
    transaction = session.get_transaction()
    read = session.info.pop(_HEAD_READ, None)
    if read is not None and transaction is not None and read[0] is transaction:
        return read[1]
    hold_append_lock(session)
    return session.connection().execute(_HEAD).first()


def append(
    session: Session,
    *,
    action: str,
    agency: str | None,
    client_id: str | None,
    referral_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    detail_sealed: str | None = None,
) -> SimpleNamespace:
    """Append one entry inside the caller's transaction, serialised with every other append.

    Call it as the last write of a transaction: the audit lock is held until commit, so
    every other lock the transaction needs must already be taken (pending rows are flushed
    here first for that reason). Returns the stored entry's values.
    """
    session.flush()
    last = _head(session)
    values = {
        "id": (last[0] + 1) if last else 1,
        "occurred_at": utcnow(),
        "agency": agency,
        "client_id": client_id,
        "action": action,
        "referral_id": referral_id,
        "request_id": request_id.get(),
        "detail": detail or {},
        "detail_sealed": detail_sealed,
        "prev_hash": last[1] if last else GENESIS,
    }
    # Hashed and inserted as plain values: no ORM instance to build and flush.
    values["hash"] = entry_hash(SimpleNamespace(**values))  # type: ignore[arg-type]
    insert_values(session, AuditEntry, [values])
    return SimpleNamespace(**values)


def iter_entries(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    """Every entry in chain order."""
    last_id = 0
    while True:
        rows = list(
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.id > last_id)
                .order_by(AuditEntry.id)
                .limit(batch)  # type: ignore[arg-type, operator]
            ).scalars()
        )
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id or last_id


def verify_chain(session: Session) -> tuple[int, int | None, str | None]:
    """(entries checked, id of the first bad entry or None, the reason)."""
    prev = GENESIS
    expected_id = 1
    count = 0
    for entry in iter_entries(session):
        if entry.id != expected_id:
            return count, entry.id, f"entry {expected_id} is missing"
        if entry.prev_hash != prev:
            return count, entry.id, "prev_hash does not match the previous entry"
        if entry_hash(entry) != entry.hash:
            return count, entry.id, "content does not match its hash"
        prev = entry.hash
        expected_id += 1
        count += 1
    return count, None, None
