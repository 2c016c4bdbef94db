"""Column fields that many tables declare alike, each built afresh for its table."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, Uuid
from sqlmodel import Field

from service.db.types import UTCDateTime, new_id, utcnow


def uuid_primary_key() -> Any:
    """A UUID primary key, generated on creation."""
    return Field(default_factory=new_id, sa_column=Column(Uuid(), primary_key=True))


def utc_now() -> Any:
    """A required timezone-aware UTC timestamp that defaults to the moment of creation."""
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


def serial_primary_key() -> Any:
    """An integer primary key the database numbers on insert."""
    return Field(default=None, sa_column=Column(Integer(), primary_key=True))
