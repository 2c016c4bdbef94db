"""The event feed and webhook subscriptions: one transaction per action, no FastAPI."""

from __future__ import annotations

import base64
import datetime as dt
import re
import secrets
import uuid
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from service import cursors, errors
from service.auth.principal import Principal
from service.context import ServiceContext
from service.db.types import utcnow
from service.events import repository as repo
from service.events import urlguard
from service.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from service.events.schemas import (
    AttemptRead,
    DeliveryPage,
    DeliveryRead,
    EventPage,
    EventRead,
    Requeued,
    SecretRotated,
    SecretRotation,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionRead,
)
from service.i18n import join, msg

if TYPE_CHECKING:
    from service.db.writes import Writes

SECRET_BYTES = 32


# Cursors handed out by earlier releases: the plain event number.
_NUMERIC_CURSOR = re.compile(r"[0-9]{1,18}")


def encode_position(ctx: ServiceContext, seq: int, *scope: str) -> str:
    """An event number as an opaque cursor bound to `scope` (whose cursor it is)."""
    return cursors.encode_sealed(ctx.keyring.index_key, seq, scope)


def _decode_position(
    ctx: ServiceContext, session: Session, value: str | None, name: str, *scope: str
) -> int | None:
    # Empty counts as absent: a client that keeps "no cursor yet" as "" means "from the start".
    if not value:
        return None
    if _NUMERIC_CURSOR.fullmatch(value):
        # An earlier release's cursor, taken only up to the last number it could have
        # handed out: past that, trying numbers would count other agencies' events.
        seq = int(value)
        if seq > repo.legacy_cursor_limit(session):
            raise cursors.invalid(name)
        return seq
    return cursors.decode_sealed(ctx.keyring.index_key, value, scope, name)


def _feed_scope(principal: Principal) -> tuple[str, ...]:
    return ("events", principal.agency)


def event_read(event: Event) -> EventRead:
    """The thin, personal-data-free form of an event (feed item and webhook data)."""
    # EventRead names exactly the columns it shows, so the sealed-free row maps onto it.
    return EventRead.model_validate(event, from_attributes=True)


def list_events(
    ctx: ServiceContext, principal: Principal, *, after: str | None, limit: int
) -> EventPage:
    """The caller agency's events after the cursor, in commit order."""
    scope = _feed_scope(principal)
    with ctx.db.reader() as session:
        start = _decode_position(ctx, session, after, "after", *scope) or 0
        rows = repo.events_page(session, principal.agency, start, limit + 1)
    page, more = rows[:limit], len(rows) > limit
    return EventPage(
        items=[event_read(e) for e in page],
        next_cursor=encode_position(ctx, page[-1].seq if page else start, *scope),
        has_more=more,
    )


# ---- subscriptions --------------------------------------------------------------------------


def new_secret() -> str:
    """A Standard Webhooks signing secret: `whsec_` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_context(subscription_id: uuid.UUID, which: str = "secret") -> str:
    """Where a subscription's secret is sealed (binds the ciphertext to its row)."""
    return f"webhook:{subscription_id}:{which}"


def check_url(ctx: ServiceContext, url: str) -> urlguard.Target:
    """The SSRF guard with this deployment's rules (https in prod; private per setting)."""
    return urlguard.target(
        url,
        https_only=not ctx.settings.is_dev,
        allow_private=ctx.settings.allow_private_webhooks,
    )


def _read(row: WebhookSubscription) -> SubscriptionRead:
    # Only the fields SubscriptionRead names are read: the sealed secrets are not among them.
    return SubscriptionRead.model_validate(row, from_attributes=True)


def create_subscription(
    ctx: ServiceContext, principal: Principal, body: SubscriptionCreate
) -> SubscriptionCreated:
    """Subscribe the caller's agency; the secret is returned this once."""
    try:
        check_url(ctx, body.url)
    except urlguard.UrlRefused as exc:
        raise errors.ValidationFailed(
            join(": ", ["url", exc.message]),
            [{"loc": ["body", "url"], "msg": exc.message, "type": "value_error"}],
        ) from exc
    secret = new_secret()
    now = utcnow()
    row = WebhookSubscription(
        agency=principal.agency,
        url=body.url,
        event_types=sorted(set(body.event_types)),
        description=body.description,
        secret_sealed="",
        created_by_client=principal.client_id,
        created_at=now,
        updated_at=now,
    )
    row.secret_sealed = ctx.keyring.seal(secret, secret_context(row.id))

    def store(w: Writes) -> None:
        w.session.add(row)
        w.append_audit(
            action="webhook_subscription.create",
            agency=principal.agency,
            client_id=principal.client_id,
            detail={"subscription_id": str(row.id), "event_types": row.event_types},
        )

    ctx.db.write(store)
    return SubscriptionCreated(**_read(row).model_dump(), secret=secret)


def list_subscriptions(ctx: ServiceContext, principal: Principal) -> list[SubscriptionRead]:
    """The caller agency's subscriptions."""
    with ctx.db.reader() as session:
        return [_read(r) for r in repo.subscriptions_of(session, principal.agency)]


def _owned(
    session: Session, principal: Principal, subscription_id: uuid.UUID, *, for_update: bool = False
) -> WebhookSubscription:
    row = repo.subscription_of(session, principal.agency, subscription_id, for_update=for_update)
    if row is None:
        raise errors.NotFound(
            msg("No webhook subscription with this id belongs to your agency.")
        )
    return row


def _owned_for_update(w: Writes, principal: Principal, subscription_id: uuid.UUID) -> Any:
    """`_owned`, row-locked, after the audit append lock.

    An action's event writes its deliveries under that lock, and each delivery's foreign
    key waits for a subscription row locked for update. Locked the other way round (the
    row, then the append lock at commit), a delete or a secret rotation and an action
    would each wait for the other, and PostgreSQL would end one of them as a deadlock.
    """
    w.hold_append_lock()
    return _owned(w.session, principal, subscription_id, for_update=True)


def get_subscription(
    ctx: ServiceContext, principal: Principal, subscription_id: uuid.UUID
) -> SubscriptionRead:
    """One subscription of the caller's agency."""
    with ctx.db.reader() as session:
        return _read(_owned(session, principal, subscription_id))


def delete_subscription(
    ctx: ServiceContext, principal: Principal, subscription_id: uuid.UUID
) -> None:
    """Unsubscribe: nothing more is sent, pending deliveries are dropped."""

    def delete(w: Writes) -> None:
        _owned_for_update(w, principal, subscription_id)
        repo.delete_subscription(w.session, subscription_id)
        w.append_audit(
            action="webhook_subscription.delete",
            agency=principal.agency,
            client_id=principal.client_id,
            detail={"subscription_id": str(subscription_id)},
        )

    ctx.db.write(delete)


def rotate_secret(
    ctx: ServiceContext, principal: Principal, subscription_id: uuid.UUID, body: SecretRotation
) -> SecretRotated:
    """Give the subscription a new secret; the old one keeps signing during the overlap."""
    secret = new_secret()
    now = utcnow()

    def rotate(w: Writes) -> dt.datetime | None:
        row = _owned_for_update(w, principal, subscription_id)
        current = ctx.keyring.open(row.secret_sealed, secret_context(row.id))
        expires = now + dt.timedelta(seconds=body.overlap_seconds) if body.overlap_seconds else None
        repo.update_subscription(
            w.session,
            row.id,
            secret_sealed=ctx.keyring.seal(secret, secret_context(row.id)),
            previous_secret_sealed=(
                ctx.keyring.seal(current, secret_context(row.id, "previous")) if expires else None
            ),
            previous_secret_expires_at=expires,
            updated_at=now,
        )
        w.append_audit(
            action="webhook_subscription.rotate_secret",
            agency=principal.agency,
            client_id=principal.client_id,
            detail={"subscription_id": str(row.id), "overlap_seconds": body.overlap_seconds},
        )
        return expires

    expires = ctx.db.write(rotate)
    return SecretRotated(secret=secret, previous_secret_expires_at=expires)


def signing_secrets(ctx: ServiceContext, row: WebhookSubscription, now: dt.datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during an overlap."""
    found = [ctx.keyring.open(row.secret_sealed, secret_context(row.id))]
    if (
        row.previous_secret_sealed
        and row.previous_secret_expires_at
        and row.previous_secret_expires_at > now
    ):
        previous = secret_context(row.id, "previous")
        found.append(ctx.keyring.open(row.previous_secret_sealed, previous))
    return found


# ---- deliveries -----------------------------------------------------------------------------


def list_deliveries(
    ctx: ServiceContext,
    principal: Principal,
    subscription_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
    status: str | None,
) -> DeliveryPage:
    """Deliveries of one of the caller's subscriptions with their attempts, newest first."""
    scope = ("deliveries", str(subscription_id))
    with ctx.db.reader() as session:
        _owned(session, principal, subscription_id)
        before = _decode_position(ctx, session, cursor, "cursor", *scope)
        rows = repo.deliveries_page(
            session, subscription_id, before=before, limit=limit + 1, status=status
        )
        page, more = rows[:limit], len(rows) > limit
        events = repo.events_by_seq(session, [d.event_seq for d in page])
        attempts = repo.attempts_of(session, [d.id for d in page])
    return DeliveryPage(
        items=[_delivery_read(d, events[d.event_seq], attempts[d.id]) for d in page],
        next_cursor=encode_position(ctx, page[-1].event_seq, *scope) if more else None,
    )


def _delivery_read(
    row: WebhookDelivery, event: Event, attempts: list[WebhookAttempt]
) -> DeliveryRead:
    return DeliveryRead(
        id=row.id,
        event_id=event.id,
        event_type=event.type,
        status=row.status,
        attempts=[AttemptRead.model_validate(a, from_attributes=True) for a in attempts],
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


def retry_delivery(
    ctx: ServiceContext, principal: Principal, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryRead:
    """Send a delivery again as soon as possible (same webhook-id), with a fresh set of
    attempts; refused while the subscription is disabled."""
    now = utcnow()

    def retry(w: Writes) -> DeliveryRead:
        session = w.session
        sub = _owned(session, principal, subscription_id, for_update=True)
        row = repo.delivery_of(session, subscription_id, delivery_id)
        if row is None:
            raise errors.NotFound(msg("No delivery with this id belongs to this subscription."))
        if not sub.active:
            raise errors.Conflict(
                msg("The subscription is disabled; create a new one for a working receiver.")
            )
        row.status = "pending"
        row.failures = 0
        row.next_attempt_at = now
        row.updated_at = now
        session.flush()
        event = repo.events_by_seq(session, [row.event_seq])[row.event_seq]
        attempts = repo.attempts_of(session, [row.id])[row.id]
        return _delivery_read(row, event, attempts)

    return ctx.db.write(retry)


def retry_dead_deliveries(
    ctx: ServiceContext, principal: Principal, subscription_id: uuid.UUID
) -> Requeued:
    """Queue every dead delivery of a subscription again (after a long receiver outage)."""

    def requeue(w: Writes) -> int:
        sub = _owned(w.session, principal, subscription_id, for_update=True)
        if not sub.active:
            raise errors.Conflict(
                msg("The subscription is disabled; create a new one for a working receiver.")
            )
        return repo.requeue_dead(w.session, subscription_id, utcnow())

    return Requeued(queued=ctx.db.write(requeue))
