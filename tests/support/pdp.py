"""Bodies and stored bytes shared by the UU PDP tests (adults and children chosen explicitly)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.support import Api, person, referral_body

CONSENT_AT = dt.datetime(2026, 1, 10, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
GUARDIAN = {"full_name": "Sri Wahyuni", "relationship": "parent", "phone": "+62 813 111 222"}


def adult_body(to_agency: str = "KEMENSOS", **overrides: Any) -> dict[str, Any]:
    """A valid create body of an adult who consented themself."""
    body = referral_body(to_agency)
    body["subject"] = person(dt.date(1990, 5, 17))
    body["consent"]["obtained_at"] = CONSENT_AT.isoformat()
    body.update(overrides)
    return body


def child_body(
    to_agency: str = "KEMENSOS", guardian: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid create body of a 13-year-old, with a parent's consent."""
    body = adult_body(to_agency, groups=["ANAK_RENTAN"])
    body["subject"] = person(dt.date(2012, 3, 12))
    body["consent"].update(given_by="guardian", guardian=guardian or dict(GUARDIAN))
    body.update(overrides)
    return body


def created(api: Api, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = api.create(body, **headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def sqlite_bytes(url: str) -> bytes:
    """The SQLite database file and its write-ahead log, as stored.

    Read by another process: opening the database file in this one would drop the POSIX
    locks of this process's SQLite connections (SQLite's documented caveat).
    """
    path = Path(make_url(url).database or "")
    files = [str(p) for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    result = subprocess.run(["cat", *files], capture_output=True, check=True, timeout=60)
    return result.stdout


def pg_dump(url: str) -> bytes:
    pg = shutil.which("pg_dump")
    assert pg, "pg_dump is needed to inspect the PostgreSQL database"
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    result = subprocess.run(
        [pg, "--no-owner", f"--dbname={libpq}"],
        capture_output=True, check=False, timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def stored_bytes(url: str, backend: str) -> bytes:
    return sqlite_bytes(url) if backend == "sqlite" else pg_dump(url)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
