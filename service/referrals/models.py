"""Tables of the referral domain. Personal data lives only in the `*_sealed` columns."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlmodel import Field, SQLModel

from service.columns import serial_primary_key, utc_now, uuid_primary_key
from service.db.types import UTCDateTime
from service.referrals.workflow import CLOSED, ReferralStatus

URGENCIES = ("emergency", "urgent", "routine")


def _status_check(column: str, name: str) -> CheckConstraint:
    allowed = ", ".join(f"'{s}'" for s in ReferralStatus)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)


class Referral(SQLModel, table=True):
    """A referral ticket of one person from one agency to another."""

    __tablename__ = "referral"
    __table_args__ = (
        _status_check("status", "ck_referral_status"),
        CheckConstraint(
            "urgency IN ('emergency', 'urgent', 'routine')", name="ck_referral_urgency"
        ),
        CheckConstraint("from_agency <> to_agency", name="ck_referral_not_to_self"),
        CheckConstraint("version >= 1", name="ck_referral_version"),
        Index("ix_referral_to_agency_created", "to_agency", "created_at", "id"),
        Index("ix_referral_from_agency_created", "from_agency", "created_at", "id"),
        Index("ix_referral_to_agency_status_created", "to_agency", "status", "created_at", "id"),
        Index(
            "ix_referral_from_agency_status_created", "from_agency", "status", "created_at", "id"
        ),
        Index("ix_referral_updated_at", "updated_at"),
        Index("ix_referral_nik_hash", "nik_hash"),
        Index("ix_referral_closed_at", "closed_at"),
        # One open referral per person from one sender to one receiver, enforced by the
        # database so that two concurrent creates cannot both pass. Another sender's open
        # referral of the same person does not block a create (a refusal would tell that
        # sender the person is known there); the new one points to it instead.
        Index(
            "uq_referral_open_nik_per_parties",
            "from_agency",
            "to_agency",
            "nik_hash",
            unique=True,
            sqlite_where=text(f"status <> '{CLOSED}' AND nik_hash IS NOT NULL"),
            postgresql_where=text(f"status <> '{CLOSED}' AND nik_hash IS NOT NULL"),
        ),
    )

    id: uuid.UUID = uuid_primary_key()
    reference: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    from_agency: str = Field(
        sa_column=Column(String(32), ForeignKey("agency.code"), nullable=False)
    )
    to_agency: str = Field(sa_column=Column(String(32), ForeignKey("agency.code"), nullable=False))
    protected_identity: bool = Field(default=False, nullable=False)
    subject_sealed: str = Field(sa_column=Column(Text(), nullable=False))
    nik_hash: str | None = Field(default=None, sa_column=Column(String(64)))
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    kemenham_groups: list[str] = Field(
        default_factory=list, sa_column=Column(JSON(), nullable=False)
    )
    case_types: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    urgency: str = Field(sa_column=Column(String(16), nullable=False))
    summary_sealed: str = Field(sa_column=Column(Text(), nullable=False))
    # The consent record without personal data (purposes, who gave it, when, how); the
    # guardian who gave it for a child is personal data and lives in `consent_sealed`.
    consent: dict[str, Any] = Field(sa_column=Column(JSON(), nullable=False))
    consent_sealed: str | None = Field(default=None, sa_column=Column(Text()))
    consent_withdrawn_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    external_ref: str | None = Field(default=None, sa_column=Column(String(100)))
    assessment: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON()))
    assessment_notes_sealed: str | None = Field(default=None, sa_column=Column(Text()))
    closure_outcome: str | None = Field(default=None, sa_column=Column(String(32)))
    closure_reason: str | None = Field(default=None, sa_column=Column(String(64)))
    closure_notes_sealed: str | None = Field(default=None, sa_column=Column(Text()))
    onward_agency: str | None = Field(
        default=None, sa_column=Column(String(32), ForeignKey("agency.code"))
    )
    onward_referral_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid()))
    closed_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # An open referral of the same person to the same receiver from another sender, when
    # there was one at creation; shown to the receiver only.
    possible_duplicate_of: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid()))
    parent_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(Uuid(), ForeignKey("referral.id"), index=True)
    )
    due_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_by_client: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: dt.datetime = utc_now()
    updated_at: dt.datetime = utc_now()
    # When retention erased the personal data (`rujukan purge`); statistics stay.
    purged_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    version: int = Field(default=1, sa_column=Column(Integer(), nullable=False))


class _ReferralCodeIndex(SQLModel):
    """One code a referral carries, one row each, so SQL can filter and count by code."""

    # Declared without sa_column: each table built on this gets its own Column objects.
    referral_id: uuid.UUID = Field(
        sa_type=Uuid(), foreign_key="referral.id", ondelete="CASCADE", primary_key=True
    )
    code: str = Field(sa_type=String(64), primary_key=True)


class ReferralGroup(_ReferralCodeIndex, table=True):
    """Index of a referral's 12-PAS and KemenHAM group codes, for filtering by group."""

    __tablename__ = "referral_group"
    __table_args__ = (Index("ix_referral_group_code", "code", "referral_id"),)


class ReferralCaseType(_ReferralCodeIndex, table=True):
    """Index of a referral's case type codes, for counting by case type in SQL."""

    __tablename__ = "referral_case_type"
    __table_args__ = (Index("ix_referral_case_type_code", "code", "referral_id"),)


class DeliveredService(SQLModel, table=True):
    """One ATENSI service delivered to the referred person (table `referral_service`)."""

    __tablename__ = "referral_service"

    id: uuid.UUID = uuid_primary_key()
    referral_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("referral.id"), nullable=False, index=True)
    )
    service_type: str = Field(sa_column=Column(String(64), nullable=False))
    service_unit: str = Field(sa_column=Column(String(64), nullable=False))
    phase: str = Field(sa_column=Column(String(16), nullable=False))
    started_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    notes_sealed: str | None = Field(default=None, sa_column=Column(Text()))
    recorded_by_client: str = Field(sa_column=Column(String(64), nullable=False))
    recorded_at: dt.datetime = utc_now()


class ReferralNote(SQLModel, table=True):
    """A free-text note either party adds to a referral."""

    __tablename__ = "referral_note"

    id: uuid.UUID = uuid_primary_key()
    referral_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("referral.id"), nullable=False, index=True)
    )
    author_agency: str = Field(
        sa_column=Column(String(32), ForeignKey("agency.code"), nullable=False)
    )
    author_client: str = Field(sa_column=Column(String(64), nullable=False))
    text_sealed: str = Field(sa_column=Column(Text(), nullable=False))
    created_at: dt.datetime = utc_now()


class ReferralHistory(SQLModel, table=True):
    """Append-only row for each successful action on a referral."""

    __tablename__ = "referral_history"
    __table_args__ = (Index("ix_referral_history_referral", "referral_id", "id"),)

    id: int | None = serial_primary_key()
    referral_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("referral.id"), nullable=False)
    )
    action: str = Field(sa_column=Column(String(32), nullable=False))
    from_status: str | None = Field(default=None, sa_column=Column(String(16)))
    to_status: str = Field(sa_column=Column(String(16), nullable=False))
    actor_agency: str = Field(sa_column=Column(String(32), nullable=False))
    actor_client: str = Field(sa_column=Column(String(64), nullable=False))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    occurred_at: dt.datetime = utc_now()


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a create carrying an Idempotency-Key, kept to replay it."""

    __tablename__ = "idempotency_record"

    agency: str = Field(sa_column=Column(String(32), primary_key=True))
    key: str = Field(sa_column=Column(String(255), primary_key=True))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    referral_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("referral.id"), nullable=False)
    )
    response_status: int = Field(sa_column=Column(Integer(), nullable=False))
    response_sealed: str = Field(sa_column=Column(Text(), nullable=False))
    created_at: dt.datetime = utc_now()


class ReferenceCounter(SQLModel, table=True):
    """Last number handed out for the sequential references of earlier releases.

    No longer written (references are random now, so that none counts other agencies'
    referrals); kept so that the code of an earlier release, after a downgrade, numbers on
    where it stopped.
    """

    __tablename__ = "reference_counter"

    year: int = Field(sa_column=Column(Integer(), primary_key=True, autoincrement=False))
    last: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
