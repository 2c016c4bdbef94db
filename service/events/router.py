"""HTTP surface of the event feed and webhook subscriptions: parse, call, shape."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status

from service import errors
from service.auth.dependencies import Context, Reader, WebhookManager
from service.events import service
from service.events.schemas import (
    DeliveryPage,
    DeliveryRead,
    DeliveryStatus,
    EventPage,
    Requeued,
    SecretRotated,
    SecretRotation,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
)
from service.i18n import msg
from service.openapi_docs import problems

events_router = APIRouter(prefix="/v1/events", tags=["events"])
webhooks_router = APIRouter(prefix="/v1/webhook-subscriptions", tags=["webhooks"])

SubscriptionId = Annotated[
    uuid.UUID, Path(description="The subscription's `id` (a UUID), as created")
]
DeliveryId = Annotated[
    uuid.UUID, Path(description="The delivery's `id` (a UUID), its `webhook-id`")
]

_NO_SUBSCRIPTION = errors.NotFound(
    msg("No webhook subscription with this id belongs to your agency.")
)
_SUBSCRIPTION_ERRORS = problems(401, 403, 404, 422, examples={404: _NO_SUBSCRIPTION})
# A retry is refused (409) while the subscription is disabled.
_RETRY_ERRORS = problems(
    401, 403, 404, 409, 422,
    examples={
        404: _NO_SUBSCRIPTION,
        409: errors.Conflict(
            msg("The subscription is disabled; create a new one for a working receiver.")
        )
    },
)


@events_router.get(
    "",
    response_model=EventPage,
    summary="Read the caller agency's event feed",
    description=(
        "Changes of the referrals the caller's agency sends or receives, in commit order: "
        "`referral.created`, `referral.assessed`, `referral.served`, "
        "`referral.service_recorded`, `referral.closed`, `referral.note_added`, "
        "`referral.consent_withdrawn`. Items carry no personal data; read the referral for "
        "its content. Start without `after`, then pass `next_cursor` back as `after`: an event "
        "that commits late is never skipped. An empty page returns the same cursor; poll again. "
        "An empty `after` is the same as none."
    ),
    responses=problems(401, 403, 422),
)
def list_events(
    ctx: Context,
    principal: Reader,
    response: Response,
    after: Annotated[
        str | None,
        Query(
            max_length=32,
            description="Opaque: the `next_cursor` of the previous page; left out (or empty) "
            "to start from the first event",
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=500, description="Most events on one page (1 to 500)")
    ] = 100,
) -> EventPage:
    """Read the event feed."""
    response.headers["Cache-Control"] = "no-store"
    return service.list_events(ctx, principal, after=after, limit=limit)


@webhooks_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionCreated,
    summary="Subscribe to events by webhook",
    description=(
        "Events of the chosen types, of referrals the caller's agency is a party to, are "
        "POSTed to `url`, signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, "
        "`webhook-signature`). The signing `secret` is shown only in this answer. The URL must "
        "use https in production and may not point to a loopback, private or link-local "
        "address (checked now and again before every delivery)."
    ),
    responses=problems(401, 403, 422),
)
def create_webhook_subscription(
    body: SubscriptionCreate, ctx: Context, principal: WebhookManager, response: Response
) -> SubscriptionCreated:
    """Create a webhook subscription."""
    response.headers["Cache-Control"] = "no-store"
    return service.create_subscription(ctx, principal, body)


@webhooks_router.get(
    "",
    response_model=list[SubscriptionRead],
    summary="List the caller agency's webhook subscriptions",
    description="Every subscription owned by the caller's agency, oldest first; no secrets.",
    responses=problems(401, 403),
)
def list_webhook_subscriptions(ctx: Context, principal: WebhookManager) -> list[SubscriptionRead]:
    """List webhook subscriptions."""
    return service.list_subscriptions(ctx, principal)


@webhooks_router.get(
    "/{subscription_id}",
    response_model=SubscriptionRead,
    summary="Read a webhook subscription",
    description="One subscription of the caller's agency (404 for any other); no secret.",
    responses=_SUBSCRIPTION_ERRORS,
)
def get_webhook_subscription(
    subscription_id: SubscriptionId, ctx: Context, principal: WebhookManager
) -> SubscriptionRead:
    """Read a webhook subscription."""
    return service.get_subscription(ctx, principal, subscription_id)


@webhooks_router.delete(
    "/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook subscription",
    description="Stops deliveries at once; pending deliveries and their history are dropped.",
    responses=_SUBSCRIPTION_ERRORS,
)
def delete_webhook_subscription(
    subscription_id: SubscriptionId, ctx: Context, principal: WebhookManager
) -> Response:
    """Delete a webhook subscription."""
    service.delete_subscription(ctx, principal, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@webhooks_router.post(
    "/{subscription_id}/rotate-secret",
    response_model=SecretRotated,
    summary="Rotate a subscription's signing secret",
    description=(
        "Issues a new secret (shown only in this answer). For `overlap_seconds` (default a "
        "day) every delivery carries two signatures, one per secret, so the receiver can "
        "switch without losing a message."
    ),
    responses=_SUBSCRIPTION_ERRORS,
)
def rotate_webhook_secret(
    subscription_id: SubscriptionId,
    ctx: Context,
    principal: WebhookManager,
    response: Response,
    body: SecretRotation | None = None,
) -> SecretRotated:
    """Rotate a webhook secret."""
    response.headers["Cache-Control"] = "no-store"
    return service.rotate_secret(ctx, principal, subscription_id, body or SecretRotation())


@webhooks_router.get(
    "/{subscription_id}/deliveries",
    response_model=DeliveryPage,
    summary="List a subscription's deliveries and their attempts",
    description=(
        "Each event owed to the subscription, newest first, with every HTTP attempt. A "
        "delivery's `id` is the `webhook-id` header of all its attempts. `pending` deliveries "
        "are retried with exponential backoff; after the last attempt they are `dead`."
    ),
    responses=_SUBSCRIPTION_ERRORS,
)
def list_webhook_deliveries(
    subscription_id: SubscriptionId,
    ctx: Context,
    principal: WebhookManager,
    status: Annotated[
        DeliveryStatus | None, Query(description="Only deliveries in this state")
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=200, description="Most deliveries on one page (1 to 200)")
    ] = 50,
    cursor: Annotated[
        str | None,
        Query(
            max_length=32,
            description="Opaque: the `next_cursor` of the previous page; left out for the first",
        ),
    ] = None,
) -> DeliveryPage:
    """List webhook deliveries."""
    return service.list_deliveries(
        ctx, principal, subscription_id, limit=limit, cursor=cursor, status=status
    )


@webhooks_router.post(
    "/{subscription_id}/deliveries/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Requeued,
    summary="Deliver every dead delivery again",
    description=(
        "After a receiver was down longer than the retry schedule: queues every `dead` "
        "delivery of the subscription for an immediate new attempt (same `webhook-id`s, a "
        "fresh number of attempts). 409 while the subscription is disabled."
    ),
    responses=_RETRY_ERRORS,
)
def retry_dead_webhook_deliveries(
    subscription_id: SubscriptionId, ctx: Context, principal: WebhookManager
) -> Requeued:
    """Retry every dead webhook delivery."""
    return service.retry_dead_deliveries(ctx, principal, subscription_id)


@webhooks_router.post(
    "/{subscription_id}/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRead,
    summary="Deliver again",
    description=(
        "Queues the delivery for an immediate new attempt with the same `webhook-id` (also "
        "after it was delivered or went dead), with a fresh number of attempts. 409 while "
        "the subscription is disabled."
    ),
    responses=_RETRY_ERRORS,
)
def retry_webhook_delivery(
    subscription_id: SubscriptionId,
    delivery_id: DeliveryId,
    ctx: Context,
    principal: WebhookManager,
) -> DeliveryRead:
    """Retry a webhook delivery."""
    return service.retry_delivery(ctx, principal, subscription_id, delivery_id)
