"""What a referral's write records beside the row: its outbox event and its audit entry,
named after the action from the workflow's event vocabulary."""

from __future__ import annotations

import datetime as dt
from typing import Any

from service.auth.principal import Principal
from service.db.writes import Writes
from service.referrals import workflow
from service.referrals.models import Referral


def event_and_audit(
    w: Writes,
    row: Referral,
    actor: Principal,
    *,
    action: str,
    status: str,
    now: dt.datetime,
    detail: dict[str, Any],
) -> None:
    """The event and the audit entry of an action: the last writes of its transaction (from
    the audit lock to the commit, the part every writer of the service waits for)."""
    names = workflow.NAMES[action]
    w.record_event(
        type=names.event,
        referral_id=row.id,
        reference=row.reference,
        status=status,
        from_agency=row.from_agency,
        to_agency=row.to_agency,
        occurred_at=now,
    )
    w.append_audit(
        action=names.audit,
        agency=actor.agency,
        client_id=actor.client_id,
        referral_id=row.id,
        detail=detail,
    )


def audit_created(w: Writes, row: Referral, actor: Principal) -> None:
    """The event and the audit entry of a new referral."""
    event_and_audit(
        w,
        row,
        actor,
        action=workflow.CREATE,
        status=row.status,
        now=row.created_at,
        detail={"to_agency": row.to_agency, "reference": row.reference},
    )
