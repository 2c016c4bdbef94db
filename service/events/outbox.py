"""Writing events, and the webhook deliveries they owe, inside an action's transaction."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from typing import Any

from sqlalchemy import String, bindparam, cast, func, insert, literal, select
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from service.audit import trail
from service.db import execute_direct, insert_rows
from service.events import repository as repo
from service.events.models import Event, WebhookDelivery, WebhookSubscription

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
_SUBSCRIPTION = WebhookSubscription.__table__  # type: ignore[attr-defined]
_DELIVERY = WebhookDelivery.__table__  # type: ignore[attr-defined]
# The number is max + 1, taken in the INSERT itself (see `record` for why it is in commit order).
_NEXT_SEQ = select(func.coalesce(func.max(_EVENT.c.seq), 0) + 1).scalar_subquery()
_INSERT_EVENT = insert(_EVENT).values(seq=_NEXT_SEQ).returning(_EVENT.c.seq)
_EVENT_COLUMNS = (
    "id", "type", "referral_id", "reference", "status", "from_agency", "to_agency", "occurred_at"
)  # fmt: skip


def _record_with_deliveries() -> Any:
    """PostgreSQL: the event and a delivery for every active subscription of either party
    that wants its type, as one statement (the event insert as a WITH clause)."""
    new_event = (
        insert(_EVENT)
        .values(
            seq=_NEXT_SEQ,
            **{name: bindparam(name, type_=_EVENT.c[name].type) for name in _EVENT_COLUMNS},
        )
        .returning(_EVENT.c.seq)
        .cte("new_event")
    )
    due = bindparam("due_at", type_=_DELIVERY.c.next_attempt_at.type)
    owed = select(
        func.gen_random_uuid(),
        _SUBSCRIPTION.c.id,
        new_event.c.seq,
        literal("pending"),
        literal(0),
        literal(0),
        due,
        due,
        due,
    ).where(
        _SUBSCRIPTION.c.agency.in_([bindparam("agency_a"), bindparam("agency_b")]),
        _SUBSCRIPTION.c.active.is_(True),
        cast(_SUBSCRIPTION.c.event_types, postgresql.JSONB).has_key(
            bindparam("wanted_type", type_=String())
        ),
    )
    columns = [
        "id", "subscription_id", "event_seq", "status", "attempts", "failures",
        "next_attempt_at", "created_at", "updated_at",
    ]  # fmt: skip
    return insert(_DELIVERY).from_select(columns, owed).add_cte(new_event)


_RECORD_WITH_DELIVERIES = _record_with_deliveries()


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
) -> None:
    """Write one event, and a delivery for every active subscription of either party that
    wants its type.

    Why `seq` is in commit order: it is allocated as max + 1 while holding the lock that
    serialises audit appends, and that lock is held until the transaction ends. A
    transaction that allocates after another therefore waits for the other to commit (or
    roll back) first, so no event can ever commit behind one a reader has already seen:
    a feed cursor (the last `seq` read) never skips an event that commits late. A database
    sequence would not give this: numbers are handed out at insert time, not commit time.
    The subscriptions are read under the same lock, which creating or deleting one takes
    too (for its audit entry): the event is owed to exactly the subscriptions committed
    before it.

    On PostgreSQL both are one statement, run at commit under the lock (see
    `trail.defer`), with a NOTIFY that wakes `rujukan worker` processes (LISTEN) once the
    transaction commits: the server sends it at commit only, never for a rolled-back
    transaction. On SQLite they run at once: the writer transaction holds the database's
    write lock from its start.
    """
    session.info[_WROTE] = True
    event = {
        "id": uuid.uuid4(),
        "type": type,
        "referral_id": referral_id,
        "reference": reference,
        "status": status,
        "from_agency": from_agency,
        "to_agency": to_agency,
        "occurred_at": occurred_at,
    }
    if session.get_bind().dialect.name == "postgresql":
        params = {
            **event,
            "due_at": occurred_at,
            "agency_a": from_agency,
            "agency_b": to_agency,
            "wanted_type": type,
        }
        trail.defer(session, _RECORD_WITH_DELIVERIES, params, notify=CHANNEL)
        return
    (seq,) = execute_direct(session, _INSERT_EVENT, [event], list(event)).fetchone()
    subscriptions = repo.active_subscription_targets(session, (from_agency, to_agency))
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
