"""The Alembic migrations, on a fresh database of each backend.

upgrade -> downgrade -> upgrade leaves nothing behind and nothing missing; the models and
the migrated schema agree (`alembic check`); the reference data of CONTRACT §5 is seeded;
and the database itself enforces the status CHECK and the append-only audit trail.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from service.db import alembic_config, make_engine, migration_state, upgrade_to_head
from service.referrals.models import Referral
from tests.support import CONTRACT_CASE_TYPES, CONTRACT_GROUPS, OUTCOMES

APP_TABLES = {
    "agency",
    "api_client",
    "audit_entry",
    "idempotency_record",
    "reference_counter",
    "referral",
    "referral_group",
    "referral_history",
    "referral_note",
    "referral_service",
    "taxonomy_term",
}


@pytest.fixture
def fresh_url(backend: str, new_database_url) -> str:  # type: ignore[no-untyped-def]
    """A fresh, empty database of the backend under test (not migrated)."""
    return new_database_url(backend)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def migrated(backend: str, new_database_url) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """An engine on a fresh database at head, shared by this module's checks of it."""
    url = new_database_url(backend)
    upgrade_to_head(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _triggers(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
        else:
            rows = conn.execute(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
        return {r[0] for r in rows}


def _functions(engine: Engine) -> set[str]:
    if engine.dialect.name == "sqlite":
        return set()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'public'"
            )
        )
        return {r[0] for r in rows}


def _leftover_relations(engine: Engine) -> set[str]:
    """Every index, sequence, view or table besides alembic_version's own."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'view') "
                    "AND name NOT LIKE 'sqlite_%' AND name <> 'alembic_version'"
                )
            )
        else:
            rows = conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND c.relname NOT IN "
                    "('alembic_version', 'alembic_version_pkc')"
                )
            )
        return {r[0] for r in rows}


def _types(engine: Engine) -> set[str]:
    """User-defined types (enums) left in the public schema (PostgreSQL)."""
    if engine.dialect.name == "sqlite":
        return set()
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd')"
            )
        )
        return {r[0] for r in rows}


def _assert_schema_complete(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert tables >= APP_TABLES, APP_TABLES - tables
    triggers = _triggers(engine)
    if engine.dialect.name == "sqlite":
        assert {"audit_entry_no_update", "audit_entry_no_delete"} <= triggers
    else:
        assert {"audit_entry_append_only", "audit_entry_no_truncate"} <= triggers
        assert "audit_entry_append_only" in _functions(engine)
    indexes = {ix["name"] for ix in inspect(engine).get_indexes("referral")}
    assert "uq_referral_open_nik_per_parties" in indexes


def test_upgrade_downgrade_upgrade_round_trip(fresh_url: str) -> None:
    cfg = alembic_config(fresh_url)
    upgrade_to_head(fresh_url)
    engine = make_engine(fresh_url)
    try:
        current, head = migration_state(engine)
        assert current == head and head is not None
        _assert_schema_complete(engine)

        command.downgrade(cfg, "base")
        engine.dispose()
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        assert _triggers(engine) == set()
        assert _functions(engine) == set()
        assert _leftover_relations(engine) == set()
        assert _types(engine) == set()
        assert migration_state(engine)[0] is None

        command.upgrade(cfg, "head")
        engine.dispose()
        assert migration_state(engine)[0] == head
        _assert_schema_complete(engine)
        # The second upgrade seeds the reference data exactly once again.
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM agency")).scalar_one() == 3
        command.check(cfg)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(migrated: Engine) -> None:
    """`alembic check`: autogenerate finds nothing to add, drop or alter."""
    command.check(alembic_config(migrated.url.render_as_string(hide_password=False)))


def test_reference_data_is_seeded(migrated: Engine) -> None:
    with migrated.connect() as conn:
        agencies = {r[0] for r in conn.execute(text("SELECT code FROM agency"))}
        assert agencies == {"KEMENSOS", "LPSK", "KEMENHAM"}
        terms = conn.execute(
            text("SELECT kind, code, name, phase, agency, approach, active FROM taxonomy_term")
        ).all()

    def of(kind: str) -> list:
        return [t for t in terms if t.kind == kind]

    assert all(t.name and t.active for t in terms)
    assert {t.code for t in of("group")} == set(CONTRACT_GROUPS)
    assert {t.code for t in of("case_type")} >= CONTRACT_CASE_TYPES
    assert {t.code for t in of("outcome")} == OUTCOMES
    assert of("decline_reason"), "decline reasons are seeded"
    assert of("kemenham_group"), "KemenHAM's groups are seeded"

    service_types = of("service_type")
    assert service_types
    assert {t.phase for t in service_types} == {"rehabilitation", "empowerment"}

    units = of("service_unit")
    assert units
    assert all(t.agency in agencies for t in units)
    assert all(t.approach in {"residential", "family", "community"} for t in units)
    assert {t.agency for t in units} == agencies, "every agency has at least one unit"


def _referral_row(status: str) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    return {
        "id": uuid.uuid4(),
        "reference": f"RJK-TEST-{uuid.uuid4().hex[:8]}",
        "status": status,
        "from_agency": "LPSK",
        "to_agency": "KEMENSOS",
        "protected_identity": False,
        "subject_sealed": "k.x",
        "nik_hash": None,
        "groups": [],
        "kemenham_groups": [],
        "case_types": [],
        "urgency": "urgent",
        "summary_sealed": "k.x",
        "consent": {"given": True},
        "created_by_client": "test",
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def test_status_check_constraint_refuses_unknown_status(migrated: Engine) -> None:
    insert = Referral.__table__.insert()  # type: ignore[attr-defined]
    with migrated.begin() as conn:
        conn.execute(insert, [_referral_row("referred")])  # the control row is accepted
    with pytest.raises(IntegrityError), migrated.begin() as conn:
        conn.execute(insert, [_referral_row("archived")])
    # Raw SQL too, bypassing every model type.
    with pytest.raises(IntegrityError), migrated.begin() as conn:
        conn.execute(text("UPDATE referral SET status = 'bogus'"))
    with migrated.connect() as conn:
        statuses = {r[0] for r in conn.execute(text("SELECT status FROM referral"))}
    assert statuses == {"referred"}


def _insert_audit_entry(engine: Engine) -> None:
    """One audit entry, id 1 (inserted once: it cannot be deleted afterwards)."""
    with engine.begin() as conn:
        if conn.execute(text("SELECT count(*) FROM audit_entry")).scalar_one():
            return
        conn.execute(
            text(
                "INSERT INTO audit_entry (id, occurred_at, agency, client_id, action, detail, "
                "prev_hash, hash) VALUES (1, :at, 'LPSK', 'c', 'test.action', :detail, :prev, "
                ":hash)"
            ),
            {
                "at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                "detail": json.dumps({}),
                "prev": "0" * 64,
                "hash": "f" * 64,
            },
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entry SET action = 'forged'",
        "UPDATE audit_entry SET hash = 'e' || substr(hash, 2)",
        "DELETE FROM audit_entry",
        "DELETE FROM audit_entry WHERE id = 1",
        "TRUNCATE audit_entry",
    ],
)
def test_audit_entries_cannot_be_changed_or_deleted(migrated: Engine, statement: str) -> None:
    if statement.startswith("TRUNCATE") and migrated.dialect.name == "sqlite":
        # SQLite has no TRUNCATE; an unqualified DELETE is its truncate optimisation.
        statement = "DELETE FROM audit_entry"
    _insert_audit_entry(migrated)
    with pytest.raises(DBAPIError, match="append-only"), migrated.begin() as conn:
        conn.execute(text(statement))
    with migrated.connect() as conn:
        rows = conn.execute(text("SELECT action, hash FROM audit_entry")).all()
    assert [tuple(r) for r in rows] == [("test.action", "f" * 64)]
