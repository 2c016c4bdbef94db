"""Configuration (CONTRACT §2): defaults, environment variables, and what prod refuses."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.app import create_app
from service.audit.keys import AuditKeyring
from service.auth.keys import KeySet, new_key, save_keyset
from service.config import Settings
from service.context import ServiceContext
from service.crypto import GENERATED_MARKER, KeyFileError
from tests.support import Party
from tests.support.cli import cli_environment, one_line_error, run
from tests.support.databases import make_settings
from tests.support.tokens import jwt_parts

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No RUJUKAN_* variable from the surroundings leaks into Settings()."""
    for name in list(os.environ):
        if name.startswith("RUJUKAN_"):
            monkeypatch.delenv(name)
    return monkeypatch


# --- Settings ---------------------------------------------------------------------------


def test_contract_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///./var/rujukan.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.env == "dev"
    assert (settings.issuer, settings.audience) == ("rujukan", "rujukan-api")
    assert settings.allow_private_webhooks is True
    assert settings.trusted_issuers == []


def test_environment_variables_are_read(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("RUJUKAN_DATABASE_URL", "postgresql+psycopg://u@db:5432/r")
    clean_env.setenv("RUJUKAN_HOST", "10.1.2.3")
    clean_env.setenv("RUJUKAN_PORT", "9000")
    clean_env.setenv("RUJUKAN_ISSUER", "https://rujukan.example")
    clean_env.setenv("RUJUKAN_AUDIENCE", "api-x")
    clean_env.setenv("RUJUKAN_SIGNING_KEY_FILE", str(tmp_path / "s.pem"))
    clean_env.setenv("RUJUKAN_DATA_KEY_FILE", str(tmp_path / "d.json"))
    clean_env.setenv("RUJUKAN_WEBHOOK_ALLOW_PRIVATE", "0")
    clean_env.setenv(
        "RUJUKAN_TRUSTED_ISSUERS",
        json.dumps([{"iss": "https://idp.example", "jwks_url": "https://idp.example/jwks",
                     "audience": "rujukan", "agency_claim": "org", "agency": "LPSK",
                     "scopes": "referrals:read referrals:write"}]),
    )
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://u@db:5432/r"
    assert (settings.host, settings.port) == ("10.1.2.3", 9000)
    assert (settings.issuer, settings.audience) == ("https://rujukan.example", "api-x")
    assert settings.signing_key_path == tmp_path / "s.pem"
    assert settings.data_key_path == tmp_path / "d.json"
    assert settings.allow_private_webhooks is False
    assert settings.trusted_issuers[0].iss == "https://idp.example"
    assert settings.trusted_issuers[0].agency_claim == "org"
    assert settings.trusted_issuers[0].bound_agencies == {"LPSK"}
    assert settings.trusted_issuers[0].scopes == ["referrals:read", "referrals:write"]


def test_env_must_be_dev_or_prod(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RUJUKAN_ENV", "staging")
    with pytest.raises(ValidationError):
        Settings()


IDP = {"iss": "https://sso.lpsk.example", "jwks_url": "https://sso.lpsk.example/jwks",
       "audience": "rujukan-api"}  # fmt: skip
BAD_ISSUERS = {
    "no agency": ({**IDP, "scopes": "referrals:read"}, ["agency"]),
    "blank agency": ({**IDP, "agency": " ", "scopes": "referrals:read"}, ["agency"]),
    "empty agency list": ({**IDP, "agencies": [], "scopes": "referrals:read"}, ["agencies"]),
    "agency and agencies": (
        {**IDP, "agency": "LPSK", "agencies": ["LPSK"], "scopes": "referrals:read"}, ["agency"]
    ),
    "no scopes": ({**IDP, "agency": "LPSK"}, ["scopes"]),
    "empty scopes": ({**IDP, "agency": "LPSK", "scopes": ""}, ["scope"]),
    "unknown scope": (
        {**IDP, "agency": "LPSK", "scopes": "referrals:read referrals:everything"},
        ["referrals:everything"],
    ),
}


@pytest.mark.parametrize(("issuer", "words"), BAD_ISSUERS.values(), ids=BAD_ISSUERS.keys())
def test_a_trusted_issuer_must_be_bound_to_its_agency_and_scopes(
    issuer: dict[str, object], words: list[str]
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(env="dev", trusted_issuers=[issuer])
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("command", [["serve"], ["client", "list"], ["migrate"]])
def test_an_unbound_trusted_issuer_stops_every_command_with_one_line(
    command: list[str], tmp_path: Path
) -> None:
    unbound = json.dumps([{**IDP, "scopes": "referrals:read"}])
    env = cli_environment(
        f"sqlite:///{tmp_path / 'never-created.db'}", tmp_path / "keys",
        RUJUKAN_TRUSTED_ISSUERS=unbound,
    )
    # `serve` as the installed console script: it never runs in this process.
    result = run(command, env, tmp_path, process=command == ["serve"])
    one_line_error(result, "trusted_issuers", "agency")


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({}, ["RUJUKAN_SIGNING_KEY_FILE", "RUJUKAN_DATA_KEY_FILE"]),
        ({"RUJUKAN_SIGNING_KEY_FILE": "/keys/s.pem"}, ["RUJUKAN_DATA_KEY_FILE"]),
        ({"RUJUKAN_DATA_KEY_FILE": "/keys/d.json"}, ["RUJUKAN_SIGNING_KEY_FILE"]),
    ],
)
def test_prod_needs_both_key_files(
    clean_env: pytest.MonkeyPatch, given: dict[str, str], missing: list[str]
) -> None:
    clean_env.setenv("RUJUKAN_ENV", "prod")
    for name, value in given.items():
        clean_env.setenv(name, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    for name in missing:
        assert name in str(raised.value)


def test_prod_defaults_to_no_private_webhooks(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RUJUKAN_ENV", "prod")
    clean_env.setenv("RUJUKAN_SIGNING_KEY_FILE", "/keys/s.pem")
    clean_env.setenv("RUJUKAN_DATA_KEY_FILE", "/keys/d.json")
    assert Settings().allow_private_webhooks is False


# --- key files and ServiceContext -----------------------------------------------------


def build(settings: Settings) -> ServiceContext:
    ctx = ServiceContext.build(settings)
    ctx.db.dispose()
    return ctx


def test_dev_generates_both_key_files_privately(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "keys")
    assert not settings.signing_key_path.exists()
    assert not settings.data_key_path.exists()
    build(settings)
    for path in (settings.signing_key_path, settings.data_key_path):
        assert path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert GENERATED_MARKER in settings.signing_key_path.read_text()
    assert json.loads(settings.data_key_path.read_text())["origin"] == GENERATED_MARKER


def test_dev_keeps_existing_key_files(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "keys")
    first = build(settings).keyset.current.kid
    data_keys = settings.data_key_path.read_text()
    assert build(settings).keyset.current.kid == first
    assert settings.data_key_path.read_text() == data_keys


def test_prod_refuses_keys_generated_for_dev(database_url: str, tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    build(make_settings(database_url, key_dir))
    with pytest.raises(KeyFileError):
        ServiceContext.build(make_settings(database_url, key_dir, env="prod"))


def provision_signing_key(path: Path) -> None:
    """A signing key file as an operator provisions it (no dev origin marker)."""
    save_keyset(path, KeySet([new_key(generated=False)]))


def provision_data_key(path: Path) -> None:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    doc = {"active": "k1", "keys": {"k1": b64(secrets.token_bytes(32))},
           "index_key": b64(secrets.token_bytes(32))}
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


@pytest.mark.parametrize("generated", ["signing", "data"])
def test_prod_refuses_either_generated_key_file(
    database_url: str, tmp_path: Path, generated: str
) -> None:
    key_dir = tmp_path / "keys"
    build(make_settings(database_url, key_dir))  # both generated for dev
    settings = make_settings(database_url, key_dir, env="prod")
    if generated == "signing":
        provision_data_key(settings.data_key_path)
    else:
        provision_signing_key(settings.signing_key_path)
    with pytest.raises(KeyFileError):
        ServiceContext.build(settings)


def test_prod_refuses_absent_key_files_instead_of_generating(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path / "keys", env="prod")
    with pytest.raises(KeyFileError):
        ServiceContext.build(settings)
    assert not settings.signing_key_path.exists()
    assert not settings.data_key_path.exists()


def test_prod_refuses_an_absent_data_key_file(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "keys", env="prod")
    provision_signing_key(settings.signing_key_path)
    with pytest.raises(KeyFileError):
        ServiceContext.build(settings)
    assert not settings.data_key_path.exists()


def test_prod_starts_with_provisioned_keys(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "keys", env="prod")
    provision_signing_key(settings.signing_key_path)
    provision_data_key(settings.data_key_path)
    AuditKeyring.create_file(settings.audit_key_path, generated=False)
    ctx = build(settings)
    assert not ctx.keyset.generated
    assert not ctx.keyring.generated
    assert not ctx.audit_keys.generated


# --- issuer and audience are issued and required --------------------------------------------


@pytest.fixture
def other_issuer(ctx: ServiceContext) -> Iterator[TestClient]:
    """The same keys as the shared service, another issuer and audience."""
    settings = ctx.settings.model_copy(
        update={"issuer": "https://rujukan.example", "audience": "other-api"}
    )
    other = ServiceContext.build(settings)
    try:
        with TestClient(create_app(ctx=other), raise_server_exceptions=False) as http:
            yield http
    finally:
        other.db.dispose()


def test_issuer_and_audience_settings_apply_to_tokens(
    other_issuer: TestClient, http: TestClient, parties: dict[str, Party]
) -> None:
    party = parties["LPSK"]
    issued = other_issuer.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": party.client_id,
              "client_secret": party.secret},
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    claims = jwt_parts(token)[1]
    assert (claims["iss"], claims["aud"]) == ("https://rujukan.example", "other-api")

    def status(client: TestClient, bearer: str) -> int:
        return client.get("/v1/agencies", headers={"Authorization": f"Bearer {bearer}"}).status_code

    assert status(other_issuer, token) == 200
    # Same signing key, but the other service's issuer and audience are required.
    assert status(other_issuer, party.token) == 401
    assert status(http, token) == 401


def test_cors_origins_are_off_by_default_and_read_as_a_list(
    clean_env: pytest.MonkeyPatch,
) -> None:
    assert Settings().cors_origins == []
    clean_env.setenv("RUJUKAN_CORS_ORIGINS", "https://SIM.lpsk.go.id:443, http://localhost:5173")
    assert Settings().cors_origins == ["https://sim.lpsk.go.id", "http://localhost:5173"]
    clean_env.setenv("RUJUKAN_CORS_ORIGINS", '["https://siks.kemensos.go.id"]')
    assert Settings().cors_origins == ["https://siks.kemensos.go.id"]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("*", "'*' is not taken"),
        ("https://sim.lpsk.go.id/", "no path"),
        ("https://sim.lpsk.go.id/portal", "no path"),
        ("sim.lpsk.go.id", "not an origin"),
        ("ftp://sim.lpsk.go.id", "not an origin"),
    ],
)
def test_cors_origins_must_be_exact_origins(
    clean_env: pytest.MonkeyPatch, value: str, says: str
) -> None:
    clean_env.setenv("RUJUKAN_CORS_ORIGINS", value)
    with pytest.raises(ValidationError, match=says):
        Settings()
