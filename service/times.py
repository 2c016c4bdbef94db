"""Time on the wire and days on the calendar.

Every timestamp the service answers with is UTC written with `Z`, whatever offset it came in
with: response fields are `Instant`, and the few timestamps written into plain dictionaries
(history and audit details, CLI output) go through `wire`. Days (statistics, reports,
agreements in force) are counted in an agency's own time zone, an IANA name kept on the
agency (`Asia/Jakarta` unless set).
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Annotated

from pydantic import PlainSerializer

from service.i18n import N_, Message, msg

# How far ahead of the service's clock an event time may lie and still be taken: the clocks
# of the agencies' systems are not exactly the service's.
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)

UTC = dt.UTC


def utc(value: dt.datetime) -> dt.datetime:
    """The same instant in UTC (an aware time; already-UTC values come back as they are)."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def wire(value: dt.datetime) -> str:
    """The instant as written on the wire: RFC 3339 in UTC with `Z`."""
    return utc(value).isoformat().replace("+00:00", "Z")


# A serializer rather than a validator: it also covers values a model holds without having
# validated them. Returning the UTC datetime keeps pydantic's own (compiled) ISO writer, which
# spells the UTC offset `Z`, and the schema's `format: date-time`.
Instant = Annotated[dt.datetime, PlainSerializer(utc, return_type=dt.datetime)]
"""A timestamp of a response: serialised in UTC with `Z`."""


# The message of a time in the future, with its values `now` and `minutes`: one template for
# the request validators (a pydantic error) and the actions (a field problem).
IN_THE_FUTURE = N_(
    "is in the future: the service's clock reads {now} and takes event times at most "
    "{minutes} minutes ahead of it"
)


def future_values(now: dt.datetime) -> dict[str, object]:
    """The values of IN_THE_FUTURE at `now`."""
    return {"now": wire(now), "minutes": int(MAX_CLOCK_SKEW.total_seconds() // 60)}


def future_problem(value: dt.datetime, now: dt.datetime) -> Message | None:
    """Why `value` cannot be taken as a time that has already happened, if it cannot."""
    if value > now + MAX_CLOCK_SKEW:
        return msg(IN_THE_FUTURE, **future_values(now))
    return None


class UnknownTimeZone(ValueError):
    """A time zone name that is not in the IANA database."""


def _unknown(name: str) -> UnknownTimeZone:
    return UnknownTimeZone(
        f"unknown time zone {name!r}: give an IANA name such as Asia/Jakarta (WIB), "
        "Asia/Makassar (WITA) or Asia/Jayapura (WIT)"
    )


@functools.lru_cache(maxsize=64)
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone of this name (UnknownTimeZone when there is none)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise _unknown(name) from exc


# Files of a system's zone directory that are not zones of the database.
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def check_zone(name: str) -> str:
    """The name unchanged if it names a zone of the IANA database (UnknownTimeZone otherwise)."""
    # Only the database's own names: a path, "localtime" or "UTC+7" would load, or not,
    # depending on the files of the machine.
    if name not in _zone_names():
        raise _unknown(name)
    zone(name)
    return name


def local_day(at: dt.datetime, zone_name: str) -> dt.date:
    """The calendar day the instant `at` falls on in the named zone."""
    return at.astimezone(zone(zone_name)).date()


def day_start(day: dt.date, zone_name: str) -> dt.datetime:
    """The instant (UTC) the day begins in the named zone."""
    return dt.datetime.combine(day, dt.time(), tzinfo=zone(zone_name)).astimezone(UTC)
