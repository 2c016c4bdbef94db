"""The write path: one object per database, reached through `Database.write(work)`.

Every write runs as a work given a write object (`w.session` for ORM reads and writes, and
the operations below) in a transaction the write path commits. Why it is built this way:

- Group commit (SQLite): a commit waits for the disk under the database's one write lock,
  which every writer of every worker queues for. The writes of a process's concurrent
  requests run in one transaction, each in a savepoint of its own, and share one sync
  (`service.db.group`): throughput grows with load instead of queueing behind fsyncs.
- Pipelined commit (PostgreSQL): the audit chain and the event numbers must follow commit
  order, so they are taken under one lock that every writer waits for. The NOTIFYs, the
  lock, the deferred statements and the reads of the chain's head go in one round trip, the
  keyed audit INSERTs and the COMMIT in a second (then psycopg's closing sync, after the
  lock is released): the lock is held for two round trips, never for the request's own
  work, and the audit key never reaches the database.
- Direct statements: the statements of the hot paths are built once from the table
  definitions and run on the driver's cursor (`service.db.direct`): SQLAlchemy's
  per-statement machinery cost more than SQLite's INSERT itself.

The commit is called by the write path, never from a session hook: a work must not commit
or roll back, and what the transaction recorded (events, audit entries) is known here.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from sqlalchemy import String, bindparam, cast, func, insert, literal, select, text
from sqlalchemy.dialects import postgresql
from sqlmodel import Session, SQLModel

from service.audit import chain
from service.audit.keys import AuditKeyring, session_keys
from service.audit.models import AuditEntry
from service.db.direct import compiled_for, execute_direct, insert_rows, insert_values
from service.db.engines import AUDIT_APPEND_LOCK_KEY
from service.db.types import utcnow
from service.events import repository as events_repo
from service.events.models import Event, WebhookDelivery, WebhookSubscription
from service.referrals.models import (
    IdempotencyRecord,
    Referral,
    ReferralCaseType,
    ReferralGroup,
    ReferralHistory,
)
from service.requestctx import request_id
from service.tables import table_of

# Set when a transaction that recorded events commits in this process, so that an embedded
# dispatcher sends at once instead of at its next poll. On PostgreSQL the transaction also
# sends NOTIFY on OUTBOX_CHANNEL, which wakes `rujukan worker` processes the same way.
EVENTS_COMMITTED = threading.Event()
OUTBOX_CHANNEL = "rujukan_outbox"

_REFERRAL = table_of(Referral)
_HISTORY = table_of(ReferralHistory)
_IDEMPOTENCY = table_of(IdempotencyRecord)
_AUDIT = table_of(AuditEntry)
_EVENT = table_of(Event)
_SUBSCRIPTION = table_of(WebhookSubscription)
_DELIVERY = table_of(WebhookDelivery)

REFERRAL_COLUMNS = tuple(column.key for column in _REFERRAL.columns)

# The chain's head, and the last number the entry's agency gave (None: none yet).
_AGENCY_SEQ = (
    select(_AUDIT.c.agency_seq)
    # Not NULL: PostgreSQL sorts NULLs first when descending.
    .where(_AUDIT.c.agency == bindparam("agency"), _AUDIT.c.agency_seq.is_not(None))
    .order_by(_AUDIT.c.agency_seq.desc())
    .limit(1)
    .scalar_subquery()
)
_HEAD = (
    select(_AUDIT.c.id, _AUDIT.c.hash, _AGENCY_SEQ.label("agency_seq"))
    .order_by(_AUDIT.c.id.desc())
    .limit(1)
)
_INSERT_AUDIT = _AUDIT.insert()
# An event's number is max + 1, taken in its INSERT (see `Writes.record_event`).
_NEXT_SEQ = select(func.coalesce(func.max(_EVENT.c.seq), 0) + 1).scalar_subquery()
_EVENT_COLUMNS = tuple(column.key for column in _EVENT.columns if column is not _EVENT.c.seq)
_INSERT_EVENT = insert(_EVENT).values(seq=_NEXT_SEQ).returning(_EVENT.c.seq)
_UPDATES: dict[frozenset[str], Any] = {}
# A row's column values; the group and case type codes a referral is indexed under.
Values = dict[str, Any]
Indexed = tuple[list[str], list[str]]


class Writes:
    """One work's part of a write transaction: its session and the writes of the service.

    Given to the work of `Database.write`, which commits; a work never commits itself.
    """

    __slots__ = ("session", "recorded_events")

    def __init__(self, session: Session) -> None:
        self.session = session
        self.recorded_events = False

    # ---- the same on both databases ---------------------------------------------------------

    def insert(self, model: type[SQLModel], values: Sequence[dict[str, Any]]) -> None:
        """INSERT rows given as column values into `model`'s table (one statement)."""
        insert_values(self.session, model, values)

    def insert_rows(self, rows: Sequence[SQLModel]) -> None:
        """INSERT model instances that are only written, never changed in the transaction."""
        insert_rows(self.session, rows)

    def update_referral_if_version(
        self, referral_id: uuid.UUID, expected_version: int, changes: dict[str, Any]
    ) -> bool:
        """Apply changes to a referral only if nobody changed it since `expected_version`
        (and give it the next version); whether it did.

        One statement per set of changed columns, built once and reused.
        """
        statement = _UPDATES.get(frozenset(changes))
        if statement is None:
            statement = _UPDATES[frozenset(changes)] = (
                _REFERRAL.update()
                .where(
                    _REFERRAL.c.id == bindparam("_id"),
                    _REFERRAL.c.version == bindparam("_expected"),
                )
                .values({name: bindparam(f"_new_{name}") for name in changes})
                .values(version=bindparam("_new_version"))
            )
        params = {f"_new_{name}": value for name, value in changes.items()}
        params.update(
            _id=referral_id, _expected=expected_version, _new_version=expected_version + 1
        )
        return bool(self.session.connection().execute(statement, params).rowcount == 1)

    def add_history(
        self,
        *,
        referral_id: uuid.UUID,
        action: str,
        from_status: str | None,
        to_status: str,
        actor_agency: str,
        actor_client: str,
        detail: dict[str, Any],
        occurred_at: dt.datetime,
    ) -> None:
        """Append one entry to a referral's history."""
        insert_values(
            self.session,
            ReferralHistory,
            [
                {
                    "referral_id": referral_id,
                    "action": action,
                    "from_status": from_status,
                    "to_status": to_status,
                    "actor_agency": actor_agency,
                    "actor_client": actor_client,
                    "detail": detail,
                    "occurred_at": occurred_at,
                }
            ],
        )

    def insert_referral(
        self,
        referral: Any,
        history: dict[str, Any],
        idempotency: dict[str, Any] | None = None,
    ) -> None:
        """Insert a referral (any object with the referral's columns as attributes) with its
        group and case type index rows, its first history entry (the history columns but the
        referral's id) and, when given, the stored answer to an Idempotency-Key (the
        idempotency_record columns but the referral's id)."""
        indexed = (
            sorted({*referral.groups, *referral.kemenham_groups}),
            sorted(set(referral.case_types)),
        )
        self._insert_referral(referral, indexed, history, idempotency)

    def append_audit(
        self,
        *,
        action: str,
        agency: str | None,
        client_id: str | None,
        referral_id: uuid.UUID | None = None,
        detail: dict[str, Any] | None = None,
        detail_sealed: str | None = None,
    ) -> None:
        """Append one entry to the audit chain, serialised with every other append: numbered
        after the chain's head, linked to it, given the next number of its agency's own
        sequence and keyed with the active audit key. Call it as the last write of a work."""
        self._append_audit(
            {
                "occurred_at": utcnow(),
                "agency": agency,
                "client_id": client_id,
                "action": action,
                "referral_id": referral_id,
                "request_id": request_id.get(),
                "detail": detail or {},
                "detail_sealed": detail_sealed,
            }
        )

    def record_event(
        self,
        *,
        type: str,
        referral_id: uuid.UUID,
        reference: str,
        status: str,
        from_agency: str,
        to_agency: str,
        occurred_at: dt.datetime,
    ) -> None:
        """Write one event, and a delivery for every active subscription of either party
        that wants its type.

        Why `seq` is in commit order: it is allocated as max + 1 while holding the lock that
        serialises audit appends, held until the transaction ends. A transaction that
        allocates after another therefore waits for the other to end first, so no event can
        commit behind one a reader has already seen: a feed cursor (the last `seq` read)
        never skips an event that commits late. A database sequence would not give this:
        its numbers are handed out at insert time, not commit time. The subscriptions are
        read under the same lock, which creating or deleting one takes too (for its audit
        entry): the event is owed to exactly the subscriptions committed before it.
        """
        self.recorded_events = True
        self._record_event(
            {
                "id": uuid.uuid4(),
                "type": type,
                "referral_id": referral_id,
                "reference": reference,
                "status": status,
                "from_agency": from_agency,
                "to_agency": to_agency,
                "occurred_at": occurred_at,
            }
        )

    def hold_append_lock(self) -> None:
        """Take, until the transaction ends, the lock that serialises appends (re-entrant),
        before locking rows that an append's writes wait for."""

    def committed(self) -> None:
        """After the commit of the transaction holding this work: wake the dispatcher if
        the work recorded events."""
        if self.recorded_events:
            EVENTS_COMMITTED.set()
        self.recorded_events = False

    # ---- per database -----------------------------------------------------------------------

    def _insert_referral(
        self, referral: Any, indexed: Indexed, history: Values, idempotency: Values | None
    ) -> None:
        raise NotImplementedError

    def _append_audit(self, values: dict[str, Any]) -> None:
        raise NotImplementedError

    def _record_event(self, event: dict[str, Any]) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        """Commit the transaction (the write path's own call, never a work's)."""
        self.session.commit()
        self.committed()

    def rollback(self) -> None:
        """Roll the transaction back, and what it would have sent at its commit."""
        self.session.rollback()
        self.recorded_events = False


class SqliteWrites(Writes):
    """The writes on SQLite: each statement at once. The writer transaction holds the
    database's write lock from its start, so the audit head and the event numbers it reads
    cannot move before it commits; it commits with other works (`GroupCommit`)."""

    __slots__ = ()

    def _insert_referral(
        self, referral: Any, indexed: Indexed, history: Values, idempotency: Values | None
    ) -> None:
        groups, case_types = indexed
        session, referral_id = self.session, referral.id
        insert_values(
            session, Referral, [{name: getattr(referral, name) for name in REFERRAL_COLUMNS}]
        )
        insert_values(
            session, ReferralGroup, [{"referral_id": referral_id, "code": c} for c in groups]
        )
        insert_values(
            session, ReferralCaseType, [{"referral_id": referral_id, "code": c} for c in case_types]
        )
        insert_values(session, ReferralHistory, [{**history, "referral_id": referral_id}])
        if idempotency is not None:
            insert_values(session, IdempotencyRecord, [{**idempotency, "referral_id": referral_id}])

    def _append_audit(self, values: dict[str, Any]) -> None:
        session = self.session
        keys = session_keys(session)
        session.flush()
        head = execute_direct(session, _HEAD, [{"agency": values["agency"]}]).fetchone()
        insert_values(session, AuditEntry, chain.link([values], {values["agency"]: head}, keys))

    def _record_event(self, event: dict[str, Any]) -> None:
        session = self.session
        (seq,) = execute_direct(session, _INSERT_EVENT, [event], list(event)).fetchone()
        agencies = (event["from_agency"], event["to_agency"])
        at = event["occurred_at"]
        insert_rows(
            session,
            [
                WebhookDelivery(
                    subscription_id=subscription_id,
                    event_seq=seq,
                    next_attempt_at=at,
                    created_at=at,
                    updated_at=at,
                )
                for subscription_id, event_types in events_repo.active_subscription_targets(
                    session, agencies
                )
                if event["type"] in event_types
            ],
        )


def _bound(table: Any, prefix: str, **given: Any) -> dict[str, Any]:
    """A parameter for each column of `table` (`given` ones taken as they are), except an
    autoincrement key."""
    return {
        column.key: given.get(column.key, bindparam(prefix + column.key, type_=column.type))
        for column in table.columns
        if column.key in given or column is not table.autoincrement_column
    }


def _insert_referral_statement(with_idempotency: bool) -> Any:
    """PostgreSQL: the inserts of a new referral as one statement, the others as
    data-modifying WITH clauses (each runs exactly once, whether or not anything reads it);
    the foreign keys to the referral are checked at its end, when the referral is there."""
    referral_id = bindparam("r_id", type_=_REFERRAL.c.id.type)
    ctes = [insert(_REFERRAL).values(_bound(_REFERRAL, "r_", id=referral_id)).cte("new_referral")]
    for model, codes in ((ReferralGroup, "groups"), (ReferralCaseType, "case_types")):
        index = table_of(model)
        code_list = bindparam(codes, type_=postgresql.ARRAY(index.c.code.type))
        ctes.append(
            insert(index)
            .from_select(["referral_id", "code"], select(referral_id, func.unnest(code_list)))
            .cte(f"new_{codes}")
        )
    statement = insert(_HISTORY).values(_bound(_HISTORY, "h_", referral_id=referral_id))
    if with_idempotency:
        ctes.append(
            insert(_IDEMPOTENCY)
            .values(_bound(_IDEMPOTENCY, "i_", referral_id=referral_id))
            .cte("new_record")
        )
    return statement.add_cte(*ctes)


def _event_with_deliveries_statement() -> Any:
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
    owed = {
        "id": func.gen_random_uuid(),
        "subscription_id": _SUBSCRIPTION.c.id,
        "event_seq": new_event.c.seq,
        "status": literal("pending"),
        "attempts": literal(0),
        "failures": literal(0),
        "next_attempt_at": due,
        "created_at": due,
        "updated_at": due,
    }
    wanted = select(*owed.values()).where(
        _SUBSCRIPTION.c.agency.in_([bindparam("agency_a"), bindparam("agency_b")]),
        _SUBSCRIPTION.c.active.is_(True),
        cast(_SUBSCRIPTION.c.event_types, postgresql.JSONB).has_key(
            bindparam("wanted_type", type_=String())
        ),
    )
    return insert(_DELIVERY).from_select(list(owed), wanted).add_cte(new_event)


_INSERT_REFERRAL = {flag: _insert_referral_statement(flag) for flag in (False, True)}
_EVENT_WITH_DELIVERIES = _event_with_deliveries_statement()
_APPEND_LOCK = text("SELECT pg_advisory_xact_lock(:k)")


class PostgresWrites(Writes):
    """The writes on PostgreSQL: what must follow commit order (event numbers, audit
    entries) is deferred to the commit, sent in two round trips under the append lock."""

    __slots__ = ("_statements", "_channels", "_entries", "_lock_held")

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self._statements: list[tuple[str, Any]] = []
        self._channels: set[str] = set()
        self._entries: list[dict[str, Any]] = []
        self._lock_held = False

    def _insert_referral(
        self, referral: Any, indexed: Indexed, history: Values, idempotency: Values | None
    ) -> None:
        # One statement, one round trip where there would be five.
        groups, case_types = indexed
        params = {f"r_{name}": getattr(referral, name) for name in REFERRAL_COLUMNS}
        params.update({f"h_{name}": value for name, value in history.items()})
        params.update({f"i_{name}": value for name, value in (idempotency or {}).items()})
        params.update(groups=groups, case_types=case_types)
        self.session.connection().execute(_INSERT_REFERRAL[idempotency is not None], params)

    def hold_append_lock(self) -> None:
        if self._lock_held:
            return  # Taken earlier in this transaction: it is held until the transaction ends.
        self.session.execute(_APPEND_LOCK, {"k": AUDIT_APPEND_LOCK_KEY})
        self._lock_held = True

    def defer(self, statement: Any, params: dict[str, Any], *, notify: str | None = None) -> None:
        """Run `statement` at commit, under the append lock, in the order the transaction
        deferred its statements, before its audit entries; `notify`: a channel to NOTIFY at
        that commit (the server sends it at commit only)."""
        compiled = compiled_for(self.session.connection().dialect, statement)
        self._statements.append((compiled.sql, compiled.driver_params(params)))
        if notify:
            self._channels.add(notify)

    def _append_audit(self, values: dict[str, Any]) -> None:
        self._entries.append(values)

    def _record_event(self, event: dict[str, Any]) -> None:
        params = {
            **event,
            "due_at": event["occurred_at"],
            "agency_a": event["from_agency"],
            "agency_b": event["to_agency"],
            "wanted_type": event["type"],
        }
        self.defer(_EVENT_WITH_DELIVERIES, params, notify=OUTBOX_CHANNEL)

    def commit(self) -> None:
        """Send what the transaction deferred, its audit entries and its COMMIT, in two
        round trips under the append lock.

        First the NOTIFYs, the append lock, the deferred statements and the reads of the
        chain's head go to the server together (psycopg's pipeline mode) and it runs them one
        after the other; then this process numbers and keys the entries (the audit key never
        goes to the database) and sends their INSERTs with the COMMIT. The lock is held from
        the first round trip to the end of the second. A failure of any of them fails the
        commit, and the transaction is rolled back, nothing of it stored.
        """
        session = self.session
        if self._statements or self._channels or self._entries:
            session.flush()
            connection = session.connection()
            driver: Any = connection.connection.driver_connection
            keys = session_keys(session) if self._entries else None
            with driver.pipeline() as pipeline:
                try:
                    self._send(connection, driver, keys)
                except driver.Error:
                    # A statement failed and the server skipped the rest: take their (failed)
                    # results, so that the pipeline ends cleanly, then fail the commit.
                    with suppress(driver.Error):
                        pipeline.sync()
                    raise
        # Committed above when anything was deferred: SQLAlchemy's COMMIT then finds the
        # transaction ended and sends nothing.
        session.commit()
        self._forget()
        self.committed()

    def rollback(self) -> None:
        self._forget()
        super().rollback()

    def _forget(self) -> None:
        self._statements, self._channels, self._entries = [], set(), []
        self._lock_held = False

    def _send(self, connection: Any, driver: Any, keys: AuditKeyring | None) -> None:
        """The two round trips of `commit`, in psycopg's pipeline mode."""
        dialect = connection.dialect
        for channel in sorted(self._channels):
            driver.execute(f"NOTIFY {channel}")
        if not self._lock_held:
            lock = compiled_for(dialect, _APPEND_LOCK)
            driver.execute(lock.sql, lock.driver_params({"k": AUDIT_APPEND_LOCK_KEY}))
        for sql, params in self._statements:
            driver.execute(sql, params)
        if keys is not None:
            head = compiled_for(dialect, _HEAD)
            reads = {
                agency: driver.execute(head.sql, head.driver_params({"agency": agency}))
                for agency in dict.fromkeys(values["agency"] for values in self._entries)
            }
            # The first fetch sends everything above and waits for it: one round trip.
            heads = {agency: cursor.fetchone() for agency, cursor in reads.items()}
            rows = chain.link(self._entries, heads, keys)
            insert_audit = compiled_for(dialect, _INSERT_AUDIT, list(rows[0]))
            for row in rows:
                driver.execute(insert_audit.sql, insert_audit.driver_params(row))
        driver.commit()


def writes_for(sqlite: bool) -> type[Writes]:
    """The write object of a database."""
    return SqliteWrites if sqlite else PostgresWrites
