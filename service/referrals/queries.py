"""Reading referrals: one, a page, its history and notes; a reveal is audited first."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from service import cursors, errors
from service.auth.principal import Principal
from service.context import ServiceContext
from service.db.types import utcnow
from service.db.writes import Writes
from service.i18n import msg
from service.referrals import repository as repo
from service.referrals.models import Referral
from service.referrals.schemas import HistoryEntry, NoteRead, ReferralPage, ReferralRead
from service.referrals.sealing import open_field, seal_reveal_reason
from service.referrals.views import view_data_for, view_for, withheld_from

REVEAL_ACTION = "referral.reveal_identity"


def load_visible(
    session: Session, principal: Principal, referral_id: uuid.UUID, *, for_update: bool = False
) -> Referral:
    row = repo.get_visible(session, referral_id, principal.agency, for_update=for_update)
    if row is None:
        raise errors.NotFound(msg("No referral with this id is visible to your agency."))
    return row


def get_referral(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    *,
    reveal: bool = False,
    reveal_reason: str | None = None,
) -> ReferralRead:
    """One referral, if the caller's agency is a party to it; a reveal is audited first."""
    if not reveal:
        # Row and services need no shared snapshot: services are only ever added, so at
        # worst the answer shows one recorded a moment after the row was read.
        with ctx.db.autocommit() as session:
            row = load_visible(session, principal, referral_id)
            services = repo.services_of_rows(session, [row])[row.id]
            return view_for(ctx, row, services, viewer=principal.agency)
    if not reveal_reason:
        raise errors.ValidationFailed(msg("A reason is required to reveal an identity."))

    def reveal_to(w: Writes) -> tuple[Referral, list[Any]]:
        row = load_visible(w.session, principal, referral_id)
        if withheld_from(row, principal.agency):
            raise errors.Forbidden(
                msg(
                    "The person withdrew consent: the receiving agency can no longer see "
                    "their identity."
                )
            )
        if row.protected_identity:
            audit_reveal(ctx, w, principal, row, reveal_reason)
        return row, repo.services_of(w.session, [row.id])[row.id]

    row, services = ctx.db.write(reveal_to)
    return view_for(ctx, row, services, viewer=principal.agency, reveal=True)


def audit_reveal(
    ctx: ServiceContext,
    w: Writes,
    principal: Principal,
    row: Referral,
    reason: str,
    **detail: str,
) -> None:
    """Write that the caller saw (or matched) a protected identity, with its sealed reason."""
    w.append_audit(
        action=REVEAL_ACTION,
        agency=principal.agency,
        client_id=principal.client_id,
        referral_id=row.id,
        detail={"reference": row.reference, **detail},
        detail_sealed=seal_reveal_reason(ctx, row.id, reason),
    )


def list_referrals(
    ctx: ServiceContext,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    nik: str | None,
    reveal_reason: str | None = None,
    **filters: Any,
) -> ReferralPage:
    """A page of the caller's referrals, newest first.

    A `nik` matches a protected identity only with a `reveal_reason`, and each protected
    referral it matched on the page is audited as a reveal before the page is answered.
    The identifying fields stay withheld, as in any list: the reason lets the match happen.
    """
    after = cursors.decode_keyset(cursor) if cursor else None
    nik_hash = ctx.keyring.nik_index(nik) if nik else None
    spec = repo.ListFilter(
        agency=principal.agency,
        nik_hash=nik_hash,
        nik_reveal=bool(nik_hash and reveal_reason),
        **filters,
    )
    now = utcnow()
    # As for one referral: the page and its services need no shared snapshot.
    with ctx.db.autocommit() as session:
        rows = repo.list_page(session, spec, limit=limit, after=after, now=now)
        page, more = rows[:limit], len(rows) > limit
        services = repo.services_of_rows(session, page)
        items = [
            view_data_for(ctx, r, services[r.id], viewer=principal.agency, now=now) for r in page
        ]
    matched = [r for r in page if r.protected_identity]
    if spec.nik_reveal and reveal_reason and matched:

        def audit_matches(w: Writes) -> None:
            for row in matched:
                audit_reveal(ctx, w, principal, row, reveal_reason, matched_by="nik")

        ctx.db.write(audit_matches)
    last = page[-1] if more else None
    next_cursor = cursors.encode_keyset(last.created_at, last.id) if last else None
    return ReferralPage.model_validate({"items": items, "next_cursor": next_cursor})


def history_of(session: Session, referral_id: uuid.UUID) -> list[HistoryEntry]:
    """The history rows of a referral, oldest first (the caller checked visibility)."""
    # Numbered within the referral: the rows' own ids count every agency's actions.
    return [
        HistoryEntry(
            id=position,
            action=h.action,
            from_status=h.from_status,
            to_status=h.to_status,
            actor_agency=h.actor_agency,
            occurred_at=h.occurred_at,
            detail=h.detail,
        )
        for position, h in enumerate(repo.history(session, referral_id), start=1)
    ]


def notes_of(ctx: ServiceContext, session: Session, row: Referral, viewer: str) -> list[NoteRead]:
    """The notes of a referral as `viewer` sees them, oldest first."""
    withheld = withheld_from(row, viewer)
    return [
        NoteRead(
            id=n.id,
            text="" if withheld else open_field(ctx, row.id, f"note:{n.id}", n.text_sealed) or "",
            author_agency=n.author_agency,
            created_at=n.created_at,
            withheld=withheld,
        )
        for n in repo.notes(session, row.id)
    ]


def get_history(
    ctx: ServiceContext, principal: Principal, referral_id: uuid.UUID
) -> list[HistoryEntry]:
    """Every successful action on a referral, oldest first."""
    with ctx.db.reader() as session:
        load_visible(session, principal, referral_id)
        return history_of(session, referral_id)


def list_notes(ctx: ServiceContext, principal: Principal, referral_id: uuid.UUID) -> list[NoteRead]:
    """The notes on a referral, oldest first."""
    with ctx.db.reader() as session:
        row = load_visible(session, principal, referral_id)
        return notes_of(ctx, session, row, principal.agency)
