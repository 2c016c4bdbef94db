"""Retention: erase the personal data of referrals closed before a date (`rujukan purge`).

Statistics stay (status, agencies, groups, case types, urgency, timestamps, outcome) and
each erased referral leaves a `referral.purge` tombstone in the audit trail. On SQLite the
connections run with `secure_delete` and the write-ahead log is checkpointed and truncated
afterwards, so the erased values are gone from the database file, not just unreachable.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from service.audit import trail
from service.context import ServiceContext
from service.dbtypes import utcnow
from service.referrals import repository as repo
from service.referrals import workflow
from service.referrals.sealing import seal_field


class RetentionError(ValueError):
    """A purge request that must not run."""


def cutoff_of(closed_before: dt.date) -> dt.datetime:
    """The start (UTC) of the given day: referrals closed before it are purged."""
    return dt.datetime.combine(closed_before, dt.time.min, tzinfo=dt.UTC)


def purge(ctx: ServiceContext, closed_before: dt.date, *, dry_run: bool = False) -> dict[str, Any]:
    """Erase (or with `dry_run` only count) the personal data of referrals closed before the
    start of `closed_before` (UTC); the counts, as a JSON-ready dict."""
    cutoff = cutoff_of(closed_before)
    if cutoff > utcnow():
        raise RetentionError("--closed-before must not be in the future")
    with ctx.db.reader() as session:
        ids = repo.purgeable_ids(session, cutoff)
        counts = repo.personal_data_counts(session, ids) if dry_run else None
    result: dict[str, Any] = {"closed_before": closed_before.isoformat(), "dry_run": dry_run}
    if counts is not None:
        return {**result, "referrals": len(ids), **counts}
    totals = {"referrals": 0, "notes": 0, "services": 0, "idempotency_records": 0}
    for referral_id in ids:
        done = purge_referral(ctx, referral_id, cutoff)
        if done is None:  # changed since it was listed (e.g. purged by a concurrent run)
            continue
        totals["referrals"] += 1
        totals["notes"] += done.notes
        totals["services"] += done.services
        totals["idempotency_records"] += done.idempotency_records
    result.update(totals)
    if ctx.db.sqlite:
        result["wal_checkpoint"] = "truncated" if checkpoint_sqlite(ctx) else "busy"
    return result


def checkpoint_sqlite(ctx: ServiceContext) -> bool:
    """Copy the write-ahead log into the database file and truncate it, so old page images
    that held erased values are gone; False if readers kept it from completing."""
    with ctx.db.engine.connect() as conn:
        # The driver connection runs in autocommit mode (see service.db): no transaction is
        # open around the checkpoint.
        raw = conn.connection.driver_connection
        assert raw is not None  # a checked-out connection holds its driver's
        busy: int = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    return busy == 0


@dataclass(frozen=True)
class Purged:
    """What erasing one referral's personal data touched."""

    notes: int
    services: int
    idempotency_records: int


def purge_referral(
    ctx: ServiceContext, referral_id: uuid.UUID, closed_before: dt.datetime
) -> Purged | None:
    """Erase the personal data of a referral closed before `closed_before`, keeping its
    statistics, and leave a tombstone in the audit trail; None if it does not qualify."""
    with ctx.db.writer() as session:
        row = repo.get_for_update(session, referral_id)
        if (
            row is None
            or row.status != workflow.CLOSED
            or row.purged_at is not None
            or row.closed_at is None
            or row.closed_at >= closed_before
        ):
            return None
        now = utcnow()
        notes = repo.notes(session, row.id)
        for note in notes:
            # The column is NOT NULL: an empty text, sealed in the note's own place.
            repo.set_note_text(
                session, note.id, seal_field(ctx, row.id, f"note:{note.id}", "") or ""
            )
        services = repo.erase_service_notes(session, row.id)
        records = repo.delete_idempotency_records(session, row.id)
        erased = {
            "subject_sealed": seal_field(ctx, row.id, "subject", "{}"),
            "nik_hash": None,
            "summary_sealed": seal_field(ctx, row.id, "summary", ""),
            "assessment_notes_sealed": None,
            "closure_notes_sealed": None,
            "consent_sealed": None,
            "external_ref": None,
            "purged_at": now,
            # A new version and updated_at tell synchronising clients to erase their copies.
            "updated_at": now,
        }
        if not repo.update_if_version(session, row.id, row.version, erased):
            session.rollback()
            return None
        trail.append(
            session,
            action="referral.purge",
            agency=None,
            client_id=None,
            referral_id=row.id,
            detail={"reference": row.reference, "closed_before": closed_before.date().isoformat()},
        )
        session.commit()
        return Purged(notes=len(notes), services=services, idempotency_records=records)
