"""The `rujukan` command, run for real in a subprocess (CONTRACT §8)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from service.app import create_app, openapi_spec
from service.auth.keys import load_keyset
from service.context import ServiceContext
from tests.support import RUJUKAN, cli_environment
from tests.support.databases import make_settings


@dataclass
class Cli:
    """The CLI bound to one database and key directory."""

    url: str
    key_dir: Path
    workdir: Path

    @property
    def env(self) -> dict[str, str]:
        return cli_environment(self.url, self.key_dir)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(RUJUKAN), *args],
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def create_client(self, scope: str = "referrals:read", agency: str = "LPSK") -> dict[str, str]:
        result = self.ok("client", "create", "--agency", agency, "--name", "X", "--scope", scope)
        return json.loads(result.stdout)  # type: ignore[no-any-return]


def assert_clean_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    for word in words:
        assert word.lower() in output.lower(), output


def make_cli(backend: str, new_database_url, tmp_path: Path) -> Cli:  # type: ignore[no-untyped-def]
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Cli(new_database_url(backend), tmp_path / "keys", workdir)


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


def token_status(http: TestClient, client_id: str, secret: str) -> int:
    return http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id,
              "client_secret": secret},
    ).status_code


# --- help -------------------------------------------------------------------------------

COMMANDS = [
    [], ["serve"], ["migrate"], ["client"], ["client", "create"], ["client", "list"],
    ["client", "revoke"], ["client", "rotate-secret"], ["keys"], ["keys", "rotate"],
    ["keys", "rotate-data"], ["openapi"], ["openapi", "export"], ["audit"], ["audit", "verify"],
    ["audit", "head"], ["purge"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "rujukan")
def test_help(command: list[str], tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'never-created.db'}", tmp_path / "keys", tmp_path)
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


def test_migrate_is_repeatable(cli: Cli) -> None:
    cli.ok("migrate")


def test_client_create_prints_credentials_that_work(cli: Cli, served: TestClient) -> None:
    result = cli.ok("client", "create", "--agency", "LPSK", "--name", "X",
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
        (["--agency", "NOPE", "--name", "X", "--scope", "referrals:read"], ["agency", "NOPE"]),
        (["--agency", "LPSK", "--name", "X", "--scope", "referrals:everything"],
         ["scope", "referrals:everything"]),
        (["--agency", "LPSK", "--name", "X", "--scope", ""], ["scope"]),
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
    if make_url(url).get_backend_name() == "sqlite":
        conn = sqlite3.connect(make_url(url).database or "")
        try:
            entry_id = conn.execute("SELECT MIN(id) FROM audit_entry").fetchone()[0]
            conn.execute("DROP TRIGGER audit_entry_no_update")
            conn.execute("UPDATE audit_entry SET action = 'tampered' WHERE id = ?", (entry_id,))
            conn.commit()
        finally:
            conn.close()
        return int(entry_id)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            entry_id = conn.execute(text("SELECT MIN(id) FROM audit_entry")).scalar_one()
            conn.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER USER"))
            conn.execute(text("UPDATE audit_entry SET action = 'tampered' WHERE id = :id"),
                         {"id": entry_id})
    finally:
        engine.dispose()
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
    result = subprocess.run(
        [str(RUJUKAN), *command], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60, check=False,
    )
    assert_clean_failure(result, "RUJUKAN_SIGNING_KEY_FILE", "RUJUKAN_DATA_KEY_FILE")
    output = result.stdout + result.stderr
    assert "pw-do-not-print" not in output
    assert "input_value" not in output  # no raw validation dump of the environment


def test_prod_refuses_keys_generated_for_dev(cli: Cli) -> None:
    cli.create_client()  # in dev: the key files are generated
    env = {**cli.env, "RUJUKAN_ENV": "prod"}
    result = subprocess.run(
        [str(RUJUKAN), "client", "list"], env=env, cwd=cli.workdir, capture_output=True,
        text=True, timeout=60, check=False,
    )
    assert_clean_failure(result, "generated")
