"""The databases of the test run: which backends, fresh databases on the configured
PostgreSQL server, and the settings a test service runs with."""

from __future__ import annotations

import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.config import Settings

POSTGRES_URL = os.environ.get("RUJUKAN_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])

# Rows of these tables are removed between tests; reference data, clients and the
# append-only audit trail stay.
MUTABLE_TABLES = (
    "webhook_attempt",
    "webhook_delivery",
    "webhook_subscription",
    "event",
    "idempotency_record",
    "referral_group",
    "referral_case_type",
    "referral_service",
    "referral_note",
    "referral_history",
    "referral",
    "agreement",
)


def create_postgres_database(base_url: str) -> tuple[str, str]:
    """A fresh, empty database on the configured server: (its URL, its name)."""
    url = make_url(base_url)
    name = f"rujukan_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"RUJUKAN_TEST_POSTGRES_URL is set but PostgreSQL is unusable: {exc}")
    finally:
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), name


def drop_postgres_database(base_url: str, name: str) -> None:
    admin = create_engine(make_url(base_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def drop_postgres_databases(base_url: str, names: list[str]) -> None:
    """Drop these databases all at once.

    Each DROP DATABASE waits for a checkpoint of the whole server; dropped together, the
    drops share their checkpoints, one after another each would wait for its own (seconds
    apiece on a busy server).
    """
    if names:
        with ThreadPoolExecutor(max_workers=min(len(names), 8)) as pool:
            list(pool.map(lambda name: drop_postgres_database(base_url, name), names))


def make_settings(url: str, key_dir: Path, **overrides: object) -> Settings:
    """Dev settings with key files in `key_dir`."""
    values: dict[str, object] = {
        "database_url": url,
        "env": "dev",
        "signing_key_file": key_dir / "signing-keys.pem",
        "data_key_file": key_dir / "data-keys.json",
        "token_ttl_seconds": 3600,
        # The suite sends thousands of requests as one client within minutes; the production
        # limits are tested in tests/test_rate_limits.py with their own, small values.
        "rate_limit": "100000/minute",
        "token_failure_limit": "10000/minute",
        "token_address_failure_limit": "10000/minute",
        # Tests start the webhook dispatcher themselves, when and where they need it.
        "embedded_dispatcher": False,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
