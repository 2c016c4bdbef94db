"""A data subject's access request (UU PDP Pasal 32): one transaction, audited."""

from __future__ import annotations

from service.auth.principal import Principal
from service.context import ServiceContext
from service.db.types import utcnow
from service.db.writes import Writes
from service.referrals import repository as referrals_repo
from service.referrals.queries import history_of, notes_of
from service.referrals.sealing import seal_reveal_reason
from service.referrals.views import view_for
from service.subjects import repository as repo
from service.subjects.schemas import ProcessingStep, SubjectExport, SubjectReferral


def export_subject_data(
    ctx: ServiceContext, principal: Principal, nik: str, reveal_reason: str | None = None
) -> SubjectExport:
    """Every referral of the person with this NIK that the caller's agency is a party to and
    may find by NIK, with its history, notes and processing trail; each is audited.

    A protected identity is exported (in full) only with a `reveal_reason`, sealed into its
    audit entry; without one the referral is left out. A referral whose consent was
    withdrawn is left out for its receiver.
    """
    now = utcnow()

    def export(w: Writes) -> list[SubjectReferral]:
        session = w.session
        rows = repo.referrals_of_person(
            session,
            ctx.keyring.nik_index(nik),
            principal.agency,
            with_protected=reveal_reason is not None,
        )
        ids = [row.id for row in rows]
        services = referrals_repo.services_of(session, ids)
        trails = repo.processing_trail(session, ids)
        items = [
            SubjectReferral(
                # The request is the person's own: a protected identity is included.
                **view_for(
                    ctx, row, services[row.id], viewer=principal.agency, reveal=True, now=now
                ).model_dump(),
                history=history_of(session, row.id),
                notes=notes_of(ctx, session, row, principal.agency),
                processing_trail=[
                    ProcessingStep(occurred_at=e.occurred_at, agency=e.agency, action=e.action)
                    for e in trails[row.id]
                ],
            )
            for row in rows
        ]
        # The audit trail is the last write; it never holds the NIK.
        for row in rows:
            w.append_audit(
                action="subject.export",
                agency=principal.agency,
                client_id=principal.client_id,
                referral_id=row.id,
                detail={"reference": row.reference, "identity_included": row.protected_identity},
                detail_sealed=(
                    seal_reveal_reason(ctx, row.id, reveal_reason)
                    if row.protected_identity and reveal_reason
                    else None
                ),
            )
        if not rows:
            w.append_audit(
                action="subject.export",
                agency=principal.agency,
                client_id=principal.client_id,
                detail={"referrals": 0},
            )
        return items

    return SubjectExport(nik=nik, exported_at=now, referrals=ctx.db.write(export))
