"""Writing events, and the webhook deliveries they owe, inside an action's transaction."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from service.audit import trail
from service.db import insert_rows
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


_EVENT = Event.__table__  # type: ignore[attr-defined]
# The number is max + 1, taken in the INSERT itself (see `record` for why it is in commit order).
_INSERT_EVENT = (
    insert(_EVENT)
    .values(seq=select(func.coalesce(func.max(_EVENT.c.seq), 0) + 1).scalar_subquery())
    .returning(_EVENT.c.seq)
)


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
) -> int:
    """Write one event, and a delivery for every active subscription of either party that
    wants its type; its number.

    Why `seq` is in commit order: it is allocated as max + 1 while holding the lock that
    serialises audit appends, and that lock is held until the transaction ends. A
    transaction that allocates after another therefore waits for the other to commit (or
    roll back) first, so no event can ever commit behind one a reader has already seen:
    a feed cursor (the last `seq` read) never skips an event that commits late. A database
    sequence would not give this: numbers are handed out at insert time, not commit time.
    The subscriptions are read under the same lock, which creating or deleting one takes
    too (for its audit entry): the event is owed to exactly the subscriptions committed
    before it.
    """
    session.info[_WROTE] = True
    (seq,), (subscriptions,) = trail.locked_insert(
        session,
        _INSERT_EVENT,
        {
            "id": uuid.uuid4(),
            "type": type,
            "referral_id": referral_id,
            "reference": reference,
            "status": status,
            "from_agency": from_agency,
            "to_agency": to_agency,
            "occurred_at": occurred_at,
        },
        # Wakes `rujukan worker` processes (LISTEN) once the transaction commits.
        notify=CHANNEL,
        reads=[repo.subscription_targets_read((from_agency, to_agency))],
    )
    insert_rows(
        session,
        [
            WebhookDelivery(
                subscription_id=subscription_id,
                event_seq=seq,
                next_attempt_at=occurred_at,
                created_at=occurred_at,
                updated_at=occurred_at,
            )
            for subscription_id, event_types in subscriptions
            if type in event_types
        ],
    )
    return int(seq)
