"""Reading the audit trail through the API: an agency sees only its own entries."""

from __future__ import annotations

import base64
import binascii
import uuid

from sqlalchemy import select

from service import errors
from service.audit.models import AuditEntry
from service.audit.schemas import AuditEntryRead, AuditPage
from service.auth.principal import Principal
from service.context import ServiceContext

_CURSOR_PREFIX = "audit:"


def _encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{entry_id}".encode()).rstrip(b"=").decode()


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError("not an audit cursor")
        entry_id = int(raw.removeprefix(_CURSOR_PREFIX))
        # Past a 64-bit integer the database would fail on the comparison.
        if not 1 <= entry_id < 2**63:
            raise ValueError("out of range")
        return entry_id
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise errors.ValidationFailed(
            "cursor is not valid; pass back next_cursor exactly as received",
            [{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        ) from exc


def list_entries(
    ctx: ServiceContext,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    referral_id: uuid.UUID | None,
) -> AuditPage:
    """A page of the caller agency's own entries, newest first (keyset on the chain id)."""
    conditions = [AuditEntry.agency == principal.agency]
    if referral_id is not None:
        conditions.append(AuditEntry.referral_id == referral_id)
    if cursor:
        conditions.append(AuditEntry.id < _decode_cursor(cursor))  # type: ignore[operator]
    stmt = (
        select(AuditEntry)
        .where(*conditions)
        .order_by(AuditEntry.id.desc())  # type: ignore[union-attr]
        .limit(limit + 1)
    )
    with ctx.db.reader() as session:
        rows = list(session.execute(stmt).scalars())
    page, more = rows[:limit], len(rows) > limit
    items = [
        AuditEntryRead(
            id=row.id or 0,
            occurred_at=row.occurred_at,
            client_id=row.client_id,
            action=row.action,
            referral_id=row.referral_id,
            request_id=row.request_id,
            detail=row.detail,
            hash=row.hash,
            prev_hash=row.prev_hash,
        )
        for row in page
    ]
    next_cursor = _encode_cursor(page[-1].id or 0) if more else None
    return AuditPage(items=items, next_cursor=next_cursor)
