"""Column types shared by the tables."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.types import TypeDecorator


def utcnow() -> dt.datetime:
    """Now, in UTC, timezone-aware."""
    return dt.datetime.now(dt.UTC)


def new_id() -> uuid.UUID:
    """A random UUID for a new row."""
    return uuid.uuid4()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return general
        # Set, since this type defines process_result_value.
        assert general is not None
        parse = dt.datetime.fromisoformat

        def process(value: Any) -> Any:
            # SQLite keeps the UTC time as text without an offset: parsed with "+00:00"
            # appended, in one step where the general path parses, then calls replace(),
            # several times slower (timestamps are a tenth of a list page's row work).
            if value is None:
                return None
            try:
                return parse(value + "+00:00")
            except (TypeError, ValueError):
                return general(value)

        return process


JSONList = JSON
