"""Signed heads of the audit trail: what `rujukan audit head` prints and `verify --head` checks.

The chain alone cannot show that its newest entries were cut off or replaced by a re-hashed
tail (anyone with write access can recompute the hashes). A head, signed with the service's
token signing key and kept outside the database, pins the entry count and the last hash.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from service.audit.models import AuditEntry
from service.audit.trail import verify_chain
from service.auth import tokens
from service.auth.keys import SigningKey
from service.dbtypes import utcnow

HEAD_TYPE = "rujukan-audit-head+jws"


class HeadError(Exception):
    """The trail does not match the head, or the head cannot be trusted; the message says why."""


def current_head(session: Session) -> dict[str, Any]:
    """Count, id and hash of the newest entry, after checking the whole chain."""
    count, bad_id, reason = verify_chain(session)
    if bad_id is not None:
        raise HeadError(f"audit entry {bad_id} is bad: {reason}; refusing to sign this chain")
    last = session.execute(
        select(AuditEntry.id, AuditEntry.hash).where(AuditEntry.id == count)  # type: ignore[arg-type]
    ).first()
    return {
        "count": count,
        "last_id": last[0] if last else None,
        "last_hash": last[1] if last else None,
        "signed_at": utcnow().isoformat(),
    }


def sign_head(head: dict[str, Any], key: SigningKey) -> str:
    """The head as a compact JWS."""
    return tokens.sign_document(head, key, typ=HEAD_TYPE)


def read_head(token: str, keys: dict[str, tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """The head inside a signed head, once its signature checks out against `keys`."""
    try:
        head = tokens.verify_document(token, keys, typ=HEAD_TYPE)
    except tokens.TokenInvalid as exc:
        raise HeadError(f"the audit head cannot be trusted: {exc}") from exc
    count, last_id, last_hash = head.get("count"), head.get("last_id"), head.get("last_hash")
    well_formed = (
        isinstance(count, int)
        and count >= 0
        and (
            (count == 0 and last_id is None and last_hash is None)
            or (isinstance(last_id, int) and isinstance(last_hash, str))
        )
    )
    if not well_formed:
        raise HeadError("the audit head is signed but does not name a count and a last entry")
    return head


def check_against_head(session: Session, head: dict[str, Any]) -> None:
    """Raise HeadError unless the trail still holds the head's last entry, unchanged."""
    count = int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())
    signed_at = head.get("signed_at", "?")
    if head["last_id"] is None:
        return
    entry = session.get(AuditEntry, head["last_id"])
    if entry is None or count < head["count"]:
        raise HeadError(
            f"audit entry {head['last_id']} named by the head signed at {signed_at} is missing "
            f"({count} entries now, {head['count']} then): the trail was truncated"
        )
    if entry.hash != head["last_hash"]:
        raise HeadError(
            f"audit entry {head['last_id']} does not have the hash in the head signed at "
            f"{signed_at}: the tail was rewritten"
        )
