"""Least privilege on PostgreSQL: the service's role cannot rewrite the audit trail.

Deployed as docs/deploying.md says: an owner role owns the database, `rujukan migrate` runs with its
URL (RUJUKAN_MIGRATION_DATABASE_URL) and grants the service's role (RUJUKAN_DATABASE_URL)
what it needs. As the service's role, changing, removing or unprotecting audit entries is
refused by PostgreSQL's privileges, not only by the triggers that role could otherwise
disable; and the whole service still works as that role. A role that could rewrite the
trail (a superuser, an owner) is refused in prod.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

from service.app import create_app
from service.audit import trail
from service.auth import clients
from service.context import ServiceContext
from service.db import alembic_config
from service.events.dispatcher import Dispatcher
from service.models import metadata
from service.retention import purge
from tests.support import (
    ALL_SCOPES,
    Api,
    Party,
    assess_body,
    ok,
    referral_body,
    service_body,
    writer_session,
)
from tests.support.cli import run
from tests.support.databases import POSTGRES_URL, make_settings
from tests.support.roles import Roles, owner_and_service_roles

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="database roles are PostgreSQL's")

INSUFFICIENT_PRIVILEGE = "42501"


def rujukan(
    *args: str, database_url: str, key_dir: Path, env: str = "dev", **more: str
) -> subprocess.CompletedProcess[str]:
    """The `rujukan` command with these settings (`more`: further RUJUKAN_* variables)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RUJUKAN_")}
    environment.update(
        RUJUKAN_DATABASE_URL=database_url,
        RUJUKAN_ENV=env,
        RUJUKAN_SIGNING_KEY_FILE=str(key_dir / "signing-keys.pem"),
        RUJUKAN_DATA_KEY_FILE=str(key_dir / "data-keys.json"),
        **{f"RUJUKAN_{name.upper()}": value for name, value in more.items()},
    )
    # `serve` as the installed console script: it never runs in this process.
    return run(args, environment, key_dir.parent, process=args[0] == "serve")


def migrate(roles: Roles, key_dir: Path, env: str = "dev") -> subprocess.CompletedProcess[str]:
    """`rujukan migrate` as docs/deploying.md deploys it: the owner's URL and the service's."""
    return rujukan(
        "migrate", database_url=roles.service_url, key_dir=key_dir, env=env,
        migration_database_url=roles.owner_url,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The single `error:` line of a refused command, which names each of `words`."""
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def run_as(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def scalar(url: str, query: str, **params: Any) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(query), params).scalar_one()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Roles, Path]]:
    """Two roles and their database, migrated with `rujukan migrate`: (roles, key dir)."""
    key_dir = tmp_path_factory.mktemp("roles") / "keys"
    with owner_and_service_roles(POSTGRES_URL or "") as roles:
        # PostgreSQL before 15 lets every role create tables in the public schema.
        roles.as_admin("GRANT CREATE ON SCHEMA public TO PUBLIC")
        result = migrate(roles, key_dir)
        assert result.returncode == 0, result.stderr
        yield roles, key_dir


@pytest.fixture(scope="module")
def as_service(deployed: tuple[Roles, Path]) -> Iterator[tuple[ServiceContext, TestClient]]:
    """The app, connected as the service's role."""
    roles, key_dir = deployed
    ctx = ServiceContext.build(make_settings(roles.service_url, key_dir))
    try:
        with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as http:
            yield ctx, http
    finally:
        ctx.db.dispose()


@pytest.fixture(scope="module")
def agencies(as_service: tuple[ServiceContext, TestClient]) -> dict[str, Api]:
    ctx, http = as_service
    return {
        code: Api(http, Party.register(ctx, http, code, ALL_SCOPES))
        for code in ("LPSK", "KEMENSOS")
    }


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET action = 'forged'",
        "DELETE FROM audit_entry",
        "TRUNCATE audit_entry",
        "ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only",
        "ALTER TABLE audit_entry DISABLE TRIGGER ALL",
        "DROP TRIGGER audit_entry_append_only ON audit_entry",
        "DROP TABLE audit_entry CASCADE",
        "CREATE TABLE audit_entry_copy (id integer)",
    ],
)
def test_the_service_role_may_not_change_or_unprotect_the_audit_trail(
    deployed: tuple[Roles, Path], agencies: dict[str, Api], statement: str
) -> None:
    roles, _ = deployed
    agencies["LPSK"].create_ok()  # at least one entry, appended by the service as its role
    before = scalar(roles.admin_url, "SELECT count(*) FROM audit_entry")
    with pytest.raises(DBAPIError) as refused:
        run_as(roles.service_url, statement)
    assert refused.value.orig.sqlstate == INSUFFICIENT_PRIVILEGE, refused.value.orig  # type: ignore[union-attr]
    assert scalar(roles.admin_url, "SELECT count(*) FROM audit_entry") == before
    triggers = scalar(
        roles.admin_url,
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_entry'::regclass"
        " AND NOT tgisinternal AND tgenabled <> 'D'",
    )
    assert triggers == 2


def test_the_service_works_as_its_role(
    deployed: tuple[Roles, Path],
    as_service: tuple[ServiceContext, TestClient],
    agencies: dict[str, Api],
) -> None:
    roles, _ = deployed
    ctx, http = as_service
    lpsk, kemensos = agencies["LPSK"], agencies["KEMENSOS"]
    assert ok(http.get("/readyz")) == {"status": "ready"}

    # A webhook to a closed port: the worker records its failed attempt.
    subscription = ok(
        kemensos.http.post(
            "/v1/webhook-subscriptions",
            json={"url": "http://127.0.0.1:9/hook", "event_types": ["referral.created"]},
            headers=kemensos.headers(),
        ),
        201,
    )
    body = referral_body()
    created = ok(lpsk.create(body, **{"Idempotency-Key": "roles-1"}), 201)
    assert ok(lpsk.create(body, **{"Idempotency-Key": "roles-1"}), 201)["id"] == created["id"]
    rid = created["id"]
    incoming = ok(kemensos.list(direction="incoming"))["items"]
    assert rid in [item["id"] for item in incoming]
    ok(kemensos.act(rid, "assess", assess_body()))
    ok(kemensos.act(rid, "serve", service_body()))
    ok(kemensos.act(rid, "services", service_body()))
    ok(lpsk.http.post(f"/v1/referrals/{rid}/notes", json={"text": "Called."},
                      headers=lpsk.headers()), 201)  # fmt: skip
    ok(kemensos.act(rid, "close", {"outcome": "completed"}))
    assert ok(lpsk.history(rid))
    assert ok(kemensos.http.get("/v1/events", headers=kemensos.headers()))["items"]
    assert ok(lpsk.http.get("/v1/audit", headers=lpsk.headers()))["items"]
    ok(kemensos.http.get("/v1/stats", headers=kemensos.headers()))
    nik = body["subject"]["nik"]
    ok(lpsk.http.get("/v1/subjects/export", params={"nik": nik}, headers=lpsk.headers()))

    dispatcher = Dispatcher(ctx)
    try:
        assert dispatcher.run_once() == 1
    finally:
        dispatcher.close()
    path = f"/v1/webhook-subscriptions/{subscription['id']}"
    deliveries = ok(kemensos.http.get(f"{path}/deliveries", headers=kemensos.headers()))
    assert len(deliveries["items"][0]["attempts"]) == 1
    assert kemensos.http.delete(path, headers=kemensos.headers()).status_code == 204

    # Retention: the referral closed long ago (as the owner would find it years later).
    run_as(roles.owner_url, f"UPDATE referral SET closed_at = '2020-01-01' WHERE id = '{rid}'")  # noqa: S608
    report = purge(ctx, dt.date.today())
    assert (report["referrals"], report["idempotency_records"]) == (1, 1)

    with writer_session(ctx.db) as session:
        clients.revoke_client(session, kemensos.party.client_id)
        session.commit()
    with ctx.db.reader() as session:
        count, bad, reason = trail.verify_chain(session)
    assert (bad, reason) == (None, None) and count > 0


def test_the_service_role_holds_what_the_table_definitions_say_and_nothing_else(
    deployed: tuple[Roles, Path],
) -> None:
    roles, _ = deployed
    engine = create_engine(roles.owner_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT table_name, privilege_type FROM information_schema.table_privileges"
                    " WHERE grantee IN (:role, 'PUBLIC') AND table_schema = current_schema()"
                ),
                {"role": roles.service},
            ).all()
            sequences = set(inspect(conn).get_sequence_names())
            usable = {
                name
                for name in sequences
                if conn.execute(
                    text("SELECT has_sequence_privilege(:role, :name, 'USAGE')"),
                    {"role": roles.service, "name": name},
                ).scalar_one()
            }
            creates = conn.execute(
                text(
                    "SELECT has_schema_privilege(:role, 'public', 'CREATE'),"
                    " has_schema_privilege('public', 'public', 'CREATE')"
                ),
                {"role": roles.service},
            ).one()
    finally:
        engine.dispose()
    held: dict[str, set[str]] = {}
    for table, privilege in rows:
        held.setdefault(table, set()).add(privilege)
    expected = {name: {"SELECT", "INSERT", "UPDATE", "DELETE"} for name in metadata.tables}
    expected["audit_entry"] = {"SELECT", "INSERT"}
    expected["alembic_version"] = {"SELECT"}
    assert held == expected
    assert sequences and usable == sequences
    assert tuple(creates) == (False, False)


def test_every_migrate_grants_on_the_tables_that_migrations_created(tmp_path: Path) -> None:
    """The grants are no migration's: `rujukan migrate` gives them after every upgrade, so a
    table that a later migration adds is usable at once, and a lost grant comes back."""
    key_dir = tmp_path / "keys"
    with owner_and_service_roles(POSTGRES_URL or "") as roles:
        assert migrate(roles, key_dir).returncode == 0
        # A migration applied outside `rujukan migrate`: its tables have no grants yet.
        config = alembic_config(roles.owner_url)
        command.downgrade(config, "0002")
        command.upgrade(config, "head")
        query = "SELECT has_table_privilege(:role, 'webhook_subscription', 'INSERT')"
        assert scalar(roles.owner_url, query, role=roles.service) is False

        again = migrate(roles, key_dir)
        assert again.returncode == 0, again.stderr
        assert scalar(roles.owner_url, query, role=roles.service) is True


def test_a_serving_containers_migrate_is_harmless_and_cannot_migrate(tmp_path: Path) -> None:
    """Only the service's URL, in prod: `rujukan migrate` finds nothing to do once the owner
    has migrated, and before that says which URL it needs."""
    key_dir = tmp_path / "keys"
    with owner_and_service_roles(POSTGRES_URL or "") as roles:
        assert rujukan("keys", "init", database_url=roles.service_url, key_dir=key_dir,
                       env="prod").returncode == 0  # fmt: skip
        early = rujukan("migrate", database_url=roles.service_url, key_dir=key_dir, env="prod")
        one_error_line(early, "RUJUKAN_MIGRATION_DATABASE_URL")
        assert migrate(roles, key_dir, env="prod").returncode == 0
        late = rujukan("migrate", database_url=roles.service_url, key_dir=key_dir, env="prod")
        assert late.returncode == 0, late.stderr
        assert "warning" not in late.stderr


def test_prod_refuses_one_role_that_owns_the_audit_trail(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    with owner_and_service_roles(POSTGRES_URL or "") as roles:
        assert rujukan("keys", "init", database_url=roles.owner_url, key_dir=key_dir,
                       env="prod").returncode == 0  # fmt: skip
        # One URL, the owner's: refused before it changes anything, so that an upgrade that
        # stops here leaves the running version serving.
        refused = rujukan("migrate", database_url=roles.owner_url, key_dir=key_dir, env="prod")
        one_error_line(refused, roles.owner, "RUJUKAN_MIGRATION_DATABASE_URL")
        assert scalar(roles.owner_url, "SELECT to_regclass('alembic_version') IS NULL") is True

        assert migrate(roles, key_dir, env="prod").returncode == 0
        for command_line in (["serve"], ["worker", "--once"]):
            as_owner = rujukan(*command_line, database_url=roles.owner_url, key_dir=key_dir,
                               env="prod")  # fmt: skip
            one_error_line(as_owner, roles.owner, "audit_entry", "RUJUKAN_MIGRATION_DATABASE_URL")
        as_superuser = rujukan("serve", database_url=roles.admin_url, key_dir=key_dir, env="prod")
        one_error_line(as_superuser, "superuser")
        # The service's own role starts (the worker, once, as the cheaper proof).
        served = rujukan("worker", "--once", database_url=roles.service_url, key_dir=key_dir,
                         env="prod")  # fmt: skip
        assert served.returncode == 0, served.stderr


def test_dev_warns_about_a_role_that_owns_the_audit_trail(deployed: tuple[Roles, Path]) -> None:
    roles, key_dir = deployed
    result = rujukan("worker", "--once", database_url=roles.owner_url, key_dir=key_dir)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "audit_entry" in result.stderr


def test_migrate_refuses_a_service_role_that_belongs_to_the_owner(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    with owner_and_service_roles(POSTGRES_URL or "") as roles:
        roles.as_admin(f"GRANT {roles.owner} TO {roles.service}")
        one_error_line(migrate(roles, key_dir), roles.service, "audit_entry")
