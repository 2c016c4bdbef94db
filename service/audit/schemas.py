"""Response shapes of the audit API."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, Field

from service.times import Instant


class AuditEntryRead(BaseModel):
    """One audit entry; sealed detail (such as a reveal reason) never leaves the service."""

    id: int = Field(
        description="Position in the caller agency's own audit trail, from 1; entries of other "
        "agencies are not counted"
    )
    occurred_at: Instant
    client_id: str | None = Field(description="The API client that acted")
    action: str = Field(examples=["referral.assess"])
    referral_id: uuid.UUID | None = None
    request_id: str | None = Field(description="X-Request-ID of the request that wrote it")
    detail: dict[str, Any] = Field(description="What the action changed, without personal data")
    hash: str = Field(
        description="The entry's hash in the service's tamper-evident chain: an HMAC-SHA256 "
        "under a key only the service holds (entries written before the chain was keyed: "
        "SHA-256), opaque to API clients; `rujukan audit verify` checks it"
    )
    prev_hash: str = Field(
        description="`hash` of the caller agency's own previous entry (64 zeros for its first), "
        "so that its entries link up page after page"
    )


class AuditPage(BaseModel):
    """One page of audit entries, newest first; pass `next_cursor` back as `cursor`."""

    items: list[AuditEntryRead]
    next_cursor: str | None = None
