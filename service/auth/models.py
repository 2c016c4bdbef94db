"""API clients (OAuth2 client credentials)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, ForeignKey, String
from sqlmodel import Field, SQLModel

from service.columns import utc_now
from service.db.types import UTCDateTime, new_id


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
    created_at: dt.datetime = utc_now()
    secret_changed_at: dt.datetime = utc_now()
    revoked_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
