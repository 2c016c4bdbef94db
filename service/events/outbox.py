"""Writing events, and the webhook deliveries they owe, inside an action's transaction."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlmodel import Session

from service.audit import trail
from service.events import repository as repo
from service.events.models import Event, WebhookDelivery


def record(
    session: Session,
    *,
    type: str,
    referral_id: uuid.UUID,
    reference: str,
    status: str,
    from_agency: str,
    to_agency: str,
    occurred_at: dt.datetime,
) -> Event:
    """Write one event and a delivery for every matching subscription of its two parties.

    Why `seq` is in commit order: it is allocated as max + 1 while holding the lock that
    serialises audit appends, and that lock is held until the transaction ends. A
    transaction that allocates after another therefore waits for the other to commit (or
    roll back) first, so no event can ever commit behind one a reader has already seen:
    a feed cursor (the last `seq` read) never skips an event that commits late. A database
    sequence would not give this: numbers are handed out at insert time, not commit time.
    """
    session.flush()
    trail.hold_append_lock(session)
    event = Event(
        seq=repo.last_seq(session) + 1,
        type=type,
        referral_id=referral_id,
        reference=reference,
        status=status,
        from_agency=from_agency,
        to_agency=to_agency,
        occurred_at=occurred_at,
    )
    session.add(event)
    for subscription in repo.subscriptions_for(session, (from_agency, to_agency)):
        if type in subscription.event_types:
            session.add(
                WebhookDelivery(
                    subscription_id=subscription.id,
                    event_seq=event.seq,
                    next_attempt_at=occurred_at,
                    created_at=occurred_at,
                    updated_at=occurred_at,
                )
            )
    session.flush()
    return event
