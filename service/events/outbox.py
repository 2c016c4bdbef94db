"""The outbox's wake-up: events are written by the write path (`service.db.writes`)."""

from __future__ import annotations

from typing import Any

from service.db.writes import EVENTS_COMMITTED as committed
from service.db.writes import OUTBOX_CHANNEL as CHANNEL

__all__ = ["CHANNEL", "committed", "record"]


def record(w: Any, **event: Any) -> None:
    """Transitional: `w.record_event(**event)`."""
    w.record_event(**event)
