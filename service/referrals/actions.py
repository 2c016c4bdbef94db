"""The referral actions: one transaction each, rules from the workflow table, no FastAPI."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any, Literal

from sqlmodel import Session

from service import errors
from service.auth.principal import Principal
from service.context import ServiceContext
from service.db.types import utcnow
from service.db.writes import Writes
from service.i18n import msg
from service.referrals import chronology, etags, workflow
from service.referrals import repository as repo
from service.referrals.create import new_referral
from service.referrals.etags import Precondition
from service.referrals.models import DeliveredService, Referral, ReferralNote
from service.referrals.queries import load_visible
from service.referrals.recording import audit_created, event_and_audit
from service.referrals.schemas import (
    AssessIn,
    CloseIn,
    ConsentWithdrawalIn,
    NoteIn,
    NoteRead,
    ReferralRead,
    ServiceIn,
)
from service.referrals.sealing import open_field, seal_field
from service.referrals.validation import (
    UNKNOWN_AGENCY,
    Problems,
    check_code,
    check_codes,
    check_unit,
    invalid,
)
from service.referrals.views import guardian_of, view_for
from service.taxonomy import repository as taxonomy
from service.times import utc, wire


def _step_due_at(
    ctx: ServiceContext, status: workflow.ReferralStatus, start: dt.datetime
) -> dt.datetime:
    """When the step that begins at `start` in `status` must be done (assessed or served)."""
    hours = {
        workflow.ASSESSED: ctx.settings.sla_service_start_hours,
        workflow.SERVED: ctx.settings.sla_closure_hours,
    }[status]
    return start + dt.timedelta(hours=hours)


def _party(principal: Principal, row: Referral) -> workflow.Party:
    return workflow.Party.SENDER if row.from_agency == principal.agency else workflow.Party.RECEIVER


def _check_precondition(row: Referral, expected: Precondition | None) -> None:
    """428 without If-Match, 412 unless it admits the referral's current version."""
    if expected is None:
        raise etags.precondition_required()
    if not expected.admits(row.version):
        raise etags.precondition_failed(expected, row.version, row.status)


def _decide(
    principal: Principal, row: Referral, action: str, request: dict[str, Any] | None = None
) -> workflow.Transition:
    try:
        return workflow.decide(
            row.status,
            action,
            party=_party(principal, row),
            granted=principal.scopes,
            request=request,
        )
    except workflow.Refusal as refusal:
        if refusal.kind == "scope":
            raise errors.InsufficientScope(str(refusal.detail)) from refusal
        if refusal.kind == "party":
            raise errors.Forbidden(refusal.detail) from refusal
        if refusal.kind == "state":
            raise errors.InvalidTransition(refusal.detail, row.status) from refusal
        raise errors.ValidationFailed(
            refusal.detail,
            [
                {"loc": ["body", field], "msg": problem, "type": "value_error"}
                for field, problem in refusal.problems
            ],
        ) from refusal


def _apply(
    ctx: ServiceContext,
    w: Writes,
    principal: Principal,
    row: Referral,
    action: str,
    transition: workflow.Transition,
    changes: dict[str, Any],
    detail: dict[str, Any],
    now: dt.datetime,
) -> None:
    changes = {**changes, "status": transition.to, "updated_at": now}
    if not w.update_referral_if_version(row.id, row.version, changes):
        # The error rolls the action's writes back (`Database.write`), and only them.
        raise errors.PreconditionFailed(
            msg("The referral changed while this request was handled; read it again and retry.")
        )
    from_status = row.status
    # The row takes its new values here, so the answer needs no read after the commit.
    for key, value in {**changes, "version": row.version + 1}.items():
        setattr(row, key, value)
    w.add_history(
        referral_id=row.id,
        action=action,
        from_status=from_status,
        to_status=transition.to,
        actor_agency=principal.agency,
        actor_client=principal.client_id,
        detail=detail,
        occurred_at=now,
    )
    event_and_audit(
        w,
        row,
        principal,
        action=action,
        status=transition.to,
        now=now,
        detail={"from_status": from_status, "to_status": transition.to, **detail},
    )


def _finish(ctx: ServiceContext, principal: Principal, row: Referral) -> ReferralRead:
    """The answer to an action, once its transaction has committed."""
    # Services are read by a reader: a read in the writer session would open a second write
    # transaction (and wait for the write lock again on SQLite).
    services: list[DeliveredService] = []
    if row.status in workflow.MAY_HAVE_SERVICES:
        with ctx.db.autocommit() as reader:
            services = repo.services_of(reader, [row.id])[row.id]
    return view_for(ctx, row, services, viewer=principal.agency)


def _load_for_action(
    session: Session, principal: Principal, referral_id: uuid.UUID, expected: Precondition | None
) -> Referral:
    """The referral an action acts on, locked for it; without If-Match, 428 before any rule."""
    row = load_visible(session, principal, referral_id, for_update=True)
    if expected is None:
        _check_precondition(row, expected)
    return row


def assess_referral(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: AssessIn,
    expected: Precondition | None,
) -> ReferralRead:
    """Record the receiver's assessment: referred -> assessed."""

    def act(w: Writes) -> Referral:
        session = w.session
        row = _load_for_action(session, principal, referral_id, expected)
        transition = _decide(principal, row, "assess")
        _check_precondition(row, expected)
        problems: Problems = []
        check_codes(session, "service_type", ["body", "needs"], body.needs, problems)
        check_unit(session, body.service_unit, row.to_agency, problems)
        if problems:
            raise invalid(problems)
        now = utcnow()
        assessment = {
            "needs": body.needs,
            "approach": body.approach,
            "service_unit": body.service_unit,
            "assessed_at": now.isoformat(),
        }
        _apply(
            ctx,
            w,
            principal,
            row,
            "assess",
            transition,
            {
                "assessment": assessment,
                "assessment_notes_sealed": seal_field(ctx, row.id, "assessment_notes", body.notes),
                "due_at": _step_due_at(ctx, workflow.ASSESSED, now),
            },
            {"approach": body.approach, "service_unit": body.service_unit},
            now,
        )
        return row

    return _finish(ctx, principal, ctx.db.write(act))


ServiceAction = Literal["serve", "record_service"]


def record_service(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: ServiceIn,
    expected: Precondition | None,
    *,
    action: ServiceAction,
) -> ReferralRead:
    """Record a service delivered to the person: `serve` starts the first (assessed ->
    served), `record_service` a further one on a served referral."""

    def act(w: Writes) -> Referral:
        session = w.session
        row = _load_for_action(session, principal, referral_id, expected)
        transition = _decide(principal, row, action)
        _check_precondition(row, expected)
        problems: Problems = []
        # Every service type, retired ones too: an assessment's needs keep their phase.
        types = taxonomy.terms_of_kind(session, "service_type", [body.service_type])
        check_code("service_type", ["body", "service_type"], body.service_type, types, problems)
        check_unit(session, body.service_unit, row.to_agency, problems)
        now = utcnow()
        problems += chronology.event_time_problems(
            ["body", "started_at"], body.started_at, chronology.service_start_follows(row), now
        )
        if problems:
            raise invalid(problems)
        service_type = types[body.service_type]
        if service_type.phase == "empowerment":
            # ATENSI: medical and social rehabilitation come before empowerment.
            needs = (row.assessment or {}).get("needs", [])
            needs_rehab = any(types[n].phase == "rehabilitation" for n in needs if n in types)
            done = repo.services_of(session, [row.id])[row.id]
            rehab_started = any(s.phase == "rehabilitation" for s in done)
            if needs_rehab and not rehab_started:
                raise invalid(
                    [
                        (
                            ["body", "service_type"],
                            msg(
                                "the assessed rehabilitation must start before an empowerment "
                                "service"
                            ),
                        )
                    ]
                )
        service = DeliveredService(
            referral_id=row.id,
            service_type=body.service_type,
            service_unit=body.service_unit,
            phase=service_type.phase or "rehabilitation",
            started_at=utc(body.started_at),
            recorded_by_client=principal.client_id,
            recorded_at=now,
        )
        service.notes_sealed = seal_field(ctx, row.id, f"service:{service.id}", body.notes)
        w.insert_rows([service])
        # The closure clock starts with the first service; further services do not reset it.
        changes = {"due_at": _step_due_at(ctx, workflow.SERVED, now)} if action == "serve" else {}
        _apply(
            ctx,
            w,
            principal,
            row,
            action,
            transition,
            changes,
            {
                "service_id": str(service.id),
                "service_type": body.service_type,
                "service_unit": body.service_unit,
            },
            now,
        )
        return row

    return _finish(ctx, principal, ctx.db.write(act))


def _closure(
    ctx: ServiceContext,
    row: Referral,
    outcome: str,
    notes: str | None,
    now: dt.datetime,
    *,
    reason: str | None = None,
    onward: Referral | None = None,
) -> dict[str, Any]:
    """The columns a closure sets, whatever its outcome."""
    return {
        "closure_outcome": outcome,
        "closure_reason": reason,
        "closure_notes_sealed": seal_field(ctx, row.id, "closure_notes", notes),
        "onward_agency": onward.to_agency if onward else None,
        "onward_referral_id": onward.id if onward else None,
        "closed_at": now,
        "due_at": None,
    }


def close_referral(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: CloseIn,
    expected: Precondition | None,
) -> ReferralRead:
    """Close a referral with an outcome; referred_onward also creates the child referral."""
    action = f"close:{body.outcome}"

    def act(w: Writes) -> Referral:
        session = w.session
        row = _load_for_action(session, principal, referral_id, expected)
        transition = _decide(principal, row, action, body.model_dump())
        _check_precondition(row, expected)
        problems: Problems = []
        if body.reason is not None:
            reasons = taxonomy.terms_of_kind(session, "decline_reason", [body.reason])
            check_code("decline_reason", ["body", "reason"], body.reason, reasons, problems)
        if body.onward_agency is not None:
            if body.onward_agency == principal.agency:
                problems.append((["body", "onward_agency"], msg("cannot refer onward to yourself")))
            elif body.onward_agency not in taxonomy.agency_codes(session, [body.onward_agency]):
                problems.append((["body", "onward_agency"], msg(UNKNOWN_AGENCY)))
        if problems:
            raise invalid(problems)
        now = utcnow()
        child: Referral | None = None
        if body.outcome == "referred_onward":
            assert body.onward_agency is not None
            child = new_referral(
                ctx,
                w,
                "onward_agency",
                from_agency=principal.agency,
                to_agency=body.onward_agency,
                subject=json.loads(open_field(ctx, row.id, "subject", row.subject_sealed) or "{}"),
                protected_identity=row.protected_identity,
                groups=list(row.groups),
                kemenham_groups=list(row.kemenham_groups),
                case_types=list(row.case_types),
                urgency=row.urgency,
                summary=open_field(ctx, row.id, "summary", row.summary_sealed) or "",
                consent=dict(row.consent),
                guardian=guardian_of(ctx, row),
                external_ref=None,
                parent_id=row.id,
                actor=principal,
                now=now,
            )
        detail: dict[str, Any] = {"outcome": body.outcome}
        if body.reason:
            detail["reason"] = body.reason
        if child is not None:
            detail["onward_agency"] = child.to_agency
            detail["onward_referral_id"] = str(child.id)
        _apply(
            ctx,
            w,
            principal,
            row,
            action,
            transition,
            _closure(ctx, row, body.outcome, body.notes, now, reason=body.reason, onward=child),
            detail,
            now,
        )
        if child is not None:
            audit_created(w, child, principal)
        return row

    return _finish(ctx, principal, ctx.db.write(act))


def add_note(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: NoteIn,
    expected: Precondition | None,
) -> NoteRead:
    """Add a note; either party, any state. If-Match is optional (notes only append)."""

    def note_on(w: Writes) -> NoteRead:
        row = load_visible(w.session, principal, referral_id, for_update=True)
        if workflow.NOTE_SCOPE not in principal.scopes:
            raise errors.InsufficientScope(workflow.NOTE_SCOPE)
        if expected is not None:
            _check_precondition(row, expected)
        now = utcnow()
        note = ReferralNote(
            referral_id=row.id,
            author_agency=principal.agency,
            author_client=principal.client_id,
            text_sealed="",
            created_at=now,
        )
        note.text_sealed = seal_field(ctx, row.id, f"note:{note.id}", body.text) or ""
        w.insert_rows([note])
        w.add_history(
            referral_id=row.id,
            action=workflow.ADD_NOTE,
            from_status=row.status,
            to_status=row.status,
            actor_agency=principal.agency,
            actor_client=principal.client_id,
            detail={"note_id": str(note.id)},
            occurred_at=now,
        )
        event_and_audit(
            w,
            row,
            principal,
            action=workflow.ADD_NOTE,
            status=row.status,
            now=now,
            detail={"note_id": str(note.id)},
        )
        return NoteRead(
            id=note.id, text=body.text, author_agency=note.author_agency, created_at=now
        )

    return ctx.db.write(note_on)


def withdraw_consent(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: ConsentWithdrawalIn,
    expected: Precondition | None,
) -> ReferralRead:
    """Record that the person withdrew consent: the referral closes as consent_withdrawn and
    its receiving agency sees none of the person's data from then on."""
    action = workflow.WITHDRAW_CONSENT

    def act(w: Writes) -> Referral:
        session = w.session
        row = _load_for_action(session, principal, referral_id, expected)
        transition = _decide(principal, row, action, {"outcome": workflow.CONSENT_WITHDRAWN})
        _check_precondition(row, expected)
        now = utcnow()
        problems = chronology.event_time_problems(
            ["body", "withdrawn_at"], body.withdrawn_at, chronology.withdrawal_follows(row), now
        )
        if problems:
            raise invalid(problems)
        withdrawn_at = utc(body.withdrawn_at)
        _apply(
            ctx,
            w,
            principal,
            row,
            action,
            transition,
            {
                **_closure(ctx, row, workflow.CONSENT_WITHDRAWN, body.notes, now),
                "consent_withdrawn_at": withdrawn_at,
            },
            {"outcome": workflow.CONSENT_WITHDRAWN, "withdrawn_at": wire(withdrawn_at)},
            now,
        )
        return row

    return _finish(ctx, principal, ctx.db.write(act))
