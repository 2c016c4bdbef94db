"""The cooperation agreement table."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import JSON, CheckConstraint, Column, Date, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

from service.columns import utc_now, uuid_primary_key
from service.db.types import UTCDateTime

KINDS = ("MoU", "PKS")


class Agreement(SQLModel, table=True):
    """An MoU or PKS under which two agencies refer people to each other.

    The pair is stored sorted by code (in Python, not by a collation): an agreement binds both
    directions, and one order makes the lookup a single equality.
    """

    __tablename__ = "agreement"
    __table_args__ = (
        CheckConstraint("kind IN ('MoU', 'PKS')", name="ck_agreement_kind"),
        CheckConstraint("agency_a <> agency_b", name="ck_agreement_two_agencies"),
        CheckConstraint(
            "valid_until IS NULL OR valid_until >= valid_from", name="ck_agreement_validity"
        ),
        Index("ix_agreement_pair", "agency_a", "agency_b"),
    )

    id: uuid.UUID = uuid_primary_key()
    number: str = Field(sa_column=Column(String(100), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    agency_a: str = Field(sa_column=Column(String(32), ForeignKey("agency.code"), nullable=False))
    agency_b: str = Field(sa_column=Column(String(32), ForeignKey("agency.code"), nullable=False))
    valid_from: dt.date = Field(sa_column=Column(Date(), nullable=False))
    valid_until: dt.date | None = Field(default=None, sa_column=Column(Date()))
    # Empty means every group (or case type); otherwise only the codes listed.
    groups: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    case_types: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    created_at: dt.datetime = utc_now()
    ended_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
