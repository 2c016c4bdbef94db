"""Migration 0004 on a database that already holds referrals: their case types are indexed
for the statistics, and the downgrade removes both new tables."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from alembic import command
from sqlalchemy import inspect, text

from service.db import alembic_config, make_engine


def test_upgrade_indexes_existing_case_types_and_downgrade_drops_the_tables(
    backend: str, new_database_url  # type: ignore[no-untyped-def]
) -> None:
    url = new_database_url(backend)
    cfg = alembic_config(url)
    command.upgrade(cfg, "0002")
    engine = make_engine(url)
    keys = []
    try:
        with engine.begin() as conn:
            for number, case_types in enumerate((["TPPO", "KEKERASAN_SEKSUAL", "TPPO"], []), 1):
                rid = uuid.uuid4()
                key = rid.hex if backend == "sqlite" else str(rid)
                keys.append(key)
                conn.execute(
                    text(
                        "INSERT INTO referral (id, reference, status, from_agency, to_agency, "
                        "protected_identity, subject_sealed, groups, kemenham_groups, "
                        "case_types, urgency, summary_sealed, consent, created_by_client, "
                        "created_at, updated_at, version) VALUES (:id, :ref, 'referred', "
                        "'LPSK', 'KEMENSOS', :f, 'k.x', '[]', '[]', :types, 'urgent', 'k.y', "
                        "'{}', 'c', :now, :now, 1)"
                    ),
                    {"id": key, "ref": f"RJK-2026-{number:06d}", "f": False,
                     "types": json.dumps(case_types), "now": dt.datetime.now(dt.UTC)},
                )
        command.upgrade(cfg, "0004")
        engine.dispose()
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT referral_id, code FROM referral_case_type ORDER BY code")
            ).all()
        first = uuid.UUID(keys[0])
        found = [(uuid.UUID(str(r[0])), r[1]) for r in rows]
        assert found == [(first, "KEKERASAN_SEKSUAL"), (first, "TPPO")]
        assert "agreement" in inspect(engine).get_table_names()
        command.downgrade(cfg, "0002")
        engine.dispose()
        tables = set(inspect(engine).get_table_names())
        assert not {"agreement", "referral_case_type"} & tables
        with engine.connect() as conn:
            assert conn.execute(text("SELECT COUNT(*) FROM referral")).scalar_one() == 2
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()
