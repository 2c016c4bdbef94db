"""Migration 0002 on a database that already holds referrals: the consent records of the
first release gain their purposes, the codes are seeded, and the downgrade keeps the data."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from alembic import command
from sqlalchemy import Engine, inspect, text

from service.db import alembic_config, make_engine

NEW_COLUMNS = {"consent_sealed", "consent_withdrawn_at", "purged_at"}
PURPOSES = {"REFERRAL", "ASSESSMENT", "SERVICE_DELIVERY", "CASE_COORDINATION", "PROTECTION"}


def _insert_first_release_referral(engine: Engine) -> str:
    rid = uuid.uuid4()
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    key = rid.hex if engine.dialect.name == "sqlite" else str(rid)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO referral (id, reference, status, from_agency, to_agency, "
                "protected_identity, subject_sealed, groups, kemenham_groups, case_types, "
                "urgency, summary_sealed, consent, created_by_client, created_at, updated_at, "
                "version) VALUES (:id, 'RJK-2026-000001', 'referred', 'LPSK', 'KEMENSOS', "
                ":f, 'k.x', '[]', '[]', '[]', 'urgent', 'k.y', :consent, 'c', :now, :now, 1)"
            ),
            {"id": key, "f": False, "now": now, "consent": json.dumps(
                {"given": True, "obtained_at": "2026-01-01T00:00:00+00:00",
                 "method": "written", "obtained_by": "Petugas"})},
        )
        # A row that refers to the referral: a table rebuild on downgrade would trip on it.
        conn.execute(
            text(
                "INSERT INTO referral_note (id, referral_id, author_agency, author_client, "
                "text_sealed, created_at) VALUES (:nid, :id, 'LPSK', 'c', 'k.z', :now)"
            ),
            {"nid": uuid.uuid4().hex if engine.dialect.name == "sqlite" else str(uuid.uuid4()),
             "id": key, "now": now},
        )
    return key


def _consent(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        value = conn.execute(text("SELECT consent FROM referral")).scalar_one()
    return json.loads(value) if isinstance(value, str) else value  # type: ignore[no-any-return]


def _codes(engine: Engine, kind: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT code FROM taxonomy_term WHERE kind = :k"), {"k": kind})
        return {r[0] for r in rows}


def test_upgrade_and_downgrade_with_data(backend: str, new_database_url) -> None:  # type: ignore[no-untyped-def]
    url = new_database_url(backend)
    cfg = alembic_config(url)
    command.upgrade(cfg, "0001")
    engine = make_engine(url)
    try:
        _insert_first_release_referral(engine)
        command.upgrade(cfg, "0002")
        engine.dispose()
        columns = {c["name"] for c in inspect(engine).get_columns("referral")}
        assert columns >= NEW_COLUMNS
        indexes = {i["name"] for i in inspect(engine).get_indexes("referral")}
        assert "ix_referral_closed_at" in indexes
        consent = _consent(engine)
        assert consent["purposes"] == ["REFERRAL", "ASSESSMENT", "SERVICE_DELIVERY"]
        assert consent["given_by"] == "subject"
        assert consent["obtained_by"] == "Petugas"
        assert _codes(engine, "consent_purpose") == PURPOSES
        assert "consent_withdrawn" in _codes(engine, "outcome")

        command.downgrade(cfg, "0001")
        engine.dispose()
        columns = {c["name"] for c in inspect(engine).get_columns("referral")}
        assert not NEW_COLUMNS & columns
        assert "ix_referral_closed_at" not in {
            i["name"] for i in inspect(engine).get_indexes("referral")
        }
        assert set(_consent(engine)) == {"given", "obtained_at", "method", "obtained_by"}
        assert _codes(engine, "consent_purpose") == set()
        assert "consent_withdrawn" not in _codes(engine, "outcome")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM referral_note")).scalar_one() == 1
            assert conn.execute(text("SELECT count(*) FROM referral")).scalar_one() == 1

        command.upgrade(cfg, "head")
        command.check(cfg)
    finally:
        engine.dispose()
