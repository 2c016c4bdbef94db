"""The viewer's redacted view of a referral: what an agency may see of it."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import orjson

from service.context import ServiceContext
from service.crypto import KeyFileError
from service.db.types import utcnow
from service.metrics import UNREADABLE_REFERRALS
from service.referrals.models import DeliveredService, Referral
from service.referrals.schemas import ReferralRead
from service.referrals.sealing import open_field
from service.referrals.workflow import CLOSED

log = logging.getLogger("rujukan.referrals")

IDENTIFYING_FIELDS = ("full_name", "nik", "birth_date", "address", "phone")


def withheld_from(row: Referral, agency: str) -> bool:
    """True when consent was withdrawn and `agency` received the referral: it sees no more
    of the person's data (the sender keeps seeing what it sent)."""
    return row.consent_withdrawn_at is not None and agency == row.to_agency


def guardian_of(ctx: ServiceContext, row: Referral) -> dict[str, Any] | None:
    record = orjson.loads(open_field(ctx, row.id, "consent", row.consent_sealed) or "{}")
    guardian: dict[str, Any] | None = record.get("guardian")
    return guardian


def view_for(
    ctx: ServiceContext,
    row: Referral,
    services: list[DeliveredService],
    *,
    viewer: str,
    reveal: bool = False,
    now: dt.datetime | None = None,
) -> ReferralRead:
    """A referral as the `viewer` agency sees it; sealed identities stay sealed unless
    revealed, and a receiver sees none of the person's data once consent is withdrawn."""
    data = view_data_for(ctx, row, services, viewer=viewer, reveal=reveal, now=now or utcnow())
    return ReferralRead.model_validate(data)


def view_data_for(
    ctx: ServiceContext,
    row: Referral,
    services: list[DeliveredService],
    *,
    viewer: str,
    reveal: bool = False,
    now: dt.datetime,
) -> dict[str, Any]:
    """What `view_for` returns, as the plain data `ReferralRead` validates: a page of them is
    validated in one call (`ReferralPage.model_validate`), not model by model.

    A referral whose sealed values cannot be opened (damaged, or sealed under a data key the
    key file lacks) comes without them, marked `unavailable`, and is logged and counted: the
    rest of a page is still served, and `rujukan check` names the values.
    """
    try:
        return _view_data(ctx, row, services, viewer=viewer, reveal=reveal, now=now)
    except (KeyFileError, ValueError) as exc:
        # The id and the kind of failure only: the message could describe the stored value.
        log.error(
            "sealed referral data cannot be opened",
            extra={"referral_id": str(row.id), "error_type": type(exc).__name__},
        )
        UNREADABLE_REFERRALS.inc()
        data = _view_data(ctx, row, services, viewer=viewer, reveal=reveal, now=now, readable=False)
        return {**data, "unavailable": True}


def _view_data(
    ctx: ServiceContext,
    row: Referral,
    services: list[DeliveredService],
    *,
    viewer: str,
    reveal: bool,
    now: dt.datetime,
    readable: bool = True,
) -> dict[str, Any]:
    def open_(field: str, sealed_text: str | None) -> str | None:
        return open_field(ctx, row.id, field, sealed_text) if readable else None

    withheld = withheld_from(row, viewer)
    sealed = (row.protected_identity and not reveal) or withheld
    subject = orjson.loads(open_("subject", row.subject_sealed) or "{}")
    if sealed:
        # After consent withdrawal the receiver keeps no field of the person at all: sex,
        # a village's region code or why a NIK is absent would still narrow them down.
        subject = (
            {} if withheld else {k: v for k, v in subject.items() if k not in IDENTIFYING_FIELDS}
        )
    subject["sealed"] = sealed

    def free_text(field: str, sealed_text: str | None) -> str | None:
        return None if withheld else open_(field, sealed_text)

    assessment = None
    if row.assessment:
        assessment = {
            **row.assessment,
            "notes": free_text("assessment_notes", row.assessment_notes_sealed),
        }
    closure = None
    if row.closure_outcome and row.closed_at:
        closure = {
            "outcome": row.closure_outcome,
            "reason": row.closure_reason,
            "notes": free_text("closure_notes", row.closure_notes_sealed),
            "onward_agency": row.onward_agency,
            "onward_referral_id": row.onward_referral_id,
            "closed_at": row.closed_at,
        }
    consent = {
        **row.consent,
        "guardian": None if sealed or not readable else guardian_of(ctx, row),
        "withdrawn_at": row.consent_withdrawn_at,
    }
    return {
        "id": row.id,
        "reference": row.reference,
        "status": row.status,
        "from_agency": row.from_agency,
        "to_agency": row.to_agency,
        "subject": subject,
        "protected_identity": row.protected_identity,
        "groups": row.groups,
        "kemenham_groups": row.kemenham_groups,
        "case_types": row.case_types,
        "urgency": row.urgency,
        "summary": free_text("summary", row.summary_sealed) or "",
        "consent": consent,
        # The sender's case number is a key to the person's file there.
        "external_ref": None if withheld else row.external_ref,
        "assessment": assessment,
        "services": [
            {
                "id": s.id,
                "service_type": s.service_type,
                "service_unit": s.service_unit,
                "phase": s.phase,
                "started_at": s.started_at,
                "notes": free_text(f"service:{s.id}", s.notes_sealed),
                "recorded_at": s.recorded_at,
            }
            for s in services
        ],
        "closure": closure,
        "parent_id": row.parent_id,
        # Ties this referral to another of the person: shown with the identity only.
        "possible_duplicate_of": (
            row.possible_duplicate_of if viewer == row.to_agency and not sealed else None
        ),
        "due_at": row.due_at,
        "is_overdue": bool(row.status != CLOSED and row.due_at and row.due_at < now),
        "consent_withdrawn": row.consent_withdrawn_at is not None,
        "purged_at": row.purged_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
    }
