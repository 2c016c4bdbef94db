"""Reading and verifying the audit chain (entries are appended by the write path)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import object_session
from sqlmodel import Session, col

from service.audit import chain
from service.audit.chain import GENESIS
from service.audit.keys import AuditKeyring, session_keys
from service.audit.models import AuditEntry
from service.tables import table_of

__all__ = ["GENESIS", "entry_hash", "session_keys", "verify_chain"]


_HASHED = tuple(column.key for column in table_of(AuditEntry).columns)


def entry_hash(entry: AuditEntry, keys: AuditKeyring | None = None) -> str:
    """The hash an entry must carry (`chain.hash_of`).

    `keys`: the audit keys (default: those of the session the entry was read in); an
    unknown key id raises KeyFileError.
    """
    if keys is None and entry.key_id is not None:
        keys = session_keys(object_session(entry))
    return chain.hash_of({name: getattr(entry, name) for name in _HASHED}, keys)


def iter_entries(session: Session, batch: int = 1000) -> Iterator[AuditEntry]:
    """Every entry in chain order."""
    last_id = 0
    while True:
        rows = list(
            session.execute(
                select(AuditEntry)
                .where(col(AuditEntry.id) > last_id)
                .order_by(col(AuditEntry.id))
                .limit(batch)
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
