"""Response shapes of the statistics."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

from service.taxonomy.fields import TAXONOMY_LINK, agency_field
from service.taxonomy.models import DEFAULT_TIME_ZONE
from service.times import Instant


class StepTime(BaseModel):
    """How long one step of the workflow took, over the referrals that went through it."""

    step: Literal["referred_to_assessed", "assessed_to_served", "served_to_closed"] = Field(
        description="The step: from referred to assessed, assessed to served, served to closed"
    )
    count: int = Field(description="Referrals that completed this step")
    median_hours: float | None = Field(description="Median, linear interpolation; null if none")
    p90_hours: float | None = Field(description="90th percentile, linear interpolation")


class SuccessRate(BaseModel):
    """The share of closed referrals that closed `completed`."""

    completed: int = Field(description="Referrals closed with outcome `completed`")
    closed: int = Field(description="Denominator: referrals closed with any outcome")
    rate: float | None = Field(description="completed / closed; null when none is closed")


class Overdue(BaseModel):
    """Open referrals past the deadline of their current step, now."""

    total: int = Field(description="Open referrals past their `due_at`")
    by_status: dict[str, int] = Field(
        description="The same, by the status they are stuck in (`referred`, `assessed`, `served`)"
    )


class Stats(BaseModel):
    """Figures over the referrals an agency sent or received, made in a period."""

    agency: str | None = agency_field(
        "The agency the figures are of, or null for every agency (operators)."
    )
    direction: Literal["incoming", "outgoing"] | None = Field(
        description="`incoming` (received), `outgoing` (sent), or null for both, as asked"
    )
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
    generated_at: Instant = Field(description="When the figures were computed")
    total: int = Field(description="Referrals made in the period")
    by_status: dict[str, int] = Field(description="The same referrals by their status now")
    by_urgency: dict[str, int] = Field(description="The same referrals by urgency")
    by_outcome: dict[str, int] = Field(
        description="The closed ones by outcome; keys are codes from the `outcomes` list of "
        f"{TAXONOMY_LINK}"
    )
    by_group: dict[str, int] = Field(
        description="12-PAS and KemenHAM groups; a referral counts once under each of its "
        "groups. Keys are codes from the `groups` and `kemenham_groups` lists of "
        f"{TAXONOMY_LINK}"
    )
    by_case_type: dict[str, int] = Field(
        description="The same referrals by case type, each counted under each of its case "
        f"types; keys are codes from the `case_types` list of {TAXONOMY_LINK}"
    )
    step_times: list[StepTime] = Field(description="How long each step of the workflow took")
    successful_referral_rate: SuccessRate = Field(
        description="The share of closed referrals that closed `completed`"
    )
    overdue: Overdue = Field(description="Open referrals past their deadline now")

    model_config = {"populate_by_name": True}
