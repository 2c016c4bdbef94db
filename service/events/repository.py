"""Every query of the event feed and the webhook outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlmodel import Session

from service.events.models import (
    Event,
    LegacyFeedCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)

_SUBSCRIPTION = WebhookSubscription.__table__  # type: ignore[attr-defined]
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
                Event.seq > after,  # type: ignore[operator]
                or_(Event.from_agency == agency, Event.to_agency == agency),
            )
            .order_by(Event.seq)  # type: ignore[arg-type]
            .limit(limit)
        ).scalars()
    )


def legacy_cursor_limit(session: Session) -> int:
    """The highest event number a cursor of an earlier release can hold."""
    found = session.execute(select(func.max(LegacyFeedCursor.max_seq))).scalar_one()
    return int(found or 0)


def events_by_seq(session: Session, seqs: Iterable[int]) -> dict[int, Event]:
    """Events by their number."""
    wanted = list(set(seqs))
    if not wanted:
        return {}
    rows = session.execute(select(Event).where(Event.seq.in_(wanted))).scalars()  # type: ignore[attr-defined]
    return {e.seq: e for e in rows}


# ---- subscriptions --------------------------------------------------------------------------


def subscription_of(
    session: Session, agency: str, subscription_id: uuid.UUID, *, for_update: bool = False
) -> WebhookSubscription | None:
    """The subscription if `agency` owns it."""
    query = select(WebhookSubscription).where(
        WebhookSubscription.id == subscription_id, WebhookSubscription.agency == agency
    )
    if for_update:
        query = query.with_for_update()
    return session.execute(query).scalars().first()


def subscriptions_of(session: Session, agency: str) -> list[WebhookSubscription]:
    """Every subscription `agency` owns, oldest first."""
    return list(
        session.execute(
            select(WebhookSubscription)
            .where(WebhookSubscription.agency == agency)
            .order_by(WebhookSubscription.created_at, WebhookSubscription.id)  # type: ignore[arg-type]
        ).scalars()
    )


def delete_subscription(session: Session, subscription_id: uuid.UUID) -> None:
    """Remove a subscription with its deliveries and their attempts."""
    deliveries = select(WebhookDelivery.id).where(
        WebhookDelivery.subscription_id == subscription_id
    )
    session.execute(
        WebhookAttempt.__table__.delete().where(  # type: ignore[attr-defined]
            WebhookAttempt.delivery_id.in_(deliveries)  # type: ignore[attr-defined]
        )
    )
    session.execute(
        WebhookDelivery.__table__.delete().where(  # type: ignore[attr-defined]
            WebhookDelivery.subscription_id == subscription_id
        )
    )
    session.execute(
        WebhookSubscription.__table__.delete().where(  # type: ignore[attr-defined]
            WebhookSubscription.id == subscription_id
        )
    )


def update_subscription(session: Session, subscription_id: uuid.UUID, **values: Any) -> None:
    """Set columns of a subscription."""
    session.execute(
        update(WebhookSubscription)
        .where(WebhookSubscription.id == subscription_id)  # type: ignore[arg-type]
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
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if before is not None:
        query = query.where(WebhookDelivery.event_seq < before)  # type: ignore[arg-type]
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    query = query.order_by(WebhookDelivery.event_seq.desc()).limit(limit)  # type: ignore[attr-defined]
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
        .where(WebhookAttempt.delivery_id.in_(ids))  # type: ignore[attr-defined]
        .order_by(WebhookAttempt.id)  # type: ignore[arg-type]
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
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.subscription_id == subscription_id,
            )
            .with_for_update()
        )
        .scalars()
        .first()
    )


def requeue_dead(session: Session, subscription_id: uuid.UUID, now: dt.datetime) -> int:
    """Queue every dead delivery of a subscription for an attempt now; how many."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,  # type: ignore[arg-type]
            WebhookDelivery.status == "dead",  # type: ignore[arg-type]
        )
        .values(status="pending", failures=0, next_attempt_at=now, updated_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def settle_pending(
    session: Session, subscription_id: uuid.UUID, now: dt.datetime, reason: str
) -> int:
    """Mark every pending delivery of a subscription dead with `reason`; how many.

    Leases are dropped too, so a worker still sending one of them records only its attempt.
    """
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.subscription_id == subscription_id,  # type: ignore[arg-type]
            WebhookDelivery.status == "pending",  # type: ignore[arg-type]
        )
        .values(
            status="dead",
            last_error=reason,
            lease_owner=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def any_due(session: Session, now: dt.datetime) -> bool:
    """True when some delivery could be claimed now (a cheap check before locking)."""
    return (
        session.execute(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,  # type: ignore[operator]
                or_(
                    WebhookDelivery.lease_expires_at.is_(None),  # type: ignore[union-attr]
                    WebhookDelivery.lease_expires_at <= now,  # type: ignore[operator]
                ),
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
                WebhookSubscription.id == WebhookDelivery.subscription_id,  # type: ignore[arg-type]
            )
            .where(
                WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at <= now,  # type: ignore[operator]
                or_(
                    WebhookDelivery.lease_expires_at.is_(None),  # type: ignore[union-attr]
                    WebhookDelivery.lease_expires_at <= now,  # type: ignore[operator]
                ),
                WebhookSubscription.active.is_(True),  # type: ignore[attr-defined]
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.event_seq)  # type: ignore[arg-type]
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)  # type: ignore[arg-type]
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
        select(WebhookSubscription).where(WebhookSubscription.id.in_(wanted))  # type: ignore[attr-defined]
    ).scalars()
    return {s.id: s for s in rows}


def finish_delivery(
    session: Session, delivery_id: uuid.UUID, owner: str, values: dict[str, Any]
) -> bool:
    """Record an attempt's outcome if `owner` still holds the lease; False if it lost it."""
    result = session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,  # type: ignore[arg-type]
            WebhookDelivery.lease_owner == owner,  # type: ignore[arg-type]
        )
        .values(lease_owner=None, lease_expires_at=None, **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def delivery_exists(session: Session, delivery_id: uuid.UUID) -> bool:
    """True while the delivery has not been deleted with its subscription."""
    found = session.execute(select(WebhookDelivery.id).where(WebhookDelivery.id == delivery_id))
    return found.first() is not None


def add_attempt(session: Session, attempt: WebhookAttempt) -> None:
    """Append an attempt row."""
    session.add(attempt)
