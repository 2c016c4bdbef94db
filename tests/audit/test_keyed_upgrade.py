"""Upgrading a trail written before the chain was keyed.

Entries already written keep their plain SHA-256 hash and are checked as before; they get
their number in their agency's sequence; the first keyed entry's HMAC covers the last plain
hash, so the old part cannot be rewritten without breaking it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import select, text

from service.audit.models import AuditEntry
from service.db import Database, alembic_config, upgrade_to_head
from tests.support import writer_session
from tests.support.operator import Operator, unprotected

AGENCIES = ["LPSK", "KEMENSOS", "LPSK", None, "KEMENSOS", "LPSK"]


def plain_hash(row: dict[str, Any]) -> str:
    content = {**row, "occurred_at": row["occurred_at"].isoformat()}
    content.pop("hash", None)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(row["prev_hash"].encode() + canonical.encode()).hexdigest()


def old_rows(actions: list[str] | None = None) -> list[dict[str, Any]]:
    """The entries an earlier version wrote, with their plain chain."""
    rows, prev = [], "0" * 64
    start = dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.UTC)
    for n, agency in enumerate(AGENCIES, start=1):
        row = {
            "id": n, "occurred_at": start + dt.timedelta(minutes=n), "agency": agency,
            "client_id": None, "action": (actions or [])[n - 1] if actions else "test.old",
            "referral_id": None, "request_id": f"r{n}", "detail": {"n": n},
            "detail_sealed": None, "prev_hash": prev,
        }  # fmt: skip
        row["hash"] = prev = plain_hash(row)
        rows.append(row)
    return rows


@pytest.fixture
def upgraded(backend: str, new_database_url, tmp_path: Path) -> Operator:  # type: ignore[no-untyped-def]
    url = new_database_url(backend)
    command.upgrade(alembic_config(url), "0005")
    db = Database(url)
    try:
        with writer_session(db) as session:
            for row in old_rows():
                session.execute(AuditEntry.__table__.insert().values(**row))  # type: ignore[attr-defined]
            session.commit()
    finally:
        db.dispose()
    upgrade_to_head(url)
    return Operator(url, tmp_path)


def test_old_entries_are_numbered_per_agency_and_still_verify(upgraded: Operator) -> None:
    assert upgraded.verify()["entries"] == len(AGENCIES)
    with upgraded.service() as ctx, ctx.db.reader() as session:
        rows = session.execute(
            select(AuditEntry.agency, AuditEntry.agency_seq, AuditEntry.key_id).order_by(
                AuditEntry.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("LPSK", 1, None), ("KEMENSOS", 1, None), ("LPSK", 2, None), (None, None, None),
        ("KEMENSOS", 2, None), ("LPSK", 3, None),
    ]  # fmt: skip


def test_the_first_keyed_entry_seals_the_plain_part(upgraded: Operator) -> None:
    upgraded.write(2, agencies=("LPSK",))
    with upgraded.service() as ctx, ctx.db.reader() as session:
        first_keyed = session.execute(select(AuditEntry).where(AuditEntry.id == 7)).scalar_one()
        assert first_keyed.key_id == ctx.audit_keys.active
        assert first_keyed.prev_hash == old_rows()[-1]["hash"]
        assert first_keyed.agency_seq == 4  # LPSK's sequence goes on from the old entries
    assert upgraded.verify()["entries"] == 8
    # Rewrite an old entry and re-hash the whole plain part consistently, even the link in
    # the first keyed entry: its HMAC no longer matches.
    forged = old_rows(actions=["test.old", "test.forged", *["test.old"] * 4])
    with unprotected(upgraded.url) as session:
        for row in forged:
            session.execute(
                text("UPDATE audit_entry SET action = :a, prev_hash = :p, hash = :h WHERE id = :i"),
                {"a": row["action"], "p": row["prev_hash"], "h": row["hash"], "i": row["id"]},
            )
        session.execute(
            text("UPDATE audit_entry SET prev_hash = :p WHERE id = 7"), {"p": forged[-1]["hash"]}
        )
    upgraded.fails("audit", "verify", naming=["audit entry 7", "does not match its hash"])
