"""Appending to and verifying the audit chain."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import suppress
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import object_session
from sqlmodel import Session

from service.audit.keys import SESSION_KEY, AuditKeyring
from service.audit.models import AuditEntry
from service.crypto import KeyFileError
from service.db import AUDIT_APPEND_LOCK_KEY, compiled_for, execute_direct, insert_values
from service.db.types import utcnow
from service.requestctx import request_id

GENESIS = "0" * 64


def _content(entry: AuditEntry) -> dict[str, Any]:
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
    if entry.key_id is not None:
        # Entries written before the chain was keyed have neither (their hash is unchanged).
        content["key_id"] = entry.key_id
        content["agency_seq"] = entry.agency_seq
    return content


def _message(entry: AuditEntry) -> bytes:
    canonical = json.dumps(_content(entry), sort_keys=True, separators=(",", ":"))
    return entry.prev_hash.encode("ascii") + canonical.encode("utf-8")


def entry_hash(entry: AuditEntry, keys: AuditKeyring | None = None) -> str:
    """The hash an entry must carry: HMAC-SHA256 under the audit key it names, or plain
    SHA-256 for an entry written before the chain was keyed (no key id).

    `keys`: the audit keys (default: those of the session the entry was read in); an
    unknown key id raises KeyFileError.
    """
    if entry.key_id is None:
        return hashlib.sha256(_message(entry)).hexdigest()
    if keys is None:
        keys = session_keys(object_session(entry))
    return keys.mac(entry.key_id, _message(entry))


def session_keys(session: OrmSession | None) -> AuditKeyring:
    """The audit keys of a session of the service context's database."""
    provider = session.info.get(SESSION_KEY) if session is not None else None
    if provider is None:
        raise KeyFileError("no audit keys: use a session of the service context's database")
    keys: AuditKeyring = provider()
    return keys


_LOCK_HELD = "rujukan_audit_lock_held"
_TAIL = "rujukan_audit_tail"
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
# The chain's head, and the last number the entry's agency gave (None: none yet).
_AGENCY_SEQ = (
    select(AuditEntry.agency_seq)
    # Not NULL: PostgreSQL sorts NULLs first when descending.
    .where(AuditEntry.agency == bindparam("agency"), AuditEntry.agency_seq.is_not(None))  # type: ignore[union-attr]
    .order_by(AuditEntry.agency_seq.desc())  # type: ignore[union-attr]
    .limit(1)
    .scalar_subquery()
)
_HEAD = (
    select(AuditEntry.id, AuditEntry.hash, _AGENCY_SEQ.label("agency_seq"))
    .order_by(AuditEntry.id.desc())  # type: ignore[union-attr]
    .limit(1)
)
_INSERT = AuditEntry.__table__.insert()  # type: ignore[attr-defined]


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
    session.execute(_LOCK, {"k": AUDIT_APPEND_LOCK_KEY})
    session.info[_LOCK_HELD] = session.get_transaction()


def _for_driver(
    connection: Any, statement: Any, params: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """`statement` (its parameters all named in it) as psycopg takes it: its SQL and its
    parameters, bound as SQLAlchemy binds them."""
    compiled = compiled_for(connection.dialect, statement)
    return compiled.sql, compiled.driver_params(params)


class _Tail:
    """What a PostgreSQL transaction sends at its commit (dropped when it ends)."""

    __slots__ = ("statements", "channels", "entries")

    def __init__(self) -> None:
        self.statements: list[tuple[str, dict[str, Any]]] = []
        self.channels: set[str] = set()
        self.entries: list[dict[str, Any]] = []


def _tail(session: Session) -> _Tail:
    tail: _Tail = session.info.setdefault(_TAIL, _Tail())
    return tail


def defer(
    session: Session, statement: Any, params: dict[str, Any], *, notify: str | None = None
) -> None:
    """PostgreSQL: run `statement` at commit, under the append lock, in the order the
    transaction deferred its statements, before its audit entries; `notify`: a channel to
    NOTIFY at that commit.

    For writes that must be ordered like the chain (event numbers, taken as max + 1).
    """
    tail = _tail(session)
    tail.statements.append(_for_driver(session.connection(), statement, params))
    if notify:
        tail.channels.add(notify)


def _chain(
    entries: list[dict[str, Any]], heads: dict[str | None, Any], keys: AuditKeyring
) -> list[dict[str, Any]]:
    """`entries` numbered, linked and keyed after the chain's head as `heads` found it
    (one `_HEAD` row per agency of the entries, None for an empty trail)."""
    first = next(iter(heads.values()))
    last_id, last_hash = (first[0], first[1]) if first else (0, GENESIS)
    seqs = {agency: (row[2] if row else None) or 0 for agency, row in heads.items()}
    rows = []
    for values in entries:
        agency = values["agency"]
        seq = None
        if agency is not None:
            seq = seqs[agency] = seqs[agency] + 1
        last_id += 1
        row = {
            **values, "id": last_id, "prev_hash": last_hash, "key_id": keys.active,
            "agency_seq": seq,
        }  # fmt: skip
        row["hash"] = last_hash = entry_hash(SimpleNamespace(**row), keys)  # type: ignore[arg-type]
        rows.append(row)
    return rows


@sa_event.listens_for(OrmSession, "before_commit")
def _commit_tail(session: Any) -> None:
    """PostgreSQL: send what the transaction deferred, its audit entries and its COMMIT, in
    two round trips under the append lock.

    First the NOTIFYs, the append lock, the deferred statements and the reads of the
    chain's head go to the server together (psycopg's pipeline mode) and it runs them one
    after the other; then this process numbers and keys the entries (the audit key never
    goes to the database) and sends their INSERTs with the COMMIT. The lock is held from the
    first round trip to the end of the second, and every other writer of the service waits
    only that long. The transaction is committed here: the COMMIT that SQLAlchemy then sends
    finds it ended and does nothing. A failure of any of them fails the commit, and the
    transaction is rolled back, nothing of it stored.
    """
    tail: _Tail | None = session.info.get(_TAIL)
    if tail is None or session.in_nested_transaction():
        return
    del session.info[_TAIL]
    session.flush()
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    keys = session_keys(session) if tail.entries else None
    lock = not _held(session)
    with driver.pipeline() as pipeline:
        try:
            _send_tail(connection, driver, tail, lock, keys)
        except driver.Error:
            # A statement failed and the server skipped the rest: take their (failed)
            # results, so that the pipeline ends cleanly, then fail the commit.
            with suppress(driver.Error):
                pipeline.sync()
            raise


def _send_tail(
    connection: Any, driver: Any, tail: _Tail, lock: bool, keys: AuditKeyring | None
) -> None:
    """The two round trips of `_commit_tail`, in psycopg's pipeline mode."""
    for channel in sorted(tail.channels):
        driver.execute(f"NOTIFY {channel}")
    if lock:
        driver.execute(*_for_driver(connection, _LOCK, {"k": AUDIT_APPEND_LOCK_KEY}))
    for sql, params in tail.statements:
        driver.execute(sql, params)
    if keys is not None:
        agencies = dict.fromkeys(values["agency"] for values in tail.entries)
        reads = {
            agency: driver.execute(*_for_driver(connection, _HEAD, {"agency": agency}))
            for agency in agencies
        }
        # The first fetch sends everything above and waits for it: one round trip.
        heads = {agency: cursor.fetchone() for agency, cursor in reads.items()}
        rows = _chain(tail.entries, heads, keys)
        insert = compiled_for(connection.dialect, _INSERT, list(rows[0]))
        for row in rows:
            driver.execute(insert.sql, insert.driver_params(row))
    driver.commit()


@sa_event.listens_for(OrmSession, "after_transaction_end")
def _drop_tail(session: Any, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_TAIL, None)


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

    Call it as the last write of a transaction. The entry is numbered after the chain's
    head, linked to it, given the next number of its agency's own sequence and keyed with
    the active audit key. On SQLite that happens at once, from the head this transaction
    (or its savepoint) sees: the writer transaction holds the database's write lock from
    its start. On PostgreSQL it happens at commit, after everything else, under the append
    lock (see `_commit_tail`).
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
        _tail(session).entries.append(values)
        return
    keys = session_keys(session)
    session.flush()
    head = execute_direct(session, _HEAD, [{"agency": agency}]).fetchone()
    # Inserted as plain values: no ORM instance to build and flush.
    insert_values(session, AuditEntry, _chain([values], {agency: head}, keys))


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


def verify_chain(
    session: Session, keys: AuditKeyring | None = None
) -> tuple[int, int | None, str | None]:
    """(entries checked, id of the first bad entry or None, the reason).

    Each entry must follow the one before it (number and prev_hash), carry the hash of its
    content (HMAC under the audit key it names, which must be in `keys`, by default the
    session's) and the next number of its agency's sequence. Entries without a key id
    (written before the chain was keyed) are accepted only before the first keyed one, and
    only if dated before the oldest audit key, unless a keyed entry follows them: a chain
    re-hashed as if it had never been keyed does not pass.
    """
    keys = keys or session_keys(session)
    prev = GENESIS
    count = 0
    keyed = False
    unkeyed_after_key: int | None = None
    seqs: dict[str, int] = {}
    for entry in iter_entries(session):
        entry_id = entry.id or 0
        if entry_id != count + 1:
            return count, entry_id, f"entry {count + 1} is missing"
        if entry.prev_hash != prev:
            return count, entry_id, "prev_hash does not match the previous entry"
        if entry.key_id is None:
            if keyed:
                return count, entry_id, "it is not keyed, but an entry before it is"
            if unkeyed_after_key is None and entry.occurred_at > keys.oldest:
                unkeyed_after_key = entry_id
        elif entry.key_id not in keys.keys:
            return count, entry_id, (f"its audit key {entry.key_id!r} is not in the audit key file")
        else:
            keyed = True
        if entry_hash(entry, keys) != entry.hash:
            return count, entry_id, "content does not match its hash"
        expected_seq = None if entry.agency is None else seqs.get(entry.agency, 0) + 1
        if entry.agency_seq != expected_seq:
            return (
                count,
                entry_id,
                (f"its number in its agency's sequence is {entry.agency_seq}, not {expected_seq}"),
            )
        if entry.agency is not None:
            seqs[entry.agency] = entry.agency_seq or 0
        prev = entry.hash
        count += 1
    if unkeyed_after_key is not None and not keyed:
        return (
            unkeyed_after_key - 1,
            unkeyed_after_key,
            ("it is not keyed, but was written after the audit key was made"),
        )
    return count, None, None
