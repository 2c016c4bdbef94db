"""Writing events, and the webhook deliveries they owe, inside an action's transaction."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from service.audit import trail
from service.events import repository as repo
from service.events.models import Event, WebhookDelivery

# Set when a transaction that wrote events commits in this process, so that an embedded
# dispatcher sends at once instead of at its next poll. On PostgreSQL the transaction also
# sends NOTIFY on CHANNEL, which wakes `rujukan worker` processes the same way.
committed = threading.Event()
CHANNEL = "rujukan_outbox"
_WROTE = "rujukan_outbox_wrote"


@sa_event.listens_for(OrmSession, "after_commit")
def _after_commit(session: Any) -> None:
    if session.info.pop(_WROTE, False):
        committed.set()


@sa_event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: Any) -> None:
    session.info.pop(_WROTE, None)


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
    session.info[_WROTE] = True
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at commit only, never for a rolled-back transaction; repeats within one
        # transaction are folded into one.
        session.execute(text(f"NOTIFY {CHANNEL}"))
    return event
