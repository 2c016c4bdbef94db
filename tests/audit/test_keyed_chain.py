"""The audit chain against someone who can write the database but not read the audit key file.

The attack: as the database owner, lift the append-only triggers, delete two entries
from the middle, recompute a valid chain over the rest, put the triggers back. With a plain
SHA-256 chain `rujukan audit verify` then said the trail was valid; keyed with an HMAC under a
key kept outside the database, it names the first entry that was recomputed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select

from service.audit.models import AuditEntry
from service.crypto import b64encode
from service.db import upgrade_to_head
from tests.support.operator import Operator, unprotected

COLUMNS = [column.key for column in AuditEntry.__table__.columns]  # type: ignore[attr-defined]
KEYED = "key_id" in COLUMNS
V1_FIELDS = (
    "id", "occurred_at", "agency", "client_id", "action", "referral_id", "request_id", "detail",
    "detail_sealed", "prev_hash",
)  # fmt: skip


def _content(row: dict[str, Any], keyed: bool) -> bytes:
    """The canonical content the service hashes (it is public: the source is)."""
    content = {name: row[name] for name in V1_FIELDS}
    content["occurred_at"] = row["occurred_at"].isoformat()
    content["referral_id"] = str(row["referral_id"]) if row["referral_id"] else None
    if keyed:
        content["key_id"], content["agency_seq"] = row["key_id"], row["agency_seq"]
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return row["prev_hash"].encode("ascii") + canonical.encode("utf-8")


def rechain(url: str, *, drop: set[int], start: int, key: bytes | None = None) -> None:
    """Delete the entries `drop`, then renumber and re-hash every entry from `start` on into a
    chain that links up: plain SHA-256 without a key id (`key` None), or an HMAC under `key`
    with the key id the entry had."""
    with unprotected(url) as session:
        rows = [
            {c: getattr(e, c) for c in COLUMNS}
            for e in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()
        ]
        kept = [row for row in rows if row["id"] not in drop]
        first = min(start, *drop)
        session.execute(delete(AuditEntry).where(AuditEntry.id >= first))  # type: ignore[arg-type]
        seqs: dict[str, int] = {}
        prev = "0" * 64
        for number, row in enumerate(kept, start=1):
            if row["agency"] is not None and KEYED:
                seqs[row["agency"]] = seqs.get(row["agency"], 0) + 1
            if number >= start:
                row["id"], row["prev_hash"] = number, prev
                if KEYED:
                    row["agency_seq"] = seqs.get(row["agency"]) if row["agency"] else None
                    if key is None:
                        row["key_id"] = None
                message = _content(row, KEYED and key is not None)
                row["hash"] = (
                    hashlib.sha256(message).hexdigest()
                    if key is None
                    else hmac.new(key, message, hashlib.sha256).hexdigest()
                )
                session.execute(AuditEntry.__table__.insert().values(**row))  # type: ignore[attr-defined]
            prev = row["hash"]


@pytest.fixture
def operator(backend: str, new_database_url, tmp_path: Path) -> Operator:  # type: ignore[no-untyped-def]
    op = Operator(new_database_url(backend), tmp_path)
    upgrade_to_head(op.url)
    op.write(10, agencies=("LPSK", "KEMENSOS", None))
    assert op.verify()["entries"] == 10
    return op


@pytest.mark.parametrize(
    ("start", "key", "named"),
    [
        (4, None, ["audit entry 4", "not keyed"]),
        (1, None, ["audit entry 1", "not keyed", "after the audit key was made"]),
        (4, secrets.token_bytes(32), ["audit entry 4", "does not match its hash"]),
    ],
    ids=["plain sha-256 from the gap", "plain sha-256 from the start", "hmac with a wrong key"],
)
def test_deleting_entries_and_recomputing_the_chain_is_caught(
    operator: Operator, start: int, key: bytes | None, named: list[str]
) -> None:
    rechain(operator.url, drop={4, 5}, start=start, key=key)
    operator.fails("audit", "verify", naming=named)


def test_an_entry_under_a_key_the_file_does_not_have_is_refused(operator: Operator) -> None:
    """A forged entry that looks right (linked, numbered, an HMAC under some key) but names a
    key the audit key file does not have is not taken on trust."""
    with unprotected(operator.url) as session:
        newest = select(AuditEntry).order_by(AuditEntry.id.desc())  # type: ignore[union-attr]
        last = session.execute(newest).scalars().first()
        assert last is not None
        row = {c: getattr(last, c) for c in COLUMNS}
        row.update(id=last.id + 1, prev_hash=last.hash, action="client.revoke", agency=None)
        if KEYED:
            row.update(key_id="a0badc0d", agency_seq=None)
        message = _content(row, KEYED)
        row["hash"] = hmac.new(secrets.token_bytes(32), message, hashlib.sha256).hexdigest()
        if not KEYED:  # without keys, the forger simply computes the plain hash
            row["hash"] = hashlib.sha256(message).hexdigest()
        session.execute(AuditEntry.__table__.insert().values(**row))  # type: ignore[attr-defined]
    operator.fails(
        "audit", "verify", naming=["audit entry 11", "a0badc0d", "not in the audit key file"]
    )


def test_the_audit_key_never_reaches_the_database(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL could log a statement with its parameters: the HMAC is computed by the
    service, never by the server with the key as a parameter."""
    if not operator.url.startswith("postgresql"):
        pytest.skip("SQLite runs in the service's own process")
    import psycopg

    sent: list[str] = []
    for name in ("execute", "executemany"):
        original = getattr(psycopg.Cursor, name)

        def record(self, query, params=None, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            sent.append(repr(query) + repr(params))
            return _original(self, query, params, *args, **kwargs)

        monkeypatch.setattr(psycopg.Cursor, name, record)
    with operator.service() as ctx:
        secret = ctx.audit_keys.keys[ctx.audit_keys.active].secret
    operator.write(3, agencies=("LPSK", None))
    assert any("audit_entry" in statement for statement in sent)
    forms = (secret.hex(), secret.hex().upper(), b64encode(secret), repr(secret))
    assert not [s for s in sent if any(form in s for form in forms)]
    assert operator.verify()["entries"] == 13
