"""Statistics of the referrals an agency can see; the figures come from stats/repository.py."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from service import errors
from service.auth.principal import Principal
from service.context import ServiceContext
from service.db.types import utcnow
from service.i18n import msg
from service.referrals.models import URGENCIES
from service.referrals.workflow import CLOSED, OPEN_STATUSES, ReferralStatus
from service.stats import repository as repo
from service.stats.schemas import Overdue, Stats, StepTime, SuccessRate
from service.taxonomy import repository as taxonomy
from service.taxonomy.models import DEFAULT_TIME_ZONE
from service.times import day_start


def _hours(seconds: float | int | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 4)


def scope_of(
    agency: str | None,
    direction: str | None,
    start: dt.date | None,
    end: dt.date | None,
    zone_name: str = DEFAULT_TIME_ZONE,
) -> repo.Scope:
    """The referrals made from `start` to `end` (days in `zone_name`, both included)."""
    if start is not None and end is not None and end < start:
        raise errors.ValidationFailed(
            msg("`to` is before `from`."),
            [{"loc": ["query", "to"], "msg": msg("is before from"), "type": "value_error"}],
        )
    if direction is not None and agency is None:
        raise errors.ValidationFailed(msg("A direction needs an agency."))
    return repo.Scope(
        agency=agency,
        direction=direction,
        start=day_start(start, zone_name) if start else None,
        end=day_start(end + dt.timedelta(days=1), zone_name) if end else None,
    )


def zone_for(session: Session, agency: str | None) -> str:
    """The time zone an agency's figures count days in; the default for every agency's."""
    return DEFAULT_TIME_ZONE if agency is None else taxonomy.time_zone_of(session, agency)


def compute(
    ctx: ServiceContext,
    *,
    agency: str | None,
    direction: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Stats:
    """Every figure for one agency (or, with agency None, for the whole service), its days
    counted in the agency's time zone (the default zone for the whole service)."""
    now = now or utcnow()
    with ctx.db.reader() as session:
        zone_name = zone_for(session, agency)
        scope = scope_of(agency, direction, start, end, zone_name)
        counts = repo.counts(session, scope)
        times = repo.step_times(session, scope)
        late = repo.overdue_by_status(session, scope, now)
    by_status = {s: counts["status"].get(s, 0) for s in ReferralStatus}
    closed = by_status[CLOSED]
    completed = counts["outcome"].get("completed", 0)
    return Stats(
        agency=agency,
        direction=direction,
        from_=start,
        to=end,
        time_zone=zone_name,
        generated_at=now,
        total=sum(by_status.values()),
        by_status=by_status,
        by_urgency={u: counts["urgency"].get(u, 0) for u in URGENCIES},
        by_outcome=counts["outcome"],
        by_group=counts["group"],
        by_case_type=counts["case_type"],
        step_times=[
            StepTime(
                step=name,
                count=int(times[name]["count"] or 0),
                median_hours=_hours(times[name]["p50"]),
                p90_hours=_hours(times[name]["p90"]),
            )
            for name, _, _ in repo.STEPS
        ],
        successful_referral_rate=SuccessRate(
            completed=completed,
            closed=closed,
            rate=round(completed / closed, 4) if closed else None,
        ),
        overdue=Overdue(
            total=sum(late.values()), by_status={s: late.get(s, 0) for s in OPEN_STATUSES}
        ),
    )


def stats_for(
    ctx: ServiceContext,
    principal: Principal,
    *,
    direction: str | None,
    start: dt.date | None,
    end: dt.date | None,
) -> Stats:
    """The statistics of the caller's agency: only referrals it sent or received."""
    return compute(ctx, agency=principal.agency, direction=direction, start=start, end=end)
