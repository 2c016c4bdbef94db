"""Response shapes of the statistics."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from service.taxonomy.models import DEFAULT_TIME_ZONE
from service.times import Instant


class StepTime(BaseModel):
    """How long one step of the workflow took, over the referrals that went through it."""

    step: Literal["referred_to_assessed", "assessed_to_served", "served_to_closed"]
    count: int = Field(description="Referrals that completed this step")
    median_hours: float | None = Field(description="Median, linear interpolation; null if none")
    p90_hours: float | None = Field(description="90th percentile, linear interpolation")


class SuccessRate(BaseModel):
    """The share of closed referrals that closed `completed`."""

    completed: int
    closed: int = Field(description="Denominator: referrals closed with any outcome")
    rate: float | None = Field(description="completed / closed; null when none is closed")


class Overdue(BaseModel):
    """Open referrals past the deadline of their current step, now."""

    total: int
    by_status: dict[str, int]


class Stats(BaseModel):
    """Figures over the referrals an agency sent or received, made in a period."""

    agency: str | None = Field(description="The agency, or null for every agency (operators)")
    direction: Literal["incoming", "outgoing"] | None
    from_: dt.date | None = Field(
        alias="from", description="First day included, in the agency's time zone (`time_zone`)"
    )
    to: dt.date | None = Field(
        description="Last day included, in the agency's time zone (`time_zone`)"
    )
    time_zone: str = Field(
        default=DEFAULT_TIME_ZONE,
        description=(
            "IANA time zone the days are counted in: the agency's own (see GET /v1/agencies)"
        ),
        examples=["Asia/Jakarta"],
    )
    generated_at: Instant
    total: int
    by_status: dict[str, int]
    by_urgency: dict[str, int]
    by_outcome: dict[str, int]
    by_group: dict[str, int] = Field(
        description="12-PAS and KemenHAM groups; a referral counts once under each of its groups"
    )
    by_case_type: dict[str, int]
    step_times: list[StepTime]
    successful_referral_rate: SuccessRate
    overdue: Overdue

    model_config = {"populate_by_name": True}
