"""Appending to and verifying the audit chain."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from service.audit.models import AuditEntry
from service.db import AUDIT_APPEND_LOCK_KEY, compiled_for, execute_direct, insert_values
from service.dbtypes import utcnow
from service.requestctx import request_id

GENESIS = "0" * 64
# The key of the PostgreSQL advisory lock that serialises appends.
_PG_LOCK_KEY = AUDIT_APPEND_LOCK_KEY


def _content(entry: AuditEntry) -> dict[str, Any]:
    return {
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


def _json(content: dict[str, Any]) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"))


def _canonical(entry: AuditEntry) -> bytes:
    return _json(_content(entry)).encode("utf-8")


def entry_hash(entry: AuditEntry) -> str:
    """The hash an entry must carry."""
    return hashlib.sha256(entry.prev_hash.encode("ascii") + _canonical(entry)).hexdigest()


_LOCK_HELD = "rujukan_audit_lock_held"
_TAIL = "rujukan_audit_tail"
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_HEAD = select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)  # type: ignore[union-attr]

# PostgreSQL: the entry numbered and hashed by the server, from the chain's head as the
# insert finds it. The canonical content (see `_canonical`) is sent in three pieces: what
# comes before the id, between the id and prev_hash, and after prev_hash (sorted keys), so
# that the server only splices in the head's id + 1 and hash. The head is read in the
# statement: at the end of the transaction, under the append lock, it is the chain's last
# committed entry, or this transaction's own previous one.
_INSERT_HASHED = text(
    "INSERT INTO audit_entry (id, occurred_at, agency, client_id, action, referral_id,"
    " request_id, detail, detail_sealed, prev_hash, hash)"
    " SELECT head.id + 1, :occurred_at, :agency, :client_id, :action, :referral_id,"
    " :request_id, :detail, :detail_sealed, head.hash, encode(sha256(convert_to("
    "head.hash || :before_id || CAST(head.id + 1 AS TEXT) || :before_prev_hash"
    " || '\"' || head.hash || '\"' || :after_prev_hash, 'UTF8')), 'hex')"
    " FROM (SELECT id, hash FROM audit_entry UNION ALL SELECT 0, :genesis"
    " ORDER BY id DESC LIMIT 1) AS head"
).bindparams(
    bindparam("occurred_at", type_=AuditEntry.__table__.c.occurred_at.type),  # type: ignore[attr-defined]
    bindparam("referral_id", type_=AuditEntry.__table__.c.referral_id.type),  # type: ignore[attr-defined]
    bindparam("detail", type_=AuditEntry.__table__.c.detail.type),  # type: ignore[attr-defined]
)


def _held(session: Session) -> bool:
    transaction = session.get_transaction()
    return transaction is not None and session.info.get(_LOCK_HELD) is transaction


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def hold_append_lock(session: Session) -> None:
    """Take, until the transaction ends, the lock that serialises appends (re-entrant)."""
    if not _postgresql(session):
        return  # On SQLite the writer transaction already holds the database write lock.
    if _held(session):
        return  # Taken earlier in this transaction: it is held until the transaction ends.
    session.execute(_LOCK, {"k": _PG_LOCK_KEY})
    session.info[_LOCK_HELD] = session.get_transaction()


def _for_driver(
    connection: Any, statement: Any, params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """`statement` (its parameters all named in it) as psycopg takes it: its SQL and its
    parameters, bound as SQLAlchemy binds them."""
    compiled = compiled_for(connection.dialect, statement)
    return compiled.sql, compiled.driver_params(params)


def defer(
    session: Session, statement: Any, params: dict[str, Any], *, notify: str | None = None
) -> None:
    """PostgreSQL: run `statement` at commit, under the append lock, in the order the
    transaction deferred its statements (`append` defers its entries the same way);
    `notify`: a channel to NOTIFY at that commit.

    For writes that must be ordered like the chain (event numbers, taken as max + 1).
    """
    # What the transaction sends at its commit (dropped when it ends, see `_drop_tail`).
    statements, channels = session.info.setdefault(_TAIL, ([], set()))
    statements.append(_for_driver(session.connection(), statement, params))
    if notify:
        channels.add(notify)


@sa_event.listens_for(OrmSession, "before_commit")
def _commit_tail(session: Any) -> None:
    """PostgreSQL: send what the transaction deferred, and its COMMIT, in one round trip.

    The NOTIFYs, the append lock, the deferred statements and the audit entries go to the
    server together (psycopg's pipeline mode) and it runs them one after the other; the
    lock is then held only while the server runs them and commits, never while this
    process waits for the network or its turn at the interpreter lock, and every other
    writer of the service waits only that long. The transaction is committed here: the
    COMMIT that SQLAlchemy then sends finds it ended and does nothing. A failure of any of
    them fails the commit, and the transaction is rolled back, nothing of it stored.
    """
    tail = session.info.get(_TAIL)
    if tail is None or session.in_nested_transaction():
        return
    del session.info[_TAIL]
    statements, channels = tail
    session.flush()
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    with driver.pipeline():
        for channel in sorted(channels):
            driver.execute(f"NOTIFY {channel}")
        if not _held(session):
            driver.execute(*_for_driver(connection, _LOCK, {"k": _PG_LOCK_KEY}))
        for sql, params in statements:
            driver.execute(sql, params)
        driver.commit()


@sa_event.listens_for(OrmSession, "after_transaction_end")
def _drop_tail(session: Any, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_TAIL, None)


def _canonical_pieces(values: dict[str, Any]) -> dict[str, str]:
    """The canonical content of an entry without its id and prev_hash, in the three pieces
    `_INSERT_HASHED` joins around them (the keys are sorted: those before "id", those
    between "id" and "prev_hash", those after)."""
    content = _content(SimpleNamespace(**values, id=None, prev_hash=None))  # type: ignore[arg-type]
    keys = sorted(content)
    before = _json({k: content[k] for k in keys if k < "id"})
    between = _json({k: content[k] for k in keys if "id" < k < "prev_hash"})
    after = _json({k: content[k] for k in keys if k > "prev_hash"})
    return {
        "before_id": before[:-1] + ',"id":',
        "before_prev_hash": "," + between[1:-1] + ',"prev_hash":',
        "after_prev_hash": "," + after[1:],
    }


def append(
    session: Session,
    *,
    action: str,
    agency: str | None,
    client_id: str | None,
    referral_id: uuid.UUID | None = None,
    detail: dict[str, Any] | None = None,
    detail_sealed: str | None = None,
) -> None:
    """Append one entry inside the caller's transaction, serialised with every other append.

    Call it as the last write of a transaction. On SQLite the entry is inserted at once
    (the writer transaction holds the database's write lock from its start). On
    PostgreSQL it is inserted at commit, after everything else, under the append lock
    (see `_commit_tail`), numbered and hashed by the server from the head it finds then.
    """
    values = {
        "occurred_at": utcnow(),
        "agency": agency,
        "client_id": client_id,
        "action": action,
        "referral_id": referral_id,
        "request_id": request_id.get(),
        "detail": detail or {},
        "detail_sealed": detail_sealed,
    }
    if _postgresql(session):
        defer(session, _INSERT_HASHED, {**values, **_canonical_pieces(values), "genesis": GENESIS})
        return
    session.flush()
    last = execute_direct(session, _HEAD, [{}]).fetchone()
    values["id"] = (last[0] + 1) if last else 1
    values["prev_hash"] = last[1] if last else GENESIS
    # Hashed and inserted as plain values: no ORM instance to build and flush.
    values["hash"] = entry_hash(SimpleNamespace(**values))  # type: ignore[arg-type]
    insert_values(session, AuditEntry, [values])


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
