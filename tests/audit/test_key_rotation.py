"""`rujukan keys rotate-audit`: a new audit key keys new entries; old keys stay in the file to
verify what they keyed; the rotation is itself in the trail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

import service.context
from service.audit.keys import AuditKeyring, activate_audit_key, add_audit_key
from service.audit.models import AuditEntry
from service.context import ServiceContext
from service.crypto import KeyFileError
from service.db import upgrade_to_head
from tests.support.databases import make_settings
from tests.support.operator import Operator


@pytest.fixture
def operator(backend: str, new_database_url, tmp_path: Path) -> Operator:  # type: ignore[no-untyped-def]
    op = Operator(new_database_url(backend), tmp_path)
    upgrade_to_head(op.url)
    return op


def key_ids(operator: Operator) -> list[str | None]:
    with operator.service() as ctx, ctx.db.reader() as session:
        return list(session.execute(select(AuditEntry.key_id).order_by(AuditEntry.id)).scalars())


def test_rotation_keys_new_entries_and_keeps_old_ones_verifiable(operator: Operator) -> None:
    operator.write(3)
    path = operator.key_dir / "audit-keys.json"
    first = AuditKeyring.load(path).active
    result = operator.ok("keys", "rotate-audit", "--wait-seconds", "0")
    report = json.loads(result.stdout)
    assert report["previous"] == first and report["active"] == report["added"] != first
    ring = AuditKeyring.load(path)
    assert ring.active == report["added"] and set(ring.keys) == {first, report["added"]}
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    operator.write(2)
    ids = key_ids(operator)
    assert ids[:3] == [first] * 3 and ids[-2:] == [report["added"]] * 2
    with operator.service() as ctx, ctx.db.reader() as session:
        rotation = session.execute(
            select(AuditEntry).where(AuditEntry.action == "keys.rotate_audit")
        ).scalar_one()
    assert rotation.detail == {"added": report["added"], "previous": first}
    assert operator.verify()["entries"] == 6
    # An old key removed from the file: the entries it keyed can no longer be checked.
    doc = json.loads(path.read_text())
    del doc["keys"][first]
    path.write_text(json.dumps(doc))
    operator.fails("audit", "verify", naming=["audit entry 1", first, "not in the audit key file"])


def test_a_running_process_picks_up_the_new_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade_to_head(url)
    ctx = ServiceContext.build(make_settings(url, tmp_path / "keys"))
    try:
        path = ctx.settings.audit_key_path
        old = ctx.audit_keys
        added = add_audit_key(path)
        assert activate_audit_key(path, added) == old.active
        assert ctx.audit_keys is old  # within the reload interval it keeps what it read
        monkeypatch.setattr(service.context, "KEY_RELOAD_SECONDS", 0.0)
        assert ctx.audit_keys.active == added
        with pytest.raises(KeyFileError):
            activate_audit_key(path, "anope")
    finally:
        ctx.db.dispose()


def test_prod_refuses_an_audit_key_file_made_for_dev(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    upgrade_to_head(url)
    ServiceContext.build(make_settings(url, tmp_path / "keys")).db.dispose()  # dev: generated
    from service.auth.keys import KeySet, new_key, save_keyset
    from service.crypto import DataKeyring

    settings = make_settings(url, tmp_path / "keys", env="prod")
    save_keyset(settings.signing_key_path, KeySet([new_key()]))
    settings.data_key_path.unlink()
    DataKeyring.create_file(settings.data_key_path, generated=False)
    with pytest.raises(KeyFileError, match="generated for development"):
        ServiceContext.build(settings)
    settings.audit_key_path.unlink()
    with pytest.raises(KeyFileError, match="audit key file .* does not exist"):
        ServiceContext.build(settings)
    assert not settings.audit_key_path.exists()  # prod never generates one
    AuditKeyring.create_file(settings.audit_key_path, generated=False)
    ServiceContext.build(settings).db.dispose()
