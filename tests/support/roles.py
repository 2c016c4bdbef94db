"""PostgreSQL roles for tests: an owner role, a service role and a database the owner owns,
as docs/deploying.md sets them up, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@dataclass(frozen=True)
class Roles:
    """Two roles of one database, and the URLs that log in as each."""

    owner: str
    service: str
    database: str
    owner_url: str
    service_url: str
    admin_url: str

    def as_admin(self, *statements: str) -> None:
        """Run statements as the superuser, in the roles' database."""
        _run(self.admin_url, *statements)


def _run(url: str, *statements: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


@contextmanager
def owner_and_service_roles(superuser_url: str) -> Iterator[Roles]:
    """Create the two roles (unique names) and a database owned by the owner; drop them all
    at the end."""
    suffix = uuid.uuid4().hex[:10]
    owner, service, database = f"rjk_owner_{suffix}", f"rjk_service_{suffix}", f"rjk_{suffix}"
    base = make_url(superuser_url)
    _run(
        superuser_url,
        f"CREATE ROLE {owner} LOGIN PASSWORD 'owner-{suffix}'",
        f"CREATE ROLE {service} LOGIN PASSWORD 'service-{suffix}'",
        f"CREATE DATABASE {database} OWNER {owner}",
    )

    def url(user: str | None, password: str | None) -> str:
        return base.set(
            username=user or base.username, password=password, database=database
        ).render_as_string(hide_password=False)

    try:
        yield Roles(
            owner=owner,
            service=service,
            database=database,
            owner_url=url(owner, f"owner-{suffix}"),
            service_url=url(service, f"service-{suffix}"),
            admin_url=url(None, base.password),
        )
    finally:
        _run(
            superuser_url,
            f"DROP DATABASE IF EXISTS {database} WITH (FORCE)",
            f"DROP ROLE IF EXISTS {service}",
            f"DROP ROLE IF EXISTS {owner}",
        )
