"""Queries of a data subject's access request."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import Session, col

from service.audit.models import AuditEntry
from service.referrals.models import Referral
from service.referrals.repository import findable_by_nik, visible_to


def referrals_of_person(
    session: Session, nik_hash: str, agency: str, *, with_protected: bool
) -> list[Referral]:
    """The person's referrals (by the keyed NIK index) that the agency is a party to and
    may find by NIK (`findable_by_nik`)."""
    stmt = (
        select(Referral)
        .where(
            col(Referral.nik_hash) == nik_hash,
            visible_to(agency),
            *findable_by_nik(agency, with_protected=with_protected),
        )
        .order_by(col(Referral.created_at), col(Referral.id))
    )
    return list(session.execute(stmt).scalars())


def processing_trail(
    session: Session, referral_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[AuditEntry]]:
    """The audit entries of each referral, in chain order."""
    grouped: dict[uuid.UUID, list[AuditEntry]] = {rid: [] for rid in referral_ids}
    if not referral_ids:
        return grouped
    stmt = (
        select(AuditEntry)
        .where(col(AuditEntry.referral_id).in_(referral_ids))
        .order_by(col(AuditEntry.id))
    )
    for entry in session.execute(stmt).scalars():
        if entry.referral_id is not None:
            grouped[entry.referral_id].append(entry)
    return grouped
