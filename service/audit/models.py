"""The append-only, hash-chained audit trail."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Column, Index, Integer, String, Text, Uuid
from sqlmodel import Field, SQLModel

from service.db.types import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    """Who did what to which referral, when; `hash` covers the previous entry's hash.

    `hash` is an HMAC under the audit key named by `key_id` (NULL for entries written before
    the chain was keyed, whose hash is plain SHA-256). `agency_seq` numbers the entries of
    each agency from 1 (NULL for system entries): the `id` an agency sees in `GET /v1/audit`.
    """

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_agency_seq", "agency", "agency_seq", unique=True),
        Index("ix_audit_entry_referral", "referral_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer(), primary_key=True))
    occurred_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    agency: str | None = Field(default=None, sa_column=Column(String(32)))
    client_id: str | None = Field(default=None, sa_column=Column(String(64)))
    action: str = Field(sa_column=Column(String(64), nullable=False))
    referral_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid()))
    request_id: str | None = Field(default=None, sa_column=Column(String(64)))
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON(), nullable=False))
    detail_sealed: str | None = Field(default=None, sa_column=Column(Text()))
    prev_hash: str = Field(sa_column=Column(String(64), nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    key_id: str | None = Field(default=None, sa_column=Column(String(32)))
    agency_seq: int | None = Field(default=None, sa_column=Column(Integer()))
