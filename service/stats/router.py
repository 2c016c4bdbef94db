"""GET /v1/stats."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from service.auth.dependencies import Context, Reader
from service.inputs import Day
from service.openapi_docs import problems
from service.stats import service
from service.stats.schemas import Stats

router = APIRouter(prefix="/v1", tags=["statistics"])


@router.get(
    "/stats",
    response_model=Stats,
    response_model_by_alias=True,
    summary="Statistics of the caller's referrals",
    description=(
        "Figures over the referrals the caller's agency sent or received (`direction` narrows "
        "to one side), made from `from` to `to` (days in the caller agency's own time zone, "
        "`time_zone` in the answer and in GET /v1/agencies; both included; either may be "
        "left out): counts by status, urgency, outcome, group and case type; median and 90th "
        "percentile hours from referred to assessed, assessed to served and served to closed "
        "(from the referral history; percentiles interpolate linearly between ranks); the "
        "successful referral rate (closed `completed` over all closed); and how many open "
        "referrals are past the deadline of their current step now."
    ),
    responses=problems(401, 403, 422),
)
def get_stats(
    ctx: Context,
    principal: Reader,
    response: Response,
    from_: Annotated[Day | None, Query(alias="from")] = None,
    to: Day | None = None,
    direction: Literal["incoming", "outgoing"] | None = None,
) -> Stats:
    """Get statistics."""
    response.headers["Cache-Control"] = "no-store"
    return service.stats_for(ctx, principal, direction=direction, start=from_, end=to)
