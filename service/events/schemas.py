"""Request and response shapes of the event feed and webhook subscriptions."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.inputs import Input
from service.referrals.workflow import EVENT_TYPES
from service.times import Instant

# Built from the transition table, the one list of event names; mypy takes a Literal of
# literals only, so it sees Any here (pydantic still checks the values).
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
DeliveryStatus = Literal["pending", "delivered", "dead"]


class EventRead(BaseModel):
    """One change of a referral. Thin on purpose: never any personal data; read the
    referral itself for its content."""

    id: uuid.UUID = Field(description="Unique id of the event")
    type: EventType = Field(examples=["referral.assessed"])
    occurred_at: Instant
    referral_id: uuid.UUID
    reference: str = Field(examples=["RJK-2026-7K3QX9MD"])
    status: str = Field(description="The referral's status after the change", examples=["assessed"])
    from_agency: str = Field(examples=["LPSK"])
    to_agency: str = Field(examples=["KEMENSOS"])


class EventPage(BaseModel):
    """Events in commit order. Pass `next_cursor` back as `after` to read on; it is given
    even when the page is empty, so a client can keep polling from where it stopped."""

    items: list[EventRead]
    next_cursor: str = Field(description="Opaque position after the last item of this page")
    has_more: bool = Field(description="More events are already available after this page")


class SubscriptionCreate(Input):
    """A new webhook subscription of the caller's agency."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.go.id/rujukan",
                    "event_types": ["referral.created", "referral.closed"],
                    "description": "Case system of the LPSK regional office",
                }
            ]
        },
    )

    url: str = Field(
        min_length=1,
        max_length=2000,
        description="Where events are POSTed; https in production, never a private address",
        examples=["https://hooks.example.go.id/rujukan"],
    )
    event_types: list[EventType] = Field(
        min_length=1,
        description="The event types to deliver",
        examples=[["referral.created", "referral.closed"]],
    )
    description: str | None = Field(default=None, max_length=200)


class SubscriptionRead(BaseModel):
    """A webhook subscription; its secret is shown only when created or rotated."""

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None = None
    active: bool = Field(description="False once disabled (the receiver answered 410 Gone)")
    disabled_reason: str | None = None
    disabled_at: Instant | None = None
    previous_secret_expires_at: Instant | None = Field(
        default=None, description="Until then the previous secret signs too (after a rotation)"
    )
    created_at: Instant
    updated_at: Instant


class SubscriptionCreated(SubscriptionRead):
    """The new subscription with its signing secret, shown this once."""

    secret: str = Field(
        description="Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes)"
    )


class SecretRotation(Input):
    """How long the previous secret keeps signing beside the new one."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"overlap_seconds": 86400}]})

    overlap_seconds: int = Field(default=24 * 3600, ge=0, le=7 * 24 * 3600)


class SecretRotated(BaseModel):
    """The new signing secret, shown this once."""

    secret: str
    previous_secret_expires_at: Instant | None


class AttemptRead(BaseModel):
    """One HTTP attempt of a delivery."""

    number: int
    started_at: Instant
    duration_ms: int
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered")
    error: str | None = Field(description="Why no acceptable answer came (timeout, refused...)")


class DeliveryRead(BaseModel):
    """One event owed to a subscription; `id` is the `webhook-id` of every attempt."""

    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    status: DeliveryStatus
    attempts: list[AttemptRead]
    next_attempt_at: Instant | None = Field(description="When a pending delivery is tried next")
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: Instant | None = None
    created_at: Instant


class DeliveryPage(BaseModel):
    """Deliveries, newest event first; pass `next_cursor` back as `cursor`."""

    items: list[DeliveryRead]
    next_cursor: str | None = None


class Requeued(BaseModel):
    """How many dead deliveries were queued again."""

    queued: int
