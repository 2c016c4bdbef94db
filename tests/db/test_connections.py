"""Pooled PostgreSQL connections that the server has closed are replaced, not used."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from service.context import ServiceContext
from tests.support import Api, assess_body, referral_body

_OTHERS = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"


def _terminate_sessions_of(url: str) -> int:
    """Close, from the server's side, every other session on the database, and wait until
    they are gone; how many there were."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            closed = len(conn.execute(text(f"SELECT pg_terminate_backend(pid) {_OTHERS}")).all())
            deadline = time.monotonic() + 10
            while conn.execute(text(f"SELECT count(*) {_OTHERS}")).scalar_one():
                assert time.monotonic() < deadline, "the sessions did not end"
                time.sleep(0.01)
            return closed
    finally:
        admin.dispose()


def test_requests_after_the_server_closed_the_pooled_connections_succeed(
    backend: str, ctx: ServiceContext, lpsk: Api, kemensos: Api
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no server to close connections")
    created = [lpsk.create(referral_body("KEMENSOS")) for _ in range(3)]
    assert [r.status_code for r in created] == [201, 201, 201]
    assert ctx.db.engine.pool.checkedin() > 0
    assert _terminate_sessions_of(ctx.settings.database_url) >= ctx.db.engine.pool.checkedin()

    # Every pooled connection is now closed: each of these requests checks one out.
    for response in created:
        read = lpsk.http.get(f"/v1/referrals/{response.json()['id']}", headers=lpsk.headers())
        assert read.status_code == 200, read.text
    assessed = kemensos.http.post(
        f"/v1/referrals/{created[0].json()['id']}/assess",
        json=assess_body("KEMENSOS"),
        headers=kemensos.headers(**{"If-Match": created[0].headers["etag"]}),
    )
    assert assessed.status_code == 200, assessed.text
    assert lpsk.create(referral_body("KEMENSOS")).status_code == 201
