"""Every query of the event feed and the webhook outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from service.events.models import (
    Event,
    LegacyFeedCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from service.tables import table_of

_SUBSCRIPTION = table_of(WebhookSubscription)
_TARGETS = select(_SUBSCRIPTION.c.id, _SUBSCRIPTION.c.event_types).where(
    # Two plain parameters, not an expanding IN: its SQL would be rendered again every call.
    _SUBSCRIPTION.c.agency.in_([bindparam("agency_a"), bindparam("agency_b")]),
    _SUBSCRIPTION.c.active.is_(True),
)


def active_subscription_targets(session: Session, agencies: tuple[str, str]) -> list[Any]:
    """(id, event_types) of the active subscriptions owned by either of the two agencies."""
    params = {"agency_a": agencies[0], "agency_b": agencies[1]}
    return list(session.connection().execute(_TARGETS, params))


def events_page(session: Session, agency: str, after: int, limit: int) -> list[Event]:
    """Up to `limit` events of referrals `agency` is a party to, after `after`, oldest first."""
    return list(
        session.execute(
            select(Event)
            .where(
                col(Event.seq) > after,
                or_(col(Event.from_agency) == agency, col(Event.to_agency) == agency),
            )
            .order_by(col(Event.seq))
            .limit(limit)
        ).scalars()
    )


def legacy_cursor_limit(session: Session) -> int:
    """The highest event number a cursor of an earlier release can hold."""
    found = session.execute(select(func.max(col(LegacyFeedCursor.max_seq)))).scalar_one()
    return int(found or 0)


def events_by_seq(session: Session, seqs: Iterable[int]) -> dict[int, Event]:
    """Events by their number."""
    wanted = list(set(seqs))
    if not wanted:
        return {}
    rows = session.execute(select(Event).where(col(Event.seq).in_(wanted))).scalars()
    return {e.seq: e for e in rows}


# ---- subscriptions --------------------------------------------------------------------------


def subscription_of(
    session: Session, agency: str, subscription_id: uuid.UUID, *, for_update: bool = False
) -> WebhookSubscription | None:
    """The subscription if `agency` owns it."""
    query = select(WebhookSubscription).where(
        col(WebhookSubscription.id) == subscription_id, col(WebhookSubscription.agency) == agency
    )
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalars().first()


def subscriptions_of(session: Session, agency: str) -> list[WebhookSubscription]:
    """Every subscription `agency` owns, oldest first."""
    return list(
        session.execute(
            select(WebhookSubscription)
            .where(col(WebhookSubscription.agency) == agency)
            .order_by(col(WebhookSubscription.created_at), col(WebhookSubscription.id))
        ).scalars()
    )


def delete_subscription(session: Session, subscription_id: uuid.UUID) -> None:
    """Remove a subscription with its deliveries and their attempts."""
    deliveries = select(col(WebhookDelivery.id)).where(
        col(WebhookDelivery.subscription_id) == subscription_id
    )
    session.execute(
        table_of(WebhookAttempt).delete().where(col(WebhookAttempt.delivery_id).in_(deliveries))
    )
    session.execute(
        table_of(WebhookDelivery)
        .delete()
        .where(col(WebhookDelivery.subscription_id) == subscription_id)
    )
    session.execute(_SUBSCRIPTION.delete().where(_SUBSCRIPTION.c.id == subscription_id))


def update_subscription(session: Session, subscription_id: uuid.UUID, **values: Any) -> None:
    """Set columns of a subscription."""
    session.execute(
        update(WebhookSubscription)
        .where(col(WebhookSubscription.id) == subscription_id)
        .values(**values)
    )


# ---- deliveries -----------------------------------------------------------------------------


def deliveries_page(
    session: Session,
    subscription_id: uuid.UUID,
    *,
    before: int | None,
    limit: int,
    status: str | None,
) -> list[WebhookDelivery]:
    """Deliveries of a subscription, newest event first."""
    query = select(WebhookDelivery).where(col(WebhookDelivery.subscription_id) == subscription_id)
    if before is not None:
        query = query.where(col(WebhookDelivery.event_seq) < before)
    if status is not None:
        query = query.where(col(WebhookDelivery.status) == status)
    query = query.order_by(col(WebhookDelivery.event_seq).desc()).limit(limit)
    return list(session.execute(query).scalars())


def attempts_of(
    session: Session, delivery_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """The attempts of each delivery, oldest first."""
    ids = list(delivery_ids)
    found: dict[uuid.UUID, list[WebhookAttempt]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = session.execute(
        select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id).in_(ids))
        .order_by(col(WebhookAttempt.id))
    ).scalars()
    for attempt in rows:
        found[attempt.delivery_id].append(attempt)
    return found


def delivery_of(
    session: Session, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    """One delivery of a subscription."""
    return (
        session.execute(
            select(WebhookDelivery)
            .where(
                col(WebhookDelivery.id) == delivery_id,
                col(WebhookDelivery.subscription_id) == subscription_id,
            )
            .with_for_update()
        )
        .scalars()
        .first()
    )


def requeue_dead(session: Session, subscription_id: uuid.UUID, now: dt.datetime) -> int:
    """Queue every dead delivery of a subscription for an attempt now; how many."""
    result = session.exec(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.subscription_id) == subscription_id,
            col(WebhookDelivery.status) == "dead",
        )
        .values(status="pending", failures=0, next_attempt_at=now, updated_at=now)
    )
    return int(result.rowcount)


def settle_pending(
    session: Session, subscription_id: uuid.UUID, now: dt.datetime, reason: str
) -> int:
    """Mark every pending delivery of a subscription dead with `reason`; how many.

    Leases are dropped too, so a worker still sending one of them records only its attempt.
    """
    result = session.exec(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.subscription_id) == subscription_id,
            col(WebhookDelivery.status) == "pending",
        )
        .values(
            status="dead",
            last_error=reason,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)


def _due(now: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """A delivery that may be attempted now: pending, its time come, not leased to a worker."""
    return (
        col(WebhookDelivery.status) == "pending",
        col(WebhookDelivery.next_attempt_at) <= now,
        or_(
            col(WebhookDelivery.lease_expires_at).is_(None),
            col(WebhookDelivery.lease_expires_at) <= now,
        ),
    )


def any_due(session: Session, now: dt.datetime) -> bool:
    """True when some delivery could be claimed now (a cheap check before locking)."""
    return (
        session.execute(
            select(col(WebhookDelivery.id))
            .where(
                *_due(now),
            )
            .limit(1)
        ).first()
        is not None
    )


def claim_due(
    session: Session, now: dt.datetime, limit: int, owner: str, lease_until: dt.datetime
) -> list[WebhookDelivery]:
    """Lease up to `limit` due deliveries of active subscriptions to `owner`.

    FOR UPDATE SKIP LOCKED lets several workers claim at once on PostgreSQL without waiting
    for each other or taking the same row; the lease keeps a claimed row away from the other
    workers after this transaction commits, until it expires (a crashed worker).
    """
    rows = list(
        session.execute(
            select(WebhookDelivery)
            .join(
                WebhookSubscription,
                col(WebhookSubscription.id) == col(WebhookDelivery.subscription_id),
            )
            .where(
                *_due(now),
                col(WebhookSubscription.active).is_(True),
            )
            .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.event_seq))
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        ).scalars()
    )
    for row in rows:
        row.lease_owner = owner
        row.lease_expires_at = lease_until
    session.flush()
    return rows


def subscriptions_by_id(
    session: Session, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, WebhookSubscription]:
    """Subscriptions by id."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(WebhookSubscription).where(col(WebhookSubscription.id).in_(wanted))
    ).scalars()
    return {s.id: s for s in rows}


def finish_delivery(
    session: Session, delivery_id: uuid.UUID, owner: str, values: dict[str, Any]
) -> bool:
    """Record an attempt's outcome if `owner` still holds the lease; False if it lost it."""
    result = session.exec(
        update(WebhookDelivery)
        .where(
            col(WebhookDelivery.id) == delivery_id,
            col(WebhookDelivery.lease_owner) == owner,
        )
        .values(lease_owner=None, lease_expires_at=None, **values)
    )
    return bool(result.rowcount)


def delivery_exists(session: Session, delivery_id: uuid.UUID) -> bool:
    """True while the delivery has not been deleted with its subscription."""
    found = session.execute(
        select(col(WebhookDelivery.id)).where(col(WebhookDelivery.id) == delivery_id)
    )
    return found.first() is not None


def add_attempt(session: Session, attempt: WebhookAttempt) -> None:
    """Append an attempt row."""
    session.add(attempt)
