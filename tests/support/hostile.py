"""Input of the kinds that once made the service answer 500, for the generated tests: times at
the ends of the calendar, cursors holding huge or non-ASCII numbers or such times, and NUL
characters (PostgreSQL text cannot hold them)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

from hypothesis import strategies as st

NUL = "\u0000"
EXTREME_TIMES = (
    "0001-01-01T00:00:00+01:00",  # before year 1 once converted to UTC
    "9999-12-31T23:59:59-01:00",  # after year 9999 once converted to UTC
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "1899-12-31T23:59:59+00:00",
    "3000-01-01T00:00:00-14:00",
)
EXTREME_DAYS = ("0001-01-01", "9999-12-31", "1899-12-31", "3000-01-01")


def opaque(payload: str) -> str:
    """Text encoded the way the service's cursors are (URL-safe base64 without padding)."""
    return base64.urlsafe_b64encode(payload.encode()).rstrip(b"=").decode()


_SOME_ID = str(uuid.UUID(int=1))
# Positions past any 64-bit integer, negative, not ASCII digits ("²" passes str.isdigit but
# not int()), with NUL characters, and cursors in the service's own shapes carrying those.
HOSTILE_CURSORS = (
    "9" * 19,
    "9" * 40,
    "-1",
    "\u00b2",
    "\u0661\u0662\u0663",
    NUL,
    f"1{NUL}",
    opaque(f"audit:{'9' * 19}"),
    opaque(f"audit:{'9' * 40}"),
    opaque("audit:-1"),
    opaque(json.dumps([10**30, _SOME_ID])),
    opaque(json.dumps(["2026-01-01T00:00:00+00:00", NUL])),
    *(opaque(json.dumps([t, _SOME_ID])) for t in EXTREME_TIMES),
)


def date_times() -> st.SearchStrategy[str]:
    """RFC 3339 times with offsets, now and then one at the ends of the calendar."""
    offsets = st.sampled_from(
        [dt.UTC, dt.timezone(dt.timedelta(hours=7)), dt.timezone(dt.timedelta(hours=-1))]
    )
    usual = st.datetimes(
        min_value=dt.datetime(1950, 1, 1), max_value=dt.datetime(2030, 12, 31), timezones=offsets
    ).map(dt.datetime.isoformat)
    return st.one_of(usual, st.sampled_from(EXTREME_TIMES))


def dates() -> st.SearchStrategy[str]:
    """ISO dates, now and then one at the ends of the calendar."""
    usual = st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2030, 12, 31))
    return st.one_of(usual.map(dt.date.isoformat), st.sampled_from(EXTREME_DAYS))


def with_nul() -> st.SearchStrategy[str]:
    """Short text with a NUL character somewhere in it."""
    text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=NUL), max_size=8)
    return st.tuples(text, text).map(lambda parts: NUL.join(parts))
