"""The benchmark's databases: created empty and migrated, seeded, copied for the baseline."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bench import seed
from bench.common import VAR, log

CLIENTS_PER_AGENCY = 2
SCOPES = "referrals:read referrals:write referrals:assess"


@dataclass
class Database:
    """One benchmark database: its URL and what was seeded into it."""

    kind: str
    url: str
    rows: int
    seed_seconds: float = 0.0
    baseline_copy_seconds: float = 0.0
    clients: list[dict[str, str]] = field(default_factory=list)


def server_env(url: str) -> dict[str, str]:
    """The environment of every process of a run on the database at `url`."""
    env = dict(os.environ)
    env.update(
        RUJUKAN_DATABASE_URL=url,
        RUJUKAN_ENV="dev",
        RUJUKAN_SIGNING_KEY_FILE=str(VAR / "signing-keys.pem"),
        RUJUKAN_DATA_KEY_FILE=str(VAR / "data-keys.json"),
        RUJUKAN_TOKEN_TTL_SECONDS="3600",  # noqa: S106 - a lifetime, not a secret
        # The per-client quota (600/minute by default) would turn a load test into a 429
        # test: 60,000 a minute for each of the 6 clients stays above what 2 workers serve
        # here, and the limiter still counts every request in its moving window.
        RUJUKAN_RATE_LIMIT="60000/minute",
        # As behind a TLS proxy: the guessers of the guessing scenario send X-Forwarded-For,
        # each guess from another address, so that the failed-authentication limits (kept at
        # their defaults) stop none of them and every secret is checked.
        RUJUKAN_PROXY_HEADERS="1",
        RUJUKAN_FORWARDED_ALLOW_IPS="127.0.0.1",
        # As in production: webhooks are sent by a `rujukan worker` process started beside
        # the web workers (see `processes.servers`), not by a thread inside each of them.
        RUJUKAN_EMBEDDED_DISPATCHER="0",
        BASELINE_DATABASE_URL=url,
    )
    return env


def postgres_admin_url() -> str | None:
    """The server to create benchmark databases on, if one answers."""
    url = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    try:
        import psycopg

        with psycopg.connect(seed.conninfo(url), connect_timeout=3):
            return url
    except Exception as exc:  # noqa: BLE001 - any failure means: skip PostgreSQL
        log(f"PostgreSQL not reachable ({type(exc).__name__}); benchmarking SQLite only")
        return None


def postgres_version(admin_url: str) -> int:
    """The server's version number, for the record of what the figures were measured on."""
    import psycopg

    with psycopg.connect(seed.conninfo(admin_url)) as conn:
        return conn.info.server_version


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{path}{suffix}").unlink()


def _recreate_postgres(admin_url: str, name: str, template: str | None = None) -> str:
    """Drop and create the database `name` (a copy of `template`, if given); its URL."""
    import psycopg

    with psycopg.connect(seed.conninfo(admin_url), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def fresh_database(kind: str, rows: int, admin_url: str | None) -> Database:
    """An empty, migrated database of this kind, named after its size."""
    from service.db import upgrade_to_head

    name = f"rujukan_bench_{rows}"
    if kind == "sqlite":
        path = VAR / f"{name}.db"
        _remove_sqlite(path)
        url = f"sqlite:///{path}"
    else:
        assert admin_url is not None
        url = _recreate_postgres(admin_url, name)
    os.environ.update(server_env(url))
    upgrade_to_head(url)
    return Database(kind=kind, url=url, rows=rows)


def copy_for_baseline(db: Database, admin_url: str | None) -> str:
    """An identical copy of the seeded database for the baseline; its URL.

    The two must not share rows: the baseline stores what it is sent without sealing it,
    and Rujukan would then meet unsealed rows in its lists (and the baseline's reads would
    depend on what Rujukan wrote before).
    """
    started = time.perf_counter()
    if db.kind == "sqlite":
        source = Path(make_url(db.url).database or "")
        target = source.with_name(source.stem + "_baseline.db")
        _remove_sqlite(target)
        with sqlite3.connect(source) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(source, target)
        url = f"sqlite:///{target}"
    else:
        assert admin_url is not None
        name = make_url(db.url).database
        url = _recreate_postgres(admin_url, f"{name}_baseline", template=name)
    db.baseline_copy_seconds = time.perf_counter() - started
    log(f"copied the database for the baseline in {db.baseline_copy_seconds:.1f} s")
    return url


def seed_database(db: Database) -> None:
    """Bulk-seed the referrals and register the benchmark's clients."""
    from service.auth import clients
    from service.config import Settings
    from service.context import ServiceContext

    settings = Settings()
    ctx = ServiceContext.build(settings)  # creates the dev keys on the first run
    try:
        log(f"seeding {db.rows:,} referrals into {db.kind}")
        db.seed_seconds = seed.seed_referrals(db.url, db.rows, str(settings.data_key_path))
        log(f"seeded in {db.seed_seconds:.1f} s")

        def register(w: Any) -> None:
            for agency in seed.AGENCIES:
                for n in range(CLIENTS_PER_AGENCY):
                    client, secret = clients.create_client(
                        w.session,
                        agency=agency,
                        name=f"bench {agency} {n}",
                        scope=SCOPES,
                        keyring=ctx.keyring,
                    )
                    w.append_audit(
                        action="client.create",
                        agency=None,
                        client_id=None,
                        detail={"client": client.client_id, "client_agency": agency},
                    )
                    db.clients.append(
                        {"agency": agency, "client_id": client.client_id, "secret": secret}
                    )

        ctx.db.write(register)
    finally:
        ctx.db.dispose()
