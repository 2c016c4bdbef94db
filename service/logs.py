"""JSON log lines carrying the request id."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from service.requestctx import request_id

_configured = False


class JsonFormatter(logging.Formatter):
    """One JSON object per line; never the record's arguments beyond the message."""

    _second = -1
    _stamp = ""

    def _timestamp(self, created: float) -> str:
        # One line per request: the formatted second is reused until the clock moves on.
        second = int(created)
        if second != self._second:
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", self.converter(second))
            self._second = second
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self._timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": request_id.get(),
            # Which worker process wrote it, when several serve behind one port.
            "pid": record.process,
        }
        for key in (
            "error_type",
            "method",
            "path",
            "route",
            "status",
            "duration_ms",
            "client",
            "agency",
            "peer",
            "referral_id",
        ):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc_type"] = record.exc_info[0].__name__
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# Six or more digits in a row, single spaces, dots or dashes between them allowed: a NIK (16
# digits), a phone or an account number, however it is written. A UUID's hex groups rarely
# match, and a request that names one by route is logged by its template anyway.
_DIGIT_RUN = re.compile(r"\d(?:[ .\-]?\d){5,}")
MASKED_DIGITS = "[digits]"


def loggable_path(scope: Mapping[str, Any]) -> str:
    """What a log line may say of a request's path: the route template when a route matched
    (`/v1/referrals/{referral_id}`, even if the id was a NIK), else the raw path with every
    long run of digits masked (a NIK typed into a URL stays out of the log)."""
    template = getattr(scope.get("route"), "path", None)
    if isinstance(template, str):
        return template
    return _DIGIT_RUN.sub(MASKED_DIGITS, str(scope.get("path") or ""))


def access_fields(scope: Mapping[str, Any]) -> dict[str, Any]:
    """Route template, calling client and agency, and peer address of a finished request.

    The route is the template (`/v1/referrals/{referral_id}`), never the raw path with its
    query: nothing a caller types about a person reaches the log through it.
    """
    route = scope.get("route")
    principal = (scope.get("state") or {}).get("principal")
    peer = scope.get("client")
    return {
        "route": getattr(route, "path", None),
        "client": getattr(principal, "client_id", None),
        "agency": getattr(principal, "agency", None),
        "peer": peer[0] if peer else None,
    }


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever sys.stderr is at the time of each record."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """Uvicorn's own log lines (start, stop, worker processes) as JSON lines too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"()": _StderrHandler, "formatter": "json"}},
        "loggers": {
            name: {"handlers": ["stderr"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure_logging(level: str = "INFO") -> None:
    """Send the service's logs to stderr as JSON lines (once per process)."""
    global _configured
    if _configured:
        return
    # The lines carry none of what the logging module gathers for every record by default
    # (the caller's file and line, the thread, the multiprocessing process name): the
    # logging HOWTO's "Optimization" section turns that gathering off this way.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("rujukan")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    _configured = True
