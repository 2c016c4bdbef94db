"""Every query of agreements."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlmodel import Session

from service.agreements.models import Agreement


def pair(one: str, other: str) -> tuple[str, str]:
    """The two agency codes in the order an agreement stores them."""
    first, second = sorted((one, other))
    return first, second


def between(session: Session, one: str, other: str) -> Sequence[Agreement]:
    """Every agreement ever registered between two agencies, oldest first."""
    a, b = pair(one, other)
    stmt = (
        select(Agreement)
        .where(Agreement.agency_a == a, Agreement.agency_b == b)
        .order_by(Agreement.valid_from, Agreement.number)
    )
    return session.execute(stmt).scalars().all()


def by_number(session: Session, number: str) -> Agreement | None:
    """The agreement with this number, if registered."""
    return session.execute(select(Agreement).where(Agreement.number == number)).scalars().first()


def every(session: Session) -> Sequence[Agreement]:
    """Every agreement, by agency pair and number."""
    stmt = select(Agreement).order_by(Agreement.agency_a, Agreement.agency_b, Agreement.number)
    return session.execute(stmt).scalars().all()


def add(session: Session, agreement: Agreement) -> None:
    """Insert an agreement."""
    session.add(agreement)
    session.flush()
