"""Retention (UU PDP): `rujukan purge --closed-before DATE` erases the personal data of
referrals closed before that date; statistics and an audit tombstone stay, and the erased
values are gone from the database's own bytes (SQLite file + WAL, pg_dump)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text, update

from service.audit.models import AuditEntry
from service.context import ServiceContext
from service.db import make_engine
from service.referrals.models import (
    DeliveredService,
    IdempotencyRecord,
    Referral,
    ReferralNote,
)
from service.retention import RetentionError, purge
from tests.support import Api, assess_body, ok, service_body, writer_session
from tests.support.cli import cli_environment, run
from tests.support.pdp import adult_body, child_body, created, stored_bytes

LONG_AGO = dt.datetime(2020, 6, 1, 8, 0, tzinfo=dt.UTC)
CUTOFF = "2021-01-01"
IDENTIFYING = ("full_name", "nik", "birth_date", "address", "phone", "sex", "region_code")


def canary(kind: str) -> str:
    return f"CANARY{kind}_{uuid.uuid4().hex[:12]}"


def rujukan(ctx: ServiceContext, *args: str) -> subprocess.CompletedProcess[str]:
    """The command, on the test database and keys."""
    # Close this process's SQLite connections first: reading the database file here (the
    # byte scans) drops their POSIX locks, and a command that then believed it was the last
    # connection would checkpoint and delete the WAL under them.
    ctx.db.engine.dispose()
    env = cli_environment(ctx.settings.database_url, ctx.settings.signing_key_path.parent)
    env.update(
        RUJUKAN_SIGNING_KEY_FILE=str(ctx.settings.signing_key_path),
        RUJUKAN_DATA_KEY_FILE=str(ctx.settings.data_key_path),
    )
    return run(args, env)


def run_purge(ctx: ServiceContext, *extra: str) -> dict[str, Any]:
    result = rujukan(ctx, "purge", "--closed-before", CUTOFF, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def backdate_closure(ctx: ServiceContext, rid: str, when: dt.datetime = LONG_AGO) -> None:
    with writer_session(ctx.db) as session:
        session.execute(
            update(Referral).where(Referral.id == uuid.UUID(rid)).values(closed_at=when)
        )
        session.commit()


@dataclass
class Scenario:
    old: str  # completed long ago: purged
    withdrawn: str  # consent withdrawn long ago: purged
    open_: str  # still open: kept
    recent: str  # closed after the cutoff: kept
    old_nik: str
    canaries: dict[str, list[str]]  # referral -> its plain canaries


@pytest.fixture
def scenario(lpsk: Api, kemensos: Api, ctx: ServiceContext) -> Scenario:
    canaries: dict[str, list[str]] = {}

    def body(kind: str, base: dict[str, Any]) -> dict[str, Any]:
        names = [canary("NAME"), canary("ADDR"), canary("SUMMARY"), canary("GUARDIAN")]
        base["subject"].update(full_name=names[0], address=names[1])
        base["summary"] = names[2]
        if base["consent"].get("guardian"):
            base["consent"]["guardian"]["full_name"] = names[3]
        canaries[kind] = names
        return base

    def note(api: Api, rid: str, kind: str) -> None:
        value = canary("NOTE")
        canaries[kind].append(value)
        ok(api.http.post(f"/v1/referrals/{rid}/notes", json={"text": value},
                         headers=api.headers()), 201)

    def notes(kind: str) -> str:
        canaries[kind].append(canary("TEXT"))
        return canaries[kind][-1]

    # A child's referral with every kind of personal data, completed long ago.
    old_body = body("old", child_body(external_ref="LPSK-CASE-77"))
    old = created(lpsk, old_body, **{"Idempotency-Key": uuid.uuid4().hex})["id"]
    ok(kemensos.act(old, "assess", assess_body(notes=notes("old"))))
    ok(kemensos.act(old, "serve", service_body(notes=notes("old"))))
    ok(kemensos.act(old, "services", service_body(service_type="DUKUNGAN_PSIKOSOSIAL",
                                                  notes=notes("old"))))
    note(lpsk, old, "old")
    note(kemensos, old, "old")
    ok(kemensos.act(old, "close", {"outcome": "completed", "notes": notes("old")}))
    backdate_closure(ctx, old)

    withdrawn = created(lpsk, body("withdrawn", adult_body()))["id"]
    note(lpsk, withdrawn, "withdrawn")
    ok(lpsk.act(withdrawn, "consent-withdrawal",
                {"withdrawn_at": "2026-01-11T09:00:00+07:00", "notes": notes("withdrawn")}))
    backdate_closure(ctx, withdrawn)

    open_ = created(lpsk, body("open", adult_body()))["id"]
    note(lpsk, open_, "open")
    recent = created(lpsk, body("recent", adult_body()))["id"]
    ok(kemensos.act(recent, "close", {"outcome": "unreachable", "notes": notes("recent")}))
    return Scenario(old, withdrawn, open_, recent, old_body["subject"]["nik"], canaries)


def sealed_values(ctx: ServiceContext, rid: str) -> dict[str, str]:
    """Every stored value of a referral that carries the person's data, by where it is."""
    found: dict[str, str] = {}
    with ctx.db.reader() as session:
        row = session.get(Referral, uuid.UUID(rid))
        assert row is not None
        for column in ("subject_sealed", "summary_sealed", "assessment_notes_sealed",
                       "closure_notes_sealed", "consent_sealed", "nik_hash", "external_ref"):
            if getattr(row, column):
                found[column] = getattr(row, column)
        for table, column in ((ReferralNote, "text_sealed"), (DeliveredService, "notes_sealed"),
                              (IdempotencyRecord, "response_sealed")):
            rows = session.execute(
                select(table).where(table.referral_id == row.id)  # type: ignore[attr-defined]
            ).scalars()
            for index, item in enumerate(rows):
                if getattr(item, column):
                    found[f"{table.__tablename__}.{column}[{index}]"] = getattr(item, column)
    return found


def needles(values: dict[str, str]) -> dict[str, bytes]:
    # The head of each value: a long value may continue on an overflow page (SQLite).
    return {where: value[:48].encode() for where, value in values.items()}


def test_purge_erases_personal_data_and_keeps_statistics(
    scenario: Scenario, lpsk: Api, kemensos: Api, ctx: ServiceContext, backend: str
) -> None:
    before = {rid: ok(lpsk.get(rid)) for rid in (scenario.old, scenario.withdrawn)}
    history_before = ok(lpsk.history(scenario.old))
    report = run_purge(ctx)
    assert report["closed_before"] == CUTOFF and report["dry_run"] is False
    assert (report["referrals"], report["notes"], report["services"],
            report["idempotency_records"]) == (2, 3, 2, 1)
    if backend == "sqlite":
        assert report["wal_checkpoint"] == "truncated"

    for api in (lpsk, kemensos):
        for rid in (scenario.old, scenario.withdrawn):
            view, was = ok(api.get(rid)), before[rid]
            assert all(view["subject"][f] is None for f in IDENTIFYING), view["subject"]
            assert view["summary"] == ""
            assert view["consent"]["guardian"] is None
            assert view["closure"]["notes"] is None
            assert view["external_ref"] is None
            assert view["purged_at"] is not None
            assert view["version"] == was["version"] + 1
            for kept in ("status", "from_agency", "to_agency", "groups", "kemenham_groups",
                         "case_types", "urgency", "created_at", "protected_identity",
                         "parent_id", "consent_withdrawn"):
                assert view[kept] == was[kept], kept
            assert view["closure"]["outcome"] == was["closure"]["outcome"]
            assert view["closure"]["closed_at"] == was["closure"]["closed_at"]
            assert view["consent"]["purposes"] == was["consent"]["purposes"]
            assert view["consent"]["given_by"] == was["consent"]["given_by"]
            notes = ok(api.http.get(f"/v1/referrals/{rid}/notes", headers=api.headers()))
            assert notes and all(n["text"] == "" for n in notes)
        old = ok(api.get(scenario.old))
        assert old["assessment"]["needs"] == before[scenario.old]["assessment"]["needs"]
        assert old["assessment"]["notes"] is None
        assert [s["service_type"] for s in old["services"]] == [
            "REHABILITASI_SOSIAL", "DUKUNGAN_PSIKOSOSIAL"
        ]
        assert all(s["notes"] is None for s in old["services"])
    assert ok(lpsk.history(scenario.old)) == history_before

    # The person can no longer be found by NIK (the index entry is gone too).
    assert ok(lpsk.list(nik=scenario.old_nik))["items"] == []
    export = lpsk.http.get("/v1/subjects/export", params={"nik": scenario.old_nik},
                           headers=lpsk.headers())
    assert ok(export)["referrals"] == []
    with ctx.db.reader() as session:
        row = session.get(Referral, uuid.UUID(scenario.old))
        assert row is not None and row.nik_hash is None and row.consent_sealed is None
        assert not session.execute(
            select(IdempotencyRecord).where(IdempotencyRecord.referral_id == row.id)
        ).first()

    # The open and the recently closed referrals are untouched.
    for rid in (scenario.open_, scenario.recent):
        view = ok(lpsk.get(rid))
        assert view["purged_at"] is None
        assert view["subject"]["full_name"].startswith("CANARYNAME_")
        assert view["summary"].startswith("CANARYSUMMARY_")


def test_each_purged_referral_leaves_one_tombstone(
    scenario: Scenario, ctx: ServiceContext
) -> None:
    with ctx.db.reader() as session:
        last = session.execute(select(AuditEntry.id).order_by(AuditEntry.id.desc())).first()  # type: ignore[union-attr]
    run_purge(ctx)
    with ctx.db.reader() as session:
        entries = session.execute(
            select(AuditEntry).where(AuditEntry.id > (last[0] if last else 0))  # type: ignore[operator]
            .order_by(AuditEntry.id)  # type: ignore[arg-type]
        ).scalars().all()
        references = dict(session.execute(select(Referral.id, Referral.reference)).all())
    assert [e.action for e in entries] == ["referral.purge", "referral.purge"]
    assert {e.referral_id for e in entries} == {
        uuid.UUID(scenario.old), uuid.UUID(scenario.withdrawn)
    }
    for entry in entries:
        assert entry.agency is None and entry.client_id is None
        assert entry.detail == {"reference": references[entry.referral_id],
                                "closed_before": CUTOFF}
    verify = rujukan(ctx, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_erased_values_are_gone_from_the_stored_bytes(
    scenario: Scenario, ctx: ServiceContext, backend: str
) -> None:
    url = ctx.settings.database_url
    # Like a running service, keep a connection open through the purge: the command is then
    # not the database's last connection, so it must checkpoint the WAL itself.
    ctx.db.engine.dispose()
    with ctx.db.engine.connect() as service_connection:
        service_connection.exec_driver_sql("SELECT 1").scalar()
        service_connection.rollback()
        _check_erased_values_are_gone(scenario, ctx, backend, url)


def _check_erased_values_are_gone(
    scenario: Scenario, ctx: ServiceContext, backend: str, url: str
) -> None:
    erased = {
        f"{rid}:{where}": value
        for rid in (scenario.old, scenario.withdrawn)
        for where, value in sealed_values(ctx, rid).items()
    }
    kept = sealed_values(ctx, scenario.open_)
    assert len(erased) >= 12 and "consent_sealed" in str(erased) and len(kept) >= 4
    raw = stored_bytes(url, backend)
    # The control: before the purge the scan finds every stored value.
    missing = [where for where, needle in needles({**erased, **kept}).items()
               if needle not in raw]
    assert not missing, f"the scan does not see {missing}"

    run_purge(ctx)

    raw = stored_bytes(url, backend)
    left = [where for where, needle in needles(erased).items() if needle in raw]
    assert not left, f"erased values still stored: {left}"
    plain = [c for rid in ("old", "withdrawn") for c in scenario.canaries[rid]]
    assert not [c for c in plain if c.encode() in raw]
    # The referrals that were kept are still stored, and readable.
    assert all(needle in raw for needle in needles(kept).values())


def test_a_dry_run_counts_and_changes_nothing(scenario: Scenario, ctx: ServiceContext) -> None:
    with ctx.db.reader() as session:
        audit_count = session.execute(text("SELECT count(*) FROM audit_entry")).scalar_one()
    before = sealed_values(ctx, scenario.old)
    report = run_purge(ctx, "--dry-run")
    assert report == {"closed_before": CUTOFF, "dry_run": True, "referrals": 2, "notes": 3,
                      "services": 2, "idempotency_records": 1}
    assert sealed_values(ctx, scenario.old) == before
    with ctx.db.reader() as session:
        assert session.execute(text("SELECT count(*) FROM audit_entry")).scalar_one() == (
            audit_count
        )
        row = session.get(Referral, uuid.UUID(scenario.old))
        assert row is not None and row.purged_at is None


def test_a_second_purge_finds_nothing_to_erase(scenario: Scenario, ctx: ServiceContext) -> None:
    assert run_purge(ctx)["referrals"] == 2
    again = run_purge(ctx)
    assert (again["referrals"], again["notes"], again["services"],
            again["idempotency_records"]) == (0, 0, 0, 0)


def test_the_cutoff_is_the_start_of_the_day_in_utc(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    before = created(lpsk, adult_body())["id"]
    at = created(lpsk, adult_body())["id"]
    for rid in (before, at):
        ok(kemensos.act(rid, "close", {"outcome": "unreachable"}))
    backdate_closure(ctx, before, dt.datetime(2020, 12, 31, 23, 59, 59, tzinfo=dt.UTC))
    backdate_closure(ctx, at, dt.datetime(2021, 1, 1, 0, 0, tzinfo=dt.UTC))
    assert purge(ctx, dt.date(2021, 1, 1))["referrals"] == 1
    assert ok(lpsk.get(before))["purged_at"] is not None
    assert ok(lpsk.get(at))["purged_at"] is None


def test_a_date_in_the_future_is_refused(lpsk: Api, kemensos: Api, ctx: ServiceContext) -> None:
    rid = created(lpsk, adult_body())["id"]
    ok(kemensos.act(rid, "close", {"outcome": "unreachable"}))
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date()
    with pytest.raises(RetentionError):
        purge(ctx, tomorrow)
    result = rujukan(ctx, "purge", "--closed-before", tomorrow.isoformat())
    assert result.returncode == 2
    assert "future" in result.stderr and "Traceback" not in result.stderr
    bad = rujukan(ctx, "purge", "--closed-before", "01/01/2021")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert ok(lpsk.get(rid))["purged_at"] is None


def test_purge_is_in_the_command_help(tmp_path: Path) -> None:
    result = run(["purge", "--help"], cli_environment("sqlite://", tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--closed-before" in result.stdout and "--dry-run" in result.stdout


def test_sqlite_connections_zero_deleted_content(tmp_path: Path) -> None:
    """secure_delete is set by the service, not left to how SQLite was built (Debian's
    build has it on by default, python.org's and Apple's do not)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")

    @event.listens_for(engine, "connect", insert=True)
    def _as_built_without_it(dbapi_conn: Any, _: Any) -> None:
        dbapi_conn.execute("PRAGMA secure_delete=OFF")

    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    finally:
        engine.dispose()
