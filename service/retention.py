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

from service.context import ServiceContext
from service.db.types import utcnow
from service.db.writes import Writes
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
    # Old page images in SQLite's write-ahead log may still hold erased values.
    checkpointed = ctx.db.checkpoint_wal()
    if checkpointed is not None:
        result["wal_checkpoint"] = "truncated" if checkpointed else "busy"
    return result


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

    def erase(w: Writes) -> Purged | None:
        session = w.session
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
        if not w.update_referral_if_version(row.id, row.version, erased):
            # Changed since it was read: what this erased so far is rolled back.
            raise _Changed
        w.append_audit(
            action="referral.purge",
            agency=None,
            client_id=None,
            referral_id=row.id,
            detail={"reference": row.reference, "closed_before": closed_before.date().isoformat()},
        )
        return Purged(notes=len(notes), services=services, idempotency_records=records)

    try:
        return ctx.db.write(erase)
    except _Changed:
        return None


class _Changed(Exception):
    """The referral changed while it was being purged."""
