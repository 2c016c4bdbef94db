"""Appending to and verifying the audit chain."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
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
_HEAD = select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)  # type: ignore[union-attr]


def hold_append_lock(session: Session) -> None:
    """Take, until the transaction ends, the lock that serialises appends (re-entrant)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # On SQLite the writer transaction already holds the database write lock.
    transaction = session.get_transaction()
    if transaction is not None and session.info.get(_LOCK_HELD) is transaction:
        return  # Taken earlier in this transaction: it is held until the transaction ends.
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    session.info[_LOCK_HELD] = session.get_transaction()


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
    hold_append_lock(session)
    last = session.connection().execute(_HEAD).first()
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
