"""Response shapes of the audit API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field


class AuditEntryRead(BaseModel):
    """One audit entry; sealed detail (such as a reveal reason) never leaves the service."""

    id: int = Field(description="Position in the chain, from 1")
    occurred_at: dt.datetime
    client_id: str | None = Field(description="The API client that acted")
    action: str = Field(examples=["referral.assess"])
    referral_id: uuid.UUID | None = None
    request_id: str | None = Field(description="X-Request-ID of the request that wrote it")
    detail: dict[str, Any] = Field(description="What the action changed, without personal data")
    hash: str = Field(description="SHA-256 over prev_hash and the entry's canonical content")
    prev_hash: str = Field(description="hash of the entry before it (64 zeros for the first)")


class AuditPage(BaseModel):
    """One page of audit entries, newest first; pass `next_cursor` back as `cursor`."""

    items: list[AuditEntryRead]
    next_cursor: str | None = None
