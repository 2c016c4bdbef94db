"""Rules every request input follows, whatever its field: text without NUL characters, dates
and times in a range the service can count with, and a bounded answer to a body full of
unknown fields.

Request bodies derive from `Input`, which applies the rules to each of their fields (nested
bodies derive from it too); query parameters use the `Day` and `Timestamp` types; cursors call
`check_instant` on the time they carry.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from service.errors import MAX_FIELD_ERRORS
from service.i18n import N_, msg
from service.validation_messages import custom_error

# PostgreSQL text cannot hold U+0000 (SQLite can, which hid it), and no field has a use for it.
NUL = "\x00"

# Every date the service takes lies in these years: wide enough for any birth date and any
# real event, far enough inside the years Python and the databases can represent (1 to 9999)
# that time-zone conversion and day or year arithmetic (deadlines, statistics windows, ages,
# retention) can never leave them.
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2999, 12, 31)

_DATE_TIME_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ]")


def contains_nul(*values: str | None) -> bool:
    """True if any of the texts holds a NUL character (for inputs that are not a body)."""
    return any(value is not None and NUL in value for value in values)


def _refused(kind: str) -> PydanticCustomError:
    if kind == "nul":
        return custom_error("nul_character", N_("must not contain the NUL character (U+0000)"))
    return custom_error(
        "date_out_of_range" if kind == "date" else "datetime_out_of_range",
        N_("must be from {first} to {last}"),
        {"first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
    )


def check_day(value: dt.date) -> dt.date:
    """The date unchanged if it lies from FIRST_DAY to LAST_DAY."""
    if not FIRST_DAY <= value <= LAST_DAY:
        raise _refused("date")
    return value


def check_instant(value: dt.datetime) -> dt.datetime:
    """The time unchanged if it lies from FIRST_DAY to LAST_DAY, counted in UTC."""
    # Its own year first: far outside the range, converting to UTC could itself overflow.
    if not FIRST_DAY.year - 1 <= value.year <= LAST_DAY.year + 1:
        raise _refused("datetime")
    utc = value.astimezone(dt.UTC) if value.tzinfo is not None else value
    if not FIRST_DAY <= utc.date() <= LAST_DAY:
        raise _refused("datetime")
    return value


def _problem(value: Any) -> PydanticCustomError | None:
    """What is wrong with one validated value by the rules above, if anything."""
    try:
        if isinstance(value, str):
            if NUL in value:
                return _refused("nul")
        elif isinstance(value, dt.datetime):
            check_instant(value)
        elif isinstance(value, dt.date):
            check_day(value)
    except PydanticCustomError as exc:
        return exc
    return None


def field_problems(fields: dict[str, Any]) -> list[InitErrorDetails]:
    """Every field value (or list item) that breaks the rules above, with its location."""
    found: list[InitErrorDetails] = []
    # Runs for every body, so the common case (plain text, nothing wrong) costs a type test
    # and a substring search per value; nested bodies check themselves.
    for name, value in fields.items():
        kind = type(value)
        if kind is str:
            if NUL in value:
                found.append(InitErrorDetails(type=_refused("nul"), loc=(name,), input=value))
        elif kind is list or kind is tuple:
            for index, item in enumerate(value):
                if type(item) is str and NUL not in item:
                    continue
                if (problem := _problem(item)) is not None:
                    found.append(InitErrorDetails(type=problem, loc=(name, index), input=item))
        elif (kind is dt.datetime or kind is dt.date) and (problem := _problem(value)) is not None:
            found.append(InitErrorDetails(type=problem, loc=(name,), input=value))
    return found


def _date_time_text(value: Any) -> Any:
    # Pydantic would also read a number (or a numeric string) as seconds since 1970; the spec
    # promises an RFC 3339 string, and a stray 0 must not become 1970-01-01.
    if isinstance(value, dt.datetime) or (isinstance(value, str) and _DATE_TIME_TEXT.match(value)):
        return value
    raise ValueError(
        msg("must be an RFC 3339 date-time with an offset, e.g. 2026-11-20T09:00:00+07:00")
    )


Timestamp = Annotated[
    AwareDatetime, BeforeValidator(_date_time_text), AfterValidator(check_instant)
]
Day = Annotated[dt.date, AfterValidator(check_day)]


class Input(BaseModel):
    """Base of every request body: unknown fields refused, every field checked as above."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _few_unknown_fields(cls, data: Any) -> Any:
        # Each unknown field would otherwise be one error, built in Python, listed, then cut
        # down to MAX_FIELD_ERRORS: 60,000 of them took a second. Past the cap, one error.
        if isinstance(data, dict) and len(data) > MAX_FIELD_ERRORS:
            known = {name for name in cls.model_fields} | {
                field.alias for field in cls.model_fields.values() if field.alias
            }
            unknown = sum(1 for key in data if key not in known)
            if unknown > MAX_FIELD_ERRORS:
                raise custom_error(
                    "extra_forbidden",
                    N_("{count} fields are not allowed here; remove the unknown fields"),
                    {"count": unknown},
                )
        return data

    @model_validator(mode="after")
    def _fields_follow_the_rules(self) -> Self:
        # Once per body rather than once per field: the fields' own types are checked by the
        # compiled validator, and a Python call per field doubled the time a referral took.
        # A ValidationError raised here keeps each field's location (pydantic-core nests it).
        found = field_problems(self.__dict__)
        if found:
            raise ValidationError.from_exception_data(type(self).__name__, found)
        return self
