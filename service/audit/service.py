"""Reading the audit trail through the API: an agency sees only its own entries."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlmodel import col

from service import cursors
from service.audit.models import AuditEntry
from service.audit.schemas import AuditEntryRead, AuditPage
from service.audit.trail import GENESIS
from service.auth.principal import Principal
from service.context import ServiceContext

_CURSOR_PREFIX = "audit:"
# `agency_seq` is a 32-bit column on PostgreSQL: a larger cursor names no entry.
_MAX_SEQ = 2**31 - 1


def list_entries(
    ctx: ServiceContext,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    referral_id: uuid.UUID | None,
) -> AuditPage:
    """A page of the caller agency's own entries, newest first (keyset on the agency's own
    sequence), each linked to the agency's previous entry rather than its chain neighbour
    (which may be another agency's)."""
    seq, agency = col(AuditEntry.agency_seq), col(AuditEntry.agency)
    conditions = [agency == principal.agency, seq.is_not(None)]
    if referral_id is not None:
        conditions.append(col(AuditEntry.referral_id) == referral_id)
    if cursor:
        before = cursors.decode_number(cursor, _CURSOR_PREFIX, _MAX_SEQ)
        conditions.append(seq < before)
    stmt = select(AuditEntry).where(*conditions).order_by(seq.desc()).limit(limit + 1)
    with ctx.db.reader() as session:
        rows = list(session.execute(stmt).scalars())
        page, more = rows[:limit], len(rows) > limit
        hashes: dict[int | None, str] = {row.agency_seq: row.hash for row in rows}
        # Without a filter each entry's predecessor is the next row; with one, read them.
        missing = {row.agency_seq - 1 for row in page if row.agency_seq} - set(hashes) - {0}
        if missing:
            hashes.update(
                session.execute(
                    select(seq, col(AuditEntry.hash)).where(
                        agency == principal.agency, seq.in_(missing)
                    )
                )
                .tuples()
                .all()
            )
    items = [
        AuditEntryRead(
            id=row.agency_seq or 0,
            occurred_at=row.occurred_at,
            client_id=row.client_id,
            action=row.action,
            referral_id=row.referral_id,
            request_id=row.request_id,
            detail=row.detail,
            hash=row.hash,
            prev_hash=hashes.get((row.agency_seq or 0) - 1, GENESIS),
        )
        for row in page
    ]
    next_cursor = cursors.encode_number(_CURSOR_PREFIX, page[-1].agency_seq or 0) if more else None
    return AuditPage(items=items, next_cursor=next_cursor)
