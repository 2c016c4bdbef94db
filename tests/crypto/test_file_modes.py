"""The SQLite database (with its WAL and shared-memory files) and every key file are readable by
the service's user alone (0600), in directories only it may enter (0700): on a shared host,
another account must not copy the database or a key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.config import Settings
from service.context import ServiceContext
from service.db import upgrade_to_head
from tests.support.databases import make_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """A umask that leaves new files readable by everyone, as most systems have."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def write_one_entry(ctx: ServiceContext) -> None:
    ctx.db.write(lambda w: w.append_audit(action="test.entry", agency=None, client_id=None))


def assert_private(settings: Settings, database: Path) -> None:
    """The database's three files and its lock files, then every key file: 0600, each in a
    0700 directory."""
    lock_files = (Path(f"{database}.migrate-lock"), Path(f"{database}.writer-lock"))
    for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm"), *lock_files):
        assert mode(path) == 0o600, path
        assert mode(path.parent) == 0o700, path.parent
    for path in (settings.signing_key_path, settings.data_key_path, settings.audit_key_path):
        assert mode(path) == 0o600, path
        assert mode(path.parent) == 0o700, path.parent


def test_the_database_and_the_key_files_are_private(tmp_path: Path) -> None:
    database = tmp_path / "data" / "rujukan.db"
    url = f"sqlite:///{database}"
    upgrade_to_head(url)
    settings = make_settings(url, tmp_path / "keys")
    ctx = ServiceContext.build(settings)
    try:
        write_one_entry(ctx)
        assert_private(settings, database)  # while the database is open
    finally:
        ctx.db.dispose()


def test_the_default_var_directory_is_tightened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`./var` is the service's own: made 0755 by earlier versions, it is made 0700, and a
    database file left readable by others is tightened too."""
    monkeypatch.chdir(tmp_path)
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    os.chmod(var, 0o755)  # noqa: S103 - as earlier versions left it
    database = var / "rujukan.db"
    database.touch(mode=0o644)
    os.chmod(database, 0o644)
    settings = Settings(database_url="sqlite:///./var/rujukan.db", embedded_dispatcher=False)
    upgrade_to_head(settings.database_url)
    ctx = ServiceContext.build(settings)
    try:
        write_one_entry(ctx)
        assert mode(var) == 0o700
        assert_private(settings, Path("var/rujukan.db"))
    finally:
        ctx.db.dispose()


def test_an_operators_directory_is_left_alone_but_prod_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from service.audit.keys import AuditKeyring
    from service.auth.keys import KeySet, new_key, save_keyset
    from service.crypto import DataKeyring

    shared = tmp_path / "secrets"
    shared.mkdir()
    os.chmod(shared, 0o755)  # noqa: S103 - the operator's own choice
    settings = make_settings(f"sqlite:///{tmp_path / 'r.db'}", shared, env="prod")
    save_keyset(settings.signing_key_path, KeySet([new_key()]))
    DataKeyring.create_file(settings.data_key_path, generated=False)
    AuditKeyring.create_file(settings.audit_key_path, generated=False)
    assert mode(shared) == 0o755  # the operator's choice is not changed behind their back
    upgrade_to_head(settings.database_url)
    ServiceContext.build(settings).db.dispose()
    assert str(shared) in caplog.text and "0700" in caplog.text
