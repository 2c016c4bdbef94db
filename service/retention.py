"""Retention: erase the personal data of referrals closed before a date (`rujukan purge`).

Statistics stay (status, agencies, groups, case types, urgency, timestamps, outcome) and
each erased referral leaves a `referral.purge` tombstone in the audit trail. On SQLite the
connections run with `secure_delete` and the write-ahead log is checkpointed and truncated
afterwards, so the erased values are gone from the database file, not just unreachable.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from service.context import ServiceContext
from service.db.types import utcnow
from service.referrals import repository as repo
from service.referrals import service


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
        done = service.purge_referral(ctx, referral_id, cutoff)
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
