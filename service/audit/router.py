"""GET /v1/audit: the caller agency's own audit entries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from service.audit import service
from service.audit.schemas import AuditPage
from service.auth.dependencies import Auditor, Context
from service.openapi_docs import problems
from service.paging import PageCursor

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get(
    "",
    response_model=AuditPage,
    summary="List the caller agency's audit entries",
    description=(
        "Entries of the tamper-evident audit trail written by the caller's own agency, newest "
        "first; another agency's entries never appear, and nothing shown counts them: `id` "
        "numbers the agency's own entries from 1, and `prev_hash` is the `hash` of the "
        "agency's own previous entry, so its entries link up page after page. Filter by "
        "`referral_id`. Sealed detail (such as the reason given for revealing a protected "
        "identity) is never returned. Pages are keyset-based: pass `next_cursor` back as "
        "`cursor`."
    ),
    responses=problems(401, 403, 422),
)
def list_audit_entries(
    ctx: Context,
    principal: Auditor,
    response: Response,
    referral_id: Annotated[
        uuid.UUID | None, Query(description="Only entries about this referral (its `id`)")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=200, description="Most entries on one page (1 to 200)")
    ] = 50,
    cursor: PageCursor = None,
) -> AuditPage:
    """List audit entries."""
    response.headers["Cache-Control"] = "no-store"
    return service.list_entries(ctx, principal, limit=limit, cursor=cursor, referral_id=referral_id)
