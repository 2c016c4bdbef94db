"""Response shapes of a data subject's access request (UU PDP Pasal 32)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.referrals.schemas import HistoryEntry, NoteRead, ReferralRead
from service.times import Instant


class ProcessingStep(BaseModel):
    """One entry of the audit trail about the referral: who processed the data, how, when."""

    occurred_at: Instant
    agency: str | None = Field(
        default=None, description="The acting agency; null for operator commands"
    )
    action: str = Field(examples=["referral.create", "referral.reveal_identity"])


class SubjectReferral(ReferralRead):
    """A referral of the person, with everything recorded about it."""

    history: list[HistoryEntry]
    notes: list[NoteRead]
    processing_trail: list[ProcessingStep] = Field(
        description="The audit trail of the referral, oldest first"
    )


class SubjectExport(BaseModel):
    """Every referral of one person that the caller's agency is a party to."""

    nik: str
    exported_at: Instant
    referrals: list[SubjectReferral]
