"""API clients (OAuth2 client credentials)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from service.db.types import UTCDateTime, new_id, utcnow


class ApiClient(SQLModel, table=True):
    """An agency system allowed to obtain tokens; the secret is kept only as a keyed hash."""

    __tablename__ = "api_client"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    client_id: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    agency: str = Field(
        sa_column=Column(String(32), ForeignKey("agency.code"), nullable=False, index=True)
    )
    scopes: str = Field(sa_column=Column(String(500), nullable=False))
    secret_hash: str = Field(sa_column=Column(String(255), nullable=False))
    active: bool = Field(default=True, nullable=False)
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    secret_changed_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False)
    )
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
