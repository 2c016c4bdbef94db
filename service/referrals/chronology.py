"""Event times a request carries, checked against the referral's own history.

A service cannot start before the referral was made or assessed, consent cannot be withdrawn
before it was obtained, and nothing has happened yet that lies in the future. Times the
service stamped itself (creation, assessment) are compared with a tolerance of
MAX_CLOCK_SKEW, since the caller's clock and the service's differ a little; a time the
caller sent is compared with another time the caller sent exactly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from service.i18n import N_, msg
from service.referrals.models import Referral
from service.referrals.validation import Problems
from service.times import MAX_CLOCK_SKEW, future_problem, wire


@dataclass(frozen=True)
class Earlier:
    """An event of the referral that a new event time may not precede."""

    what: str  # completes "is before ...", e.g. "the referral was created" (a msgid)
    at: dt.datetime
    stamped_by_service: bool = True


def event_time_problems(
    loc: list[str | int],
    value: dt.datetime,
    earlier: Iterable[Earlier],
    now: dt.datetime,
) -> Problems:
    """The problems of one event time: in the future, or before an event it must follow."""
    found: Problems = []
    if (problem := future_problem(value, now)) is not None:
        found.append((loc, problem))
    for event in earlier:
        allowed = event.at - MAX_CLOCK_SKEW if event.stamped_by_service else event.at
        if value < allowed:
            found.append(
                (loc, msg("is before {event} ({at})", event=msg(event.what), at=wire(event.at)))
            )
            break
    return found


def _stamp(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def service_start_follows(row: Referral) -> list[Earlier]:
    """What a service's `started_at` may not precede: the assessment, then the creation.

    The latest first, so that a time before both names the assessment, the step it skips.
    """
    found = []
    assessed = _stamp((row.assessment or {}).get("assessed_at"))
    if assessed is not None:
        found.append(Earlier(N_("the referral was assessed"), assessed))
    found.append(Earlier(N_("the referral was created"), row.created_at))
    return found


def withdrawal_follows(row: Referral) -> list[Earlier]:
    """What a consent withdrawal's `withdrawn_at` may not precede: the consent itself."""
    obtained = _stamp(row.consent.get("obtained_at"))
    if obtained is None:
        return []
    return [Earlier(N_("the consent was obtained"), obtained, stamped_by_service=False)]
