"""Every query of the referral domain."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from service.db import fetch_direct
from service.db.direct import row_class
from service.referrals import workflow
from service.referrals.models import (
    DeliveredService,
    IdempotencyRecord,
    Referral,
    ReferralGroup,
    ReferralHistory,
    ReferralNote,
)
from service.tables import table_of

_REFERRAL = table_of(Referral)

# A referral as the hot paths read it (a page, an action's row) and build it (a create):
# its columns, typed, without an ORM instance's bookkeeping.
# To the type checker it is a Referral: it has the same column attributes, with their types
# (the hot paths read and set only those).
if TYPE_CHECKING:
    ReferralRow = Referral
else:
    ReferralRow = row_class(_REFERRAL, "ReferralRow")
REFERRAL_COLUMNS = tuple(column.key for column in _REFERRAL.columns)


def visible_to(agency: str | ColumnElement[str]) -> ColumnElement[bool]:
    """The one predicate that scopes referrals to a party."""
    return or_(_REFERRAL.c.from_agency == agency, _REFERRAL.c.to_agency == agency)


def _visible_statement(for_update: bool) -> Any:
    table = _REFERRAL
    stmt = select(table).where(
        table.c.id == bindparam("referral_id"), visible_to(bindparam("agency"))
    )
    return stmt.with_for_update() if for_update else stmt


# Built once: `fetch_direct` compiles a statement object once.
_VISIBLE = {False: _visible_statement(False), True: _visible_statement(True)}


def get_visible(
    session: Session, referral_id: uuid.UUID, agency: str, *, for_update: bool = False
) -> ReferralRow | None:
    """A referral, only if the agency is one of its two parties (the predicate of
    `visible_to`), as a plain object with the columns as attributes (Core, no ORM instance:
    actions update it with `update_if_version` and keep it current themselves).

    `for_update` locks the row first (PostgreSQL), so every action takes its locks in the
    same order (referral, audit trail) and none can deadlock another.
    SQLite needs no row lock: its writers already hold the database write lock.
    """
    params = {"referral_id": referral_id, "agency": agency}
    rows = fetch_direct(session, _VISIBLE[for_update], params)
    return rows[0] if rows else None


def _open_of_person_statement() -> Any:
    table = _REFERRAL
    return (
        select(table.c.id, table.c.reference, table.c.from_agency, table.c.protected_identity)
        .where(
            table.c.to_agency == bindparam("to_agency"),
            table.c.nik_hash == bindparam("nik_hash"),
            table.c.status != workflow.CLOSED,
        )
        .order_by(table.c.created_at, table.c.id)
    )


_OPEN_OF_PERSON = _open_of_person_statement()


def open_referrals_of_person(session: Session, to_agency: str, nik_hash: str) -> list[Any]:
    """The open referrals of this person to this agency (at most one per sender), oldest
    first: their id, reference, sender and whether the identity is protected."""
    return fetch_direct(session, _OPEN_OF_PERSON, {"to_agency": to_agency, "nik_hash": nik_hash})


def history(session: Session, referral_id: uuid.UUID) -> Sequence[ReferralHistory]:
    stmt = (
        select(ReferralHistory)
        .where(col(ReferralHistory.referral_id) == referral_id)
        .order_by(col(ReferralHistory.id))
    )
    return session.execute(stmt).scalars().all()


_SERVICE = table_of(DeliveredService)
# Built once; each call adds its WHERE.
_SERVICES = select(DeliveredService).order_by(_SERVICE.c.recorded_at, _SERVICE.c.id)


def services_of(
    session: Session, referral_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DeliveredService]]:
    """Services of several referrals, each list in the order they were recorded."""
    if not referral_ids:
        return {}
    stmt = _SERVICES.where(_SERVICE.c.referral_id.in_(referral_ids))
    grouped: dict[uuid.UUID, list[DeliveredService]] = {rid: [] for rid in referral_ids}
    for row in session.execute(stmt).scalars():
        grouped[row.referral_id].append(row)
    return grouped


def services_of_rows(
    session: Session, rows: Sequence[Referral]
) -> dict[uuid.UUID, list[DeliveredService]]:
    """Services of these referrals, asking the database only about those whose state
    allows any (reads of referred and assessed referrals skip the query)."""
    grouped = services_of(session, [r.id for r in rows if r.status in workflow.MAY_HAVE_SERVICES])
    return {r.id: grouped.get(r.id, []) for r in rows}


def notes(session: Session, referral_id: uuid.UUID) -> Sequence[ReferralNote]:
    stmt = (
        select(ReferralNote)
        .where(col(ReferralNote.referral_id) == referral_id)
        .order_by(col(ReferralNote.created_at), col(ReferralNote.id))
    )
    return session.execute(stmt).scalars().all()


def findable_by_nik(agency: Any, *, with_protected: bool) -> list[Any]:
    """The conditions on a referral that `agency` looks up by NIK: no referral whose
    identity is sealed to it is found. After consent withdrawal, never by its receiver; a
    protected identity, only `with_protected` (the request gave a reason, and the caller
    audits each such match as a reveal)."""
    table = _REFERRAL
    found = [or_(table.c.consent_withdrawn_at.is_(None), table.c.to_agency != agency)]
    if not with_protected:
        found.append(table.c.protected_identity.is_(False))
    return found


@dataclass(frozen=True)
class ListFilter:
    """The filters of GET /v1/referrals."""

    agency: str
    status: str | None = None
    direction: str | None = None
    to_agency: str | None = None
    from_agency: str | None = None
    group: str | None = None
    urgency: str | None = None
    nik_hash: str | None = None
    # The request gave a reason (X-Reveal-Reason): a NIK may match a protected identity.
    nik_reveal: bool = False
    overdue: bool | None = None
    updated_since: dt.datetime | None = None


def list_page(
    session: Session,
    filters: ListFilter,
    *,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None,
    now: dt.datetime,
) -> list[ReferralRow]:
    """Newest first, keyset-paginated on (created_at, id); returns up to limit + 1 rows.

    Plain objects (each column an attribute, as on a Referral), not ORM ones: a page is
    only read and rendered, and building and tracking 51 instances cost more than the
    query itself.
    """
    params: dict[str, Any] = {"agency": filters.agency, "limit": limit + 1}
    for name in (*_LIST_EQUALS, "group", "updated_since"):
        if value := getattr(filters, name):
            params[name] = value
    if filters.overdue is not None:
        params["now"] = now
    if after is not None:
        params["after_created_at"], params["after_id"] = after
    statement = _list_statement(
        filters.direction, frozenset(params), filters.overdue, filters.nik_reveal
    )
    return fetch_direct(session, statement, params)


# The filters of a list that compare a column with the value given.
_LIST_EQUALS = ("status", "to_agency", "from_agency", "urgency", "nik_hash")


@functools.lru_cache(maxsize=512)
def _list_statement(
    direction: str | None, given: frozenset[str], overdue: bool | None, nik_reveal: bool
) -> Any:
    """The SELECT of a list page for the filters given, their values as bound parameters:
    built once per combination of filters, so it is compiled once (`fetch_direct`)."""
    table = _REFERRAL
    me = bindparam("agency", type_=table.c.to_agency.type)
    if direction == "incoming":
        conditions: list[Any] = [table.c.to_agency == me]
    elif direction == "outgoing":
        conditions = [table.c.from_agency == me]
    else:
        conditions = [visible_to(me)]
    for name in _LIST_EQUALS:
        if name in given:
            column = table.c[name]
            conditions.append(column == bindparam(name, type_=column.type))
    if "nik_hash" in given:
        conditions += findable_by_nik(me, with_protected=nik_reveal)
    if "group" in given:
        index = table_of(ReferralGroup)
        conditions.append(
            exists().where(
                index.c.referral_id == table.c.id,
                index.c.code == bindparam("group", type_=index.c.code.type),
            )
        )
    if overdue is not None:
        late = and_(
            table.c.status != workflow.CLOSED,
            table.c.due_at.is_not(None),
            table.c.due_at < bindparam("now", type_=table.c.due_at.type),
        )
        conditions.append(late if overdue else ~late)
    if "updated_since" in given:
        column = table.c.updated_at
        conditions.append(column >= bindparam("updated_since", type_=column.type))
    if "after_id" in given:
        # A row-value comparison, not `a < x OR (a = x AND b < y)`: both databases turn it
        # into one index range, so a deep page costs what the first one does.
        conditions.append(
            tuple_(table.c.created_at, table.c.id)
            < tuple_(
                bindparam("after_created_at", type_=table.c.created_at.type),
                bindparam("after_id", type_=table.c.id.type),
            )
        )
    return (
        select(*table.columns)
        .where(*conditions)
        .order_by(table.c.created_at.desc(), table.c.id.desc())
        .limit(bindparam("limit", type_=Integer()))
    )


_IDEMPOTENCY = table_of(IdempotencyRecord)
_GET_IDEMPOTENCY = select(_IDEMPOTENCY).where(
    _IDEMPOTENCY.c.agency == bindparam("agency"), _IDEMPOTENCY.c.key == bindparam("key")
)


def get_idempotency(session: Session, agency: str, key: str) -> Any:
    """The stored answer to an Idempotency-Key of this agency (a row), or None."""
    return session.connection().execute(_GET_IDEMPOTENCY, {"agency": agency, "key": key}).first()


def sender_of(session: Session, referral_id: uuid.UUID) -> str | None:
    """The sending agency of a referral, or None if there is no such referral."""
    stmt = select(col(Referral.from_agency)).where(col(Referral.id) == referral_id)
    return session.execute(stmt).scalar_one_or_none()


def count_referrals(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Referral)).scalar_one())


# ---- retention ------------------------------------------------------------------------------


def get_for_update(session: Session, referral_id: uuid.UUID) -> Referral | None:
    """A referral regardless of agency (operator commands), row-locked first."""
    stmt = select(Referral).where(col(Referral.id) == referral_id).with_for_update()
    return session.execute(stmt).scalars().first()


def purgeable_ids(session: Session, closed_before: dt.datetime) -> list[uuid.UUID]:
    """Referrals closed before the cutoff whose personal data is not erased yet."""
    stmt = (
        select(col(Referral.id))
        .where(
            col(Referral.status) == workflow.CLOSED,
            col(Referral.closed_at) < closed_before,
            col(Referral.purged_at).is_(None),
        )
        .order_by(col(Referral.closed_at), col(Referral.id))
    )
    return list(session.execute(stmt).scalars())


def personal_data_counts(session: Session, referral_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """How many notes, services and stored create responses these referrals have."""
    counts = {"notes": 0, "services": 0, "idempotency_records": 0}
    if not referral_ids:
        return counts
    for name, table in (
        ("notes", ReferralNote),
        ("services", DeliveredService),
        ("idempotency_records", IdempotencyRecord),
    ):
        stmt = select(func.count()).where(col(table.referral_id).in_(referral_ids))
        counts[name] = int(session.execute(stmt).scalar_one())
    return counts


def set_note_text(session: Session, note_id: uuid.UUID, text_sealed: str) -> None:
    stmt = (
        update(ReferralNote)
        .where(col(ReferralNote.id) == note_id)
        .values(text_sealed=text_sealed)
        .execution_options(synchronize_session=False)
    )
    session.execute(stmt)


def erase_service_notes(session: Session, referral_id: uuid.UUID) -> int:
    """Clear the notes of a referral's services; the number of services."""
    stmt = (
        update(DeliveredService)
        .where(col(DeliveredService.referral_id) == referral_id)
        .values(notes_sealed=None)
        .execution_options(synchronize_session=False)
    )
    return int(session.exec(stmt).rowcount)


def delete_idempotency_records(session: Session, referral_id: uuid.UUID) -> int:
    """Drop the stored create responses of a referral (they hold its personal data)."""
    stmt = (
        delete(IdempotencyRecord)
        .where(col(IdempotencyRecord.referral_id) == referral_id)
        .execution_options(synchronize_session=False)
    )
    return int(session.exec(stmt).rowcount)
