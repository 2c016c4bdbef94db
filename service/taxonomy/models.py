"""Reference data: agencies and taxonomy terms."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from service.columns import utc_now

# WIB; the agencies in WITA and WIT are `Asia/Makassar` and `Asia/Jayapura`.
DEFAULT_TIME_ZONE = "Asia/Jakarta"

TERM_KINDS = (
    "group",
    "kemenham_group",
    "case_type",
    "service_type",
    "service_unit",
    "outcome",
    "decline_reason",
    "consent_purpose",
)


class Agency(SQLModel, table=True):
    """A government body that sends and receives referrals."""

    __tablename__ = "agency"

    code: str = Field(sa_column=Column(String(32), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    # IANA name; the agency's days (statistics, reports, agreements in force) are counted in it.
    time_zone: str = Field(
        default=DEFAULT_TIME_ZONE,
        sa_column=Column(String(64), nullable=False, server_default=DEFAULT_TIME_ZONE),
    )
    created_at: dt.datetime = utc_now()


class TaxonomyTerm(SQLModel, table=True):
    """One code of one kind of reference list (group, service type, Sentra, ...)."""

    __tablename__ = "taxonomy_term"

    kind: str = Field(sa_column=Column(String(32), primary_key=True))
    code: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(String(1000)))
    phase: str | None = Field(default=None, sa_column=Column(String(16)))
    agency: str | None = Field(
        default=None, sa_column=Column(String(32), ForeignKey("agency.code"))
    )
    approach: str | None = Field(default=None, sa_column=Column(String(16)))
    region: str | None = Field(default=None, sa_column=Column(String(100)))
    active: bool = Field(default=True, nullable=False)
