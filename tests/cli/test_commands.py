"""The `rujukan` command (CONTRACT §8), through its entry point in this process; a few runs of
the installed console script check what only a process of its own shows."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from service.app import create_app, openapi_spec
from service.auth.keys import load_keyset
from service.auth.scopes import ALL_SCOPES
from service.context import ServiceContext
from service.db import alembic_config
from tests.support.cli import Cli, assert_clean_failure, make_cli, run
from tests.support.databases import make_settings
from tests.support.operator import unprotected
from tests.support.tokens import token_status


@pytest.fixture(scope="module")
def cli(backend: str, new_database_url, tmp_path_factory: pytest.TempPathFactory) -> Cli:  # type: ignore[no-untyped-def]
    """A migrated database, set up with `rujukan migrate`."""
    cli = make_cli(backend, new_database_url, tmp_path_factory.mktemp("cli"))
    cli.ok("migrate")
    return cli


@pytest.fixture(scope="module")
def served(cli: Cli) -> Iterator[TestClient]:
    """The API on the CLI's database and keys."""
    ctx = ServiceContext.build(make_settings(cli.url, cli.key_dir))
    try:
        with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as http:
            yield http
    finally:
        ctx.db.dispose()


# --- help -------------------------------------------------------------------------------

COMMANDS = [
    [], ["serve"], ["migrate"], ["client"], ["client", "create"], ["client", "list"],
    ["client", "revoke"], ["client", "rotate-secret"], ["keys"], ["keys", "rotate"],
    ["keys", "rotate-data"], ["openapi"], ["openapi", "export"], ["audit"], ["audit", "verify"],
    ["audit", "head"], ["purge"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "rujukan")
def test_help(command: list[str], tmp_path: Path) -> None:
    # `rujukan --help` as the installed console script; the others in this process.
    cli = Cli(
        f"sqlite:///{tmp_path / 'never-created.db'}", tmp_path / "keys", tmp_path,
        process=not command,
    )
    result = cli.run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # Asking for help touches neither the database nor the keys.
    assert not (tmp_path / "never-created.db").exists()
    assert not (tmp_path / "keys").exists()


# --- migrate and clients -------------------------------------------------------------------


def test_before_migrate_commands_fail_clearly(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    cli = make_cli(backend, new_database_url, tmp_path)
    assert_clean_failure(cli.run("client", "list"), "migrate")


def schema_and_rows(url: str) -> dict[str, object]:
    """The tables, the migration revision and the rows `migrate` could add, of a database."""
    engine = create_engine(url)
    try:
        tables = sorted(inspect(engine).get_table_names())
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            counts = {
                table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
                for table in ("agreement", "agency", "api_client", "audit_entry")
            }
    finally:
        engine.dispose()
    return {"tables": tables, "revision": revision, "rows": counts}


def test_migrate_is_repeatable(cli: Cli) -> None:
    """A second `rujukan migrate` finds the database at the latest migration and adds nothing:
    no table, no revision, no second set of the dev agreements."""
    before = schema_and_rows(cli.url)
    assert before["rows"]["agreement"] > 0  # type: ignore[index]
    again = cli.ok("migrate")
    assert "database is at the latest migration" in again.stderr
    assert "registered agreements" not in again.stderr
    assert schema_and_rows(cli.url) == before


def test_migrate_says_from_which_migration_to_which(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    fresh = make_cli(backend, new_database_url, tmp_path)
    head = ScriptDirectory.from_config(alembic_config(fresh.url)).get_current_head()
    first = fresh.ok("migrate").stderr
    assert f"migrated the database from an empty database to the latest migration ({head})" in (
        first
    )
    again = fresh.ok("migrate").stderr
    assert f"database is at the latest migration ({head}); nothing to do" in again
    assert "migrated" not in again
    command.downgrade(alembic_config(fresh.url), "0008")
    upgraded = fresh.ok("migrate").stderr
    assert f"migrated the database from migration 0008 to the latest migration ({head})" in (
        upgraded
    )


def test_client_create_prints_credentials_that_work(cli: Cli, served: TestClient) -> None:
    # The installed console script: its stdout is the JSON alone.
    script = dataclasses.replace(cli, process=True)
    result = script.ok("client", "create", "--agency", "LPSK", "--name", "X",
                       "--scope", "referrals:read")
    created = json.loads(result.stdout)
    assert created["client_id"] and created["client_secret"]
    response = served.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": created["client_id"],
              "client_secret": created["client_secret"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "referrals:read"
    token = response.json()["access_token"]
    agencies = served.get("/v1/agencies", headers={"Authorization": f"Bearer {token}"})
    assert agencies.status_code == 200, agencies.text


def test_client_list_shows_clients_without_secrets(cli: Cli) -> None:
    created = cli.create_client("referrals:read referrals:write", agency="KEMENHAM")
    result = cli.ok("client", "list")
    listed = json.loads(result.stdout)
    mine = [c for c in listed if c["client_id"] == created["client_id"]]
    assert len(mine) == 1
    assert mine[0]["agency"] == "KEMENHAM"
    assert set(mine[0]["scope"].split()) == {"referrals:read", "referrals:write"}
    assert created["client_secret"] not in result.stdout
    assert "$argon2" not in result.stdout
    assert not any("secret" in key for c in listed for key in c)


def test_client_revoke_stops_new_tokens(cli: Cli, served: TestClient) -> None:
    created = cli.create_client()
    assert token_status(served, created["client_id"], created["client_secret"]) == 200
    cli.ok("client", "revoke", created["client_id"])
    assert token_status(served, created["client_id"], created["client_secret"]) == 401
    listed = json.loads(cli.ok("client", "list").stdout)
    assert [c["active"] for c in listed if c["client_id"] == created["client_id"]] == [False]


def test_client_revoke_of_an_unknown_client_fails(cli: Cli) -> None:
    assert_clean_failure(cli.run("client", "revoke", "no-such-client"), "no-such-client")


def test_client_rotate_secret(cli: Cli, served: TestClient) -> None:
    created = cli.create_client()
    rotated = json.loads(cli.ok("client", "rotate-secret", created["client_id"]).stdout)
    assert rotated["client_id"] == created["client_id"]
    assert token_status(served, created["client_id"], created["client_secret"]) == 401
    assert token_status(served, created["client_id"], rotated["client_secret"]) == 200


@pytest.mark.parametrize(
    ("args", "words"),
    [
        # Each error lists the values that would do.
        (["--agency", "NOPE", "--name", "X", "--scope", "referrals:read"],
         ["agency", "NOPE", "KEMENHAM, KEMENSOS, LPSK"]),
        (["--agency", "LPSK", "--name", "X", "--scope", "referrals:everything"],
         ["scope", "referrals:everything", " ".join(ALL_SCOPES)]),
        (["--agency", "LPSK", "--name", "X", "--scope", ""], ["scope", " ".join(ALL_SCOPES)]),
        (["--agency", "LPSK", "--name", " ", "--scope", "referrals:read"], ["name"]),
    ],
    ids=["unknown agency", "unknown scope", "no scope", "blank name"],
)
def test_client_create_refuses_bad_input(cli: Cli, args: list[str], words: list[str]) -> None:
    before = json.loads(cli.ok("client", "list").stdout)
    result = cli.run("client", "create", *args)
    assert_clean_failure(result, *words)
    assert "client_secret" not in result.stdout
    assert json.loads(cli.ok("client", "list").stdout) == before


# --- keys, openapi ------------------------------------------------------------------------


def test_keys_rotate_prints_the_added_kid(cli: Cli) -> None:
    cli.create_client()  # makes sure the key file exists
    key_file = cli.key_dir / "signing-keys.pem"
    before = [k.kid for k in load_keyset(key_file).keys]
    result = cli.ok("keys", "rotate")
    rotated = json.loads(result.stdout)
    after = load_keyset(key_file)
    assert rotated["added"] not in before
    assert after.current.kid == rotated["added"]
    assert set(before) <= {k.kid for k in after.keys}
    assert oct(key_file.stat().st_mode & 0o777) == oct(0o600)

    fresh = ServiceContext.build(make_settings(cli.url, cli.key_dir))
    try:
        with TestClient(create_app(ctx=fresh)) as http:
            kids = [k["kid"] for k in http.get("/.well-known/jwks.json").json()["keys"]]
        assert rotated["added"] in kids
    finally:
        fresh.db.dispose()


def test_openapi_export_prints_the_spec(tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'unused.db'}", tmp_path / "keys", tmp_path)
    result = cli.ok("openapi", "export")
    exported = json.loads(result.stdout)
    assert json.dumps(exported, sort_keys=True) == json.dumps(openapi_spec(), sort_keys=True)


# --- audit ----------------------------------------------------------------------------------


def tamper_with_audit_entry(url: str) -> int:
    """Change the action of the first audit entry behind the service's back; its id."""
    with unprotected(url) as session:
        entry_id = session.execute(text("SELECT MIN(id) FROM audit_entry")).scalar_one()
        session.execute(
            text("UPDATE audit_entry SET action = 'tampered' WHERE id = :id"), {"id": entry_id}
        )
    return int(entry_id)


def test_audit_verify_detects_tampering(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    cli = make_cli(backend, new_database_url, tmp_path)
    cli.ok("migrate")
    cli.create_client()
    cli.create_client()
    cli.ok("keys", "rotate")

    intact = cli.ok("audit", "verify")
    report = json.loads(intact.stdout)
    assert report["valid"] is True
    assert report["entries"] >= 3

    entry_id = tamper_with_audit_entry(cli.url)
    result = cli.run("audit", "verify")
    assert_clean_failure(result, f"audit entry {entry_id}")


def test_audit_entries_cannot_be_updated_through_the_database(cli: Cli) -> None:
    """The append-only trigger refuses an UPDATE (before anyone drops it)."""
    cli.create_client()
    if make_url(cli.url).get_backend_name() == "sqlite":
        conn = sqlite3.connect(make_url(cli.url).database or "")
        try:
            with pytest.raises(sqlite3.DatabaseError):
                conn.execute("UPDATE audit_entry SET action = 'x'")
        finally:
            conn.close()
    else:
        engine = create_engine(cli.url)
        try:
            with pytest.raises(DBAPIError), engine.begin() as conn:
                conn.execute(text("UPDATE audit_entry SET action = 'x'"))
        finally:
            engine.dispose()
    cli.ok("audit", "verify")


# --- prod refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["client", "list"]],
                         ids=lambda c: " ".join(c))
def test_prod_without_key_files_fails_with_a_clear_message(
    command: list[str], tmp_path: Path
) -> None:
    cli = Cli("postgresql+psycopg://rujukan:pw-do-not-print@127.0.0.1:9/r", tmp_path, tmp_path)
    env = {k: v for k, v in cli.env.items()
           if k not in ("RUJUKAN_SIGNING_KEY_FILE", "RUJUKAN_DATA_KEY_FILE")}
    env["RUJUKAN_ENV"] = "prod"
    # `serve` as the installed console script (it would serve in this process if it started).
    result = run(command, env, tmp_path, process=command == ["serve"])
    assert_clean_failure(result, "RUJUKAN_SIGNING_KEY_FILE", "RUJUKAN_DATA_KEY_FILE")
    output = result.stdout + result.stderr
    assert "pw-do-not-print" not in output
    assert "input_value" not in output  # no raw validation dump of the environment


def test_prod_refuses_keys_generated_for_dev(cli: Cli) -> None:
    cli.create_client()  # in dev: the key files are generated
    env = {**cli.env, "RUJUKAN_ENV": "prod"}
    result = run(["client", "list"], env, cli.workdir)
    assert_clean_failure(result, "generated")
