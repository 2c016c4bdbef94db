"""Request and response shapes of the event feed and webhook subscriptions."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.inputs import Input
from service.referrals.workflow import EVENT_TYPES
from service.taxonomy.fields import agency_field
from service.times import Instant

# Built from the transition table, the one list of event names; mypy takes a Literal of
# literals only, so it sees Any here (pydantic still checks the values).
EventType = Literal[EVENT_TYPES]  # type: ignore[valid-type]
DeliveryStatus = Literal["pending", "delivered", "dead"]


class EventRead(BaseModel):
    """One change of a referral. Thin on purpose: never any personal data; read the
    referral itself for its content."""

    id: uuid.UUID = Field(description="Unique id of the event")
    type: EventType = Field(description="What changed", examples=["referral.assessed"])
    occurred_at: Instant = Field(description="When the change was committed")
    referral_id: uuid.UUID = Field(description="The referral that changed")
    reference: str = Field(
        description="The referral's human-readable reference", examples=["RJK-2026-7K3QX9MD"]
    )
    status: str = Field(description="The referral's status after the change", examples=["assessed"])
    from_agency: str = agency_field("The referral's sending agency.", examples=["LPSK"])
    to_agency: str = agency_field("The referral's receiving agency.", examples=["KEMENSOS"])


class EventPage(BaseModel):
    """Events in commit order. Pass `next_cursor` back as `after` to read on; it is given
    even when the page is empty, so a client can keep polling from where it stopped."""

    items: list[EventRead] = Field(description="The events of this page, oldest first")
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
    description: str | None = Field(
        default=None, max_length=200, description="A label for the caller's own use"
    )


class SubscriptionRead(BaseModel):
    """A webhook subscription; its secret is shown only when created or rotated."""

    id: uuid.UUID = Field(description="The subscription's id")
    url: str = Field(description="Where events are POSTed")
    event_types: list[str] = Field(description="The event types delivered")
    description: str | None = Field(default=None, description="The caller's label, if any")
    active: bool = Field(description="False once disabled (the receiver answered 410 Gone)")
    disabled_reason: str | None = Field(
        default=None, description="Why the subscription was disabled; null while active"
    )
    disabled_at: Instant | None = Field(
        default=None, description="When the subscription was disabled; null while active"
    )
    previous_secret_expires_at: Instant | None = Field(
        default=None, description="Until then the previous secret signs too (after a rotation)"
    )
    created_at: Instant = Field(description="When the subscription was created")
    updated_at: Instant = Field(description="When the subscription last changed")


class SubscriptionCreated(SubscriptionRead):
    """The new subscription with its signing secret, shown this once."""

    secret: str = Field(
        description="Standard Webhooks signing secret (`whsec_` + base64 of 32 random bytes)"
    )


class SecretRotation(Input):
    """How long the previous secret keeps signing beside the new one."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"overlap_seconds": 86400}]})

    overlap_seconds: int = Field(
        default=24 * 3600,
        ge=0,
        le=7 * 24 * 3600,
        description="Seconds the previous secret keeps signing beside the new one (0 to 7 days; "
        "0 retires it at once)",
    )


class SecretRotated(BaseModel):
    """The new signing secret, shown this once."""

    secret: str = Field(
        description="The new Standard Webhooks signing secret (`whsec_` + base64 of 32 random "
        "bytes)"
    )
    previous_secret_expires_at: Instant | None = Field(
        description="Until then the previous secret signs too; null when it was retired at once"
    )


class AttemptRead(BaseModel):
    """One HTTP attempt of a delivery."""

    number: int = Field(description="The attempt's number within the delivery, from 1")
    started_at: Instant = Field(description="When the request was sent")
    duration_ms: int = Field(description="Milliseconds until the answer or the failure")
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered")
    error: str | None = Field(description="Why no acceptable answer came (timeout, refused...)")


class DeliveryRead(BaseModel):
    """One event owed to a subscription; `id` is the `webhook-id` of every attempt."""

    id: uuid.UUID = Field(description="The delivery's id, sent as `webhook-id`")
    event_id: uuid.UUID = Field(description="The event delivered (`id` in the event feed)")
    event_type: str = Field(description="The event's type", examples=["referral.created"])
    status: DeliveryStatus = Field(
        description="`pending` (being tried), `delivered` (a 2xx answer) or `dead` (every "
        "attempt failed)"
    )
    attempts: list[AttemptRead] = Field(description="Every attempt so far, oldest first")
    next_attempt_at: Instant | None = Field(description="When a pending delivery is tried next")
    last_status_code: int | None = Field(
        default=None, description="The receiver's HTTP status at the last attempt, if it answered"
    )
    last_error: str | None = Field(
        default=None, description="Why the last attempt failed, if it did"
    )
    delivered_at: Instant | None = Field(
        default=None, description="When the receiver accepted it; null until then"
    )
    created_at: Instant = Field(description="When the delivery was queued")


class DeliveryPage(BaseModel):
    """Deliveries, newest event first; pass `next_cursor` back as `cursor`."""

    items: list[DeliveryRead] = Field(description="The deliveries of this page, newest event first")
    next_cursor: str | None = Field(
        default=None,
        description="Opaque; pass it as `cursor` for the next page. Null on the last page",
    )


class Requeued(BaseModel):
    """How many dead deliveries were queued again."""

    queued: int = Field(description="The number of dead deliveries queued for a new attempt")
