"""The statistics queries. Every figure is computed in SQL, the same way on both databases."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, or_, select, union_all
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from service.db.functions import seconds_between
from service.referrals.models import Referral, ReferralCaseType, ReferralGroup, ReferralHistory
from service.referrals.workflow import CLOSED, ReferralStatus
from service.tables import table_of

# (name, the status the step starts in, the status it ends in): from each status to the next.
STEPS = tuple((f"{begins}_to_{ends}", begins, ends) for begins, ends in pairwise(ReferralStatus))
PERCENTILES = (50, 90)


@dataclass(frozen=True)
class Scope:
    """Which referrals count: those of `agency` (None: every agency, for operators) in a
    `direction`, made between `start` (included) and `end` (excluded)."""

    agency: str | None
    direction: str | None
    start: dt.datetime | None
    end: dt.datetime | None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The WHERE clause on `referral`."""
        found: list[ColumnElement[bool]] = []
        from_agency, to_agency = col(Referral.from_agency), col(Referral.to_agency)
        if self.agency is not None:
            if self.direction == "incoming":
                found.append(to_agency == self.agency)
            elif self.direction == "outgoing":
                found.append(from_agency == self.agency)
            else:
                found.append(or_(from_agency == self.agency, to_agency == self.agency))
        if self.start is not None:
            found.append(col(Referral.created_at) >= self.start)
        if self.end is not None:
            found.append(col(Referral.created_at) < self.end)
        return found


def _count_by(
    session: Session, scope: Scope, column: Any, *extra: ColumnElement[bool]
) -> dict[str, int]:
    stmt = (
        select(column, func.count())
        .where(*scope.conditions(), *extra)
        .group_by(column)
        .order_by(column)
    )
    return {str(key): int(n) for key, n in session.execute(stmt) if key is not None}


def _count_by_code(
    session: Session, scope: Scope, index: type[ReferralGroup] | type[ReferralCaseType]
) -> dict[str, int]:
    # The index tables hold one row per referral and code, so a plain count is per referral.
    code = col(index.code)
    stmt = (
        select(code, func.count())
        .join(Referral, col(Referral.id) == col(index.referral_id))
        .where(*scope.conditions())
        .group_by(code)
        .order_by(code)
    )
    return {str(code): int(n) for code, n in session.execute(stmt)}


def counts(session: Session, scope: Scope) -> dict[str, dict[str, int]]:
    """Referrals by status, urgency, outcome, group and case type."""
    return {
        "status": _count_by(session, scope, Referral.status),
        "urgency": _count_by(session, scope, Referral.urgency),
        "outcome": _count_by(
            session, scope, Referral.closure_outcome, col(Referral.status) == CLOSED
        ),
        "group": _count_by_code(session, scope, ReferralGroup),
        "case_type": _count_by_code(session, scope, ReferralCaseType),
    }


def overdue_by_status(session: Session, scope: Scope, now: dt.datetime) -> dict[str, int]:
    """Open referrals past their current step's deadline, by status."""
    return _count_by(
        session,
        scope,
        Referral.status,
        col(Referral.status) != CLOSED,
        col(Referral.due_at).is_not(None),
        col(Referral.due_at) < now,
    )


def _step_durations(session: Session, scope: Scope) -> Any:
    """One row (step, seconds) for each referral of the scope that went through a step."""
    parts = []
    # Core aliases, not ORM ones: building ORM aliases costs more than running the query.
    history = table_of(ReferralHistory)
    for name, begins, ends in STEPS:
        entered, left = history.alias(f"entered_{begins}"), history.alias(f"left_{begins}")
        parts.append(
            select(
                literal(name).label("step"),
                seconds_between(entered.c.occurred_at, left.c.occurred_at).label("seconds"),
            )
            .select_from(entered)
            .join(left, left.c.referral_id == entered.c.referral_id)
            .join(Referral, col(Referral.id) == entered.c.referral_id)
            .where(
                # Entering the state (a further service stays in `served` and does not count).
                entered.c.to_status == begins,
                or_(entered.c.from_status.is_(None), entered.c.from_status != begins),
                left.c.from_status == begins,
                left.c.to_status == ends,
                *scope.conditions(),
            )
        )
    return union_all(*parts).subquery("durations")


def step_times(session: Session, scope: Scope) -> dict[str, dict[str, float | int | None]]:
    """Per step: how many referrals, and the median and 90th percentile in seconds.

    A percentile is the linear interpolation between the two closest ranks (the definition
    of PostgreSQL's percentile_cont): for n sorted values and p in percent, at position
    h = (n - 1) * p / 100 it is x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]).
    SQLite has no percentile function, so both databases rank with window functions and
    take the two values in integer arithmetic.
    """
    durations = _step_durations(session, scope)
    rank = func.row_number().over(partition_by=durations.c.step, order_by=durations.c.seconds)
    size = func.count().over(partition_by=durations.c.step)
    ranked = select(
        durations.c.step,
        durations.c.seconds,
        (rank - 1).label("pos"),
        size.label("n"),
    ).subquery("ranked")
    columns: list[Any] = [ranked.c.step, func.max(ranked.c.n).label("n")]
    for p in PERCENTILES:
        scaled = (ranked.c.n - 1) * p  # h * 100, an integer
        lower = scaled // 100
        fraction = cast(scaled % 100, Float) / 100.0
        value = cast(ranked.c.seconds, Float)
        columns.append(
            func.sum(
                case((ranked.c.pos == lower, value * (1.0 - fraction)), else_=0.0)
                + case((ranked.c.pos == lower + 1, value * fraction), else_=0.0)
            ).label(f"p{p}")
        )
    stmt = select(*columns).group_by(ranked.c.step)
    found: dict[str, dict[str, float | int | None]] = {
        row.step: {
            "count": int(row.n),
            **{f"p{p}": float(getattr(row, f"p{p}")) for p in PERCENTILES},
        }
        for row in session.execute(stmt)
    }
    empty: dict[str, float | int | None] = {"count": 0, **{f"p{p}": None for p in PERCENTILES}}
    return {name: found.get(name, dict(empty)) for name, _, _ in STEPS}


def step_seconds(session: Session, scope: Scope) -> dict[str, list[int]]:
    """Every duration of each step, for drawing their distributions."""
    durations = _step_durations(session, scope)
    found: dict[str, list[int]] = {name: [] for name, _, _ in STEPS}
    for step, seconds in session.execute(
        select(durations.c.step, durations.c.seconds).order_by(durations.c.seconds)
    ):
        found[step].append(int(seconds))
    return found


def created_with_status(session: Session, scope: Scope) -> list[tuple[dt.datetime, str]]:
    """(created_at, current status) of every referral of the scope, oldest first."""
    stmt = (
        select(col(Referral.created_at), col(Referral.status))
        .where(*scope.conditions())
        .order_by(col(Referral.created_at))
    )
    return [(created, status) for created, status in session.execute(stmt)]
