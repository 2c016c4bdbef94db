"""Reference data: agencies and taxonomy terms."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from service.columns import utc_now

# WIB; the agencies in WITA and WIT are `Asia/Makassar` and `Asia/Jayapura`.
DEFAULT_TIME_ZONE = "Asia/Jakarta"

# Each kind of code, and the list of `GET /v1/taxonomy` that carries it.
TAXONOMY_LISTS = {
    "group": "groups",
    "kemenham_group": "kemenham_groups",
    "case_type": "case_types",
    "service_type": "service_types",
    "service_unit": "service_units",
    "outcome": "outcomes",
    "decline_reason": "decline_reasons",
    "consent_purpose": "consent_purposes",
}
TERM_KINDS = tuple(TAXONOMY_LISTS)
# ATENSI: every service type is in one phase; rehabilitation comes before empowerment.
PHASES = ("rehabilitation", "empowerment")


class Agency(SQLModel, table=True):
    """A government body that sends and receives referrals."""

    __tablename__ = "agency"

    code: str = Field(sa_column=Column(String(32), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    name_en: str | None = Field(default=None, sa_column=Column(String(200)))
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
    # Indonesian name; English name.
    name: str = Field(sa_column=Column(String(200), nullable=False))
    name_en: str | None = Field(default=None, sa_column=Column(String(200)))
    # English description; Indonesian description.
    description: str | None = Field(default=None, sa_column=Column(String(1000)))
    description_id: str | None = Field(default=None, sa_column=Column(String(1000)))
    phase: str | None = Field(default=None, sa_column=Column(String(16)))
    agency: str | None = Field(
        default=None, sa_column=Column(String(32), ForeignKey("agency.code"))
    )
    approach: str | None = Field(default=None, sa_column=Column(String(16)))
    region: str | None = Field(default=None, sa_column=Column(String(100)))
    active: bool = Field(default=True, nullable=False)
