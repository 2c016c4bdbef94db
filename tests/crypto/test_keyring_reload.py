"""A running process learns a changed data key file by itself (as it does the signing keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import service.context
from service.context import ServiceContext
from service.crypto import DataKeyring, KeyFileError, activate_data_key, add_data_key
from tests.support.databases import make_settings


@pytest.fixture
def process(tmp_path: Path) -> ServiceContext:
    ctx = ServiceContext.build(make_settings(f"sqlite:///{tmp_path / 'r.db'}", tmp_path))
    yield ctx  # type: ignore[misc]
    ctx.db.dispose()


def test_add_then_activate(tmp_path: Path, process: ServiceContext) -> None:
    path = process.settings.data_key_path
    first = DataKeyring.load(path)
    added = add_data_key(path)
    known = DataKeyring.load(path)
    assert known.active == first.active
    assert set(known.keys) == {first.active, added}
    assert known.index_key == first.index_key
    assert activate_data_key(path, added) == first.active
    active = DataKeyring.load(path)
    assert active.active == added and set(active.keys) == {first.active, added}
    assert active.index_key == first.index_key
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    with pytest.raises(KeyFileError):
        activate_data_key(path, "dnope")


def test_the_keyring_is_re_read_after_the_reload_interval(
    process: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = process.settings.data_key_path
    old = process.keyring
    sealed_before = old.seal("lama", "test:1")
    added = add_data_key(path)
    activate_data_key(path, added)
    # Within the interval the process keeps what it read.
    assert process.keyring is old
    monkeypatch.setattr(service.context, "KEY_RELOAD_SECONDS", 0.0)
    ring = process.keyring
    assert ring.active == added
    assert ring.seal("baru", "test:2").startswith(f"{added}.")
    assert ring.open(sealed_before, "test:1") == "lama"


def test_a_broken_key_file_does_not_take_the_process_down(
    process: ServiceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.context, "KEY_RELOAD_SECONDS", 0.0)
    path = process.settings.data_key_path
    good = process.keyring
    path.write_text("{ half written", encoding="utf-8")
    assert process.keyring == good
    doc = {"active": "dx", "keys": {"dx": "c2hvcnQ"}, "index_key": "c2hvcnQ"}
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert process.keyring == good
    path.unlink()
    assert process.keyring == good
