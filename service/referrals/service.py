"""The referral actions: one transaction each, rules from the workflow table, no FastAPI."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service import errors
from service.agreements import service as agreements
from service.audit import trail
from service.auth.principal import Principal
from service.context import ServiceContext
from service.crypto import KeyFileError
from service.db.types import utcnow
from service.events import outbox
from service.inputs import check_instant
from service.metrics import UNREADABLE_REFERRALS
from service.referrals import repository as repo
from service.referrals import workflow
from service.referrals.models import (
    IdempotencyRecord,
    Referral,
    ReferralNote,
    ReferralService,
)
from service.referrals.schemas import (
    AssessIn,
    CloseIn,
    ConsentWithdrawalIn,
    HistoryEntry,
    NoteIn,
    NoteRead,
    ReferralCreate,
    ReferralPage,
    ReferralRead,
    ServiceIn,
)

log = logging.getLogger("rujukan.referrals")

IDENTIFYING_FIELDS = ("full_name", "nik", "birth_date", "address", "phone")
REVEAL_ACTION = "referral.reveal_identity"


@dataclass(frozen=True)
class Created:
    """Result of a create: the body to send (JSON), its status, and whether it is a replay."""

    payload: bytes
    status: int
    replayed: bool
    referral_id: str
    version: int

    @property
    def body(self) -> dict[str, Any]:
        """The body as data."""
        return json.loads(self.payload)  # type: ignore[no-any-return]


# ---- sealing helpers ------------------------------------------------------------------------


def _ctx(referral_id: uuid.UUID, field: str) -> str:
    return f"referral:{referral_id}:{field}"


def _seal(ctx: ServiceContext, referral_id: uuid.UUID, field: str, text: str | None) -> str | None:
    return None if text is None else ctx.keyring.seal(text, _ctx(referral_id, field))


def _open(
    ctx: ServiceContext, referral_id: uuid.UUID, field: str, sealed: str | None
) -> str | None:
    return None if sealed is None else ctx.keyring.open(sealed, _ctx(referral_id, field))


# ---- rendering ------------------------------------------------------------------------------


def etag(referral: Referral | ReferralRead) -> str:
    """The ETag of a referral version."""
    return f'"{referral.version}"'


def withheld_from(row: Referral, agency: str) -> bool:
    """True when consent was withdrawn and `agency` received the referral: it sees no more
    of the person's data (the sender keeps seeing what it sent)."""
    return row.consent_withdrawn_at is not None and agency == row.to_agency


def _guardian(ctx: ServiceContext, row: Referral) -> dict[str, Any] | None:
    record = orjson.loads(_open(ctx, row.id, "consent", row.consent_sealed) or "{}")
    return record.get("guardian")  # type: ignore[no-any-return]


def render(
    ctx: ServiceContext,
    row: Referral,
    services: list[ReferralService],
    *,
    viewer: str,
    reveal: bool = False,
    now: dt.datetime | None = None,
) -> ReferralRead:
    """A referral as the `viewer` agency sees it; sealed identities stay sealed unless
    revealed, and a receiver sees none of the person's data once consent is withdrawn."""
    data = render_data(ctx, row, services, viewer=viewer, reveal=reveal, now=now or utcnow())
    return ReferralRead.model_validate(data)


def render_data(
    ctx: ServiceContext,
    row: Referral,
    services: list[ReferralService],
    *,
    viewer: str,
    reveal: bool = False,
    now: dt.datetime,
) -> dict[str, Any]:
    """What `render` returns, as the plain data `ReferralRead` validates: a page of them is
    validated in one call (`ReferralPage.model_validate`), not model by model.

    A referral whose sealed values cannot be opened (damaged, or sealed under a data key the
    key file lacks) comes without them, marked `unavailable`, and is logged and counted: the
    rest of a page is still served, and `rujukan check` names the values.
    """
    try:
        return _render_data(ctx, row, services, viewer=viewer, reveal=reveal, now=now)
    except (KeyFileError, ValueError) as exc:
        # The id and the kind of failure only: the message could describe the stored value.
        log.error(
            "sealed referral data cannot be opened",
            extra={"referral_id": str(row.id), "error_type": type(exc).__name__},
        )
        UNREADABLE_REFERRALS.inc()
        data = _render_data(
            ctx, row, services, viewer=viewer, reveal=reveal, now=now, readable=False
        )
        return {**data, "unavailable": True}


def _render_data(
    ctx: ServiceContext,
    row: Referral,
    services: list[ReferralService],
    *,
    viewer: str,
    reveal: bool,
    now: dt.datetime,
    readable: bool = True,
) -> dict[str, Any]:
    def open_(field: str, sealed_text: str | None) -> str | None:
        return _open(ctx, row.id, field, sealed_text) if readable else None

    withheld = withheld_from(row, viewer)
    sealed = (row.protected_identity and not reveal) or withheld
    subject = orjson.loads(open_("subject", row.subject_sealed) or "{}")
    if sealed:
        # After consent withdrawal the receiver keeps no field of the person at all: sex,
        # a village's region code or why a NIK is absent would still narrow them down.
        subject = (
            {} if withheld else {k: v for k, v in subject.items() if k not in IDENTIFYING_FIELDS}
        )
    subject["sealed"] = sealed

    def free_text(field: str, sealed_text: str | None) -> str | None:
        return None if withheld else open_(field, sealed_text)

    assessment = None
    if row.assessment:
        assessment = {
            **row.assessment,
            "notes": free_text("assessment_notes", row.assessment_notes_sealed),
        }
    closure = None
    if row.closure_outcome and row.closed_at:
        closure = {
            "outcome": row.closure_outcome,
            "reason": row.closure_reason,
            "notes": free_text("closure_notes", row.closure_notes_sealed),
            "onward_agency": row.onward_agency,
            "onward_referral_id": row.onward_referral_id,
            "closed_at": row.closed_at,
        }
    consent = {
        **row.consent,
        "guardian": None if sealed or not readable else _guardian(ctx, row),
        "withdrawn_at": row.consent_withdrawn_at,
    }
    return {
        "id": row.id,
        "reference": row.reference,
        "status": row.status,
        "from_agency": row.from_agency,
        "to_agency": row.to_agency,
        "subject": subject,
        "protected_identity": row.protected_identity,
        "groups": row.groups,
        "kemenham_groups": row.kemenham_groups,
        "case_types": row.case_types,
        "urgency": row.urgency,
        "summary": free_text("summary", row.summary_sealed) or "",
        "consent": consent,
        # The sender's case number is a key to the person's file there.
        "external_ref": None if withheld else row.external_ref,
        "assessment": assessment,
        "services": [
            {
                "id": s.id,
                "service_type": s.service_type,
                "service_unit": s.service_unit,
                "phase": s.phase,
                "started_at": s.started_at,
                "notes": free_text(f"service:{s.id}", s.notes_sealed),
                "recorded_at": s.recorded_at,
            }
            for s in services
        ],
        "closure": closure,
        "parent_id": row.parent_id,
        # Ties this referral to another of the person: shown with the identity only.
        "possible_duplicate_of": (
            row.possible_duplicate_of if viewer == row.to_agency and not sealed else None
        ),
        "due_at": row.due_at,
        "is_overdue": bool(row.status != "closed" and row.due_at and row.due_at < now),
        "consent_withdrawn": row.consent_withdrawn_at is not None,
        "purged_at": row.purged_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
    }


# ---- validation against reference data ------------------------------------------------------


def _invalid(problems: list[tuple[list[str | int], str]]) -> errors.ValidationFailed:
    return errors.ValidationFailed(
        "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems),
        [{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in problems],
    )


def _check_codes(
    session: Session, kind: str, field: str, values: list[str], problems: list
) -> dict:
    known = repo.active_codes(session, kind, values)
    for index, value in enumerate(values):
        if value not in known:
            problems.append((["body", field, index], f"unknown {kind.replace('_', ' ')} code"))
    return known


def _check_unit(
    session: Session, code: str, receiver: str, problems: list, field: str = "service_unit"
) -> None:
    units = repo.active_codes(session, "service_unit", [code])
    unit = units.get(code)
    if unit is None:
        problems.append((["body", field], "unknown service unit code"))
    elif unit.agency != receiver:
        problems.append((["body", field], f"service unit does not belong to {receiver}"))


def _validate_create(session: Session, principal: Principal, body: ReferralCreate) -> None:
    problems: list[tuple[list[str | int], str]] = []
    if body.to_agency == principal.agency:
        problems.append((["body", "to_agency"], "an agency cannot refer to itself"))
    elif body.to_agency not in repo.agency_codes(session, [body.to_agency]):
        problems.append((["body", "to_agency"], "unknown agency code"))
    _check_codes(session, "group", "groups", body.groups, problems)
    _check_codes(session, "kemenham_group", "kemenham_groups", body.kemenham_groups, problems)
    _check_codes(session, "case_type", "case_types", body.case_types, problems)
    purposes = repo.active_codes(session, "consent_purpose", body.consent.purposes)
    for index, code in enumerate(body.consent.purposes):
        if code not in purposes:
            problems.append((["body", "consent", "purposes", index], "unknown consent purpose"))
    if problems:
        raise _invalid(problems)


# ---- create ---------------------------------------------------------------------------------


# Consent fields added after the first release: left out of a request's fingerprint when the
# client did not send them, so a retry of a request stored before they existed still matches.
_LATER_CONSENT_FIELDS = ("purposes", "given_by", "guardian")


def _request_fingerprint(ctx: ServiceContext, body: ReferralCreate) -> str:
    data = body.model_dump(mode="json")
    for name in _LATER_CONSENT_FIELDS:
        if name not in body.consent.model_fields_set:
            data["consent"].pop(name, None)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hmac.new(ctx.keyring.index_key, canonical.encode(), hashlib.sha256).hexdigest()


def idempotency_context(agency: str | None, key: str) -> str:
    """Where the stored answer to an agency's Idempotency-Key is sealed: naming the agency
    (no agency: how records were sealed before, bound to the key only)."""
    return f"idempotency:{key}" if agency is None else f"idempotency:{agency}:{key}"


def _stored_answer(
    ctx: ServiceContext, session: Session, record: IdempotencyRecord, agency: str
) -> str:
    """The stored answer, only if it was sealed for `agency`: a record moved to another
    agency in the database cannot be opened as that agency's."""
    try:
        return ctx.keyring.open(record.response_sealed, idempotency_context(agency, record.key))
    except KeyFileError:
        # Stored before answers were sealed for their agency: replayed to the sender only.
        if repo.sender_of(session, record.referral_id) != agency:
            raise errors.IdempotencyMismatch(
                "This Idempotency-Key cannot be replayed to your agency; send a new key."
            ) from None
        return ctx.keyring.open(record.response_sealed, idempotency_context(None, record.key))


def _replay(
    ctx: ServiceContext,
    session: Session,
    record: IdempotencyRecord,
    fingerprint: str,
    agency: str,
) -> Created:
    if not hmac.compare_digest(record.request_hash, fingerprint):
        raise errors.IdempotencyMismatch(
            "This Idempotency-Key was first used with a different request body."
        )
    body = json.loads(_stored_answer(ctx, session, record, agency))
    # Written out as the first answer was (records stored by earlier releases are spaced).
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Created(
        payload=payload,
        status=record.response_status,
        replayed=True,
        referral_id=str(body["id"]),
        version=int(body["version"]),
    )


def _due_at(ctx: ServiceContext, urgency: str, start: dt.datetime) -> dt.datetime:
    return start + dt.timedelta(hours=ctx.settings.sla_hours(urgency))


def _step_due_at(ctx: ServiceContext, status: str, start: dt.datetime) -> dt.datetime:
    """When the step that begins at `start` in `status` must be done (assessed or served)."""
    hours = {
        workflow.ASSESSED: ctx.settings.sla_service_start_hours,
        workflow.SERVED: ctx.settings.sla_closure_hours,
    }[status]
    return start + dt.timedelta(hours=hours)


def _check_duplicate(session: Session, row: Any, *, refuse_own: bool = True) -> None:
    """Refuse (409, naming it) a second open referral of the same person from the same
    sender to the same receiver; when another sender has one open, point to it instead.

    Only the sender of the open referral is refused: it is a party to it. Any other sender
    would learn from a 409 that the person is known to the receiver (in protection, say),
    so its referral is created, and the receiver, a party to both, sees the pointer. Never
    a pointer to a protected identity: it would tell whose it is without a reveal.

    `refuse_own=False` only points: the sender's own open referral is then left to the
    unique index, whose refusal the create answers (with the replay of a retry of the same
    Idempotency-Key, or this 409).
    """
    if not row.nik_hash:
        return
    others = []
    for existing in repo.open_referrals_of_person(session, row.to_agency, row.nik_hash):
        if existing.from_agency == row.from_agency:
            if refuse_own:
                raise errors.DuplicateReferral(str(existing.id), existing.reference)
            continue
        if not existing.protected_identity:
            others.append(existing.id)
    row.possible_duplicate_of = others[0] if others else None


def _build_referral(
    ctx: ServiceContext,
    *,
    from_agency: str,
    to_agency: str,
    subject: dict[str, Any],
    protected_identity: bool,
    groups: list[str],
    kemenham_groups: list[str],
    case_types: list[str],
    urgency: str,
    summary: str,
    consent: dict[str, Any],
    guardian: dict[str, Any] | None,
    external_ref: str | None,
    parent_id: uuid.UUID | None,
    actor: Principal,
    now: dt.datetime,
) -> Referral:
    """A new referral row with its personal data sealed, not yet stored."""
    referral_id = uuid.uuid4()
    # A plain object with every column as an attribute: it is inserted with Core and then
    # only read (rendered), so an ORM instance would be bookkeeping for nothing.
    return _new_row(
        id=referral_id,
        reference=new_reference(now.year),
        status=workflow.REFERRED,
        from_agency=from_agency,
        to_agency=to_agency,
        protected_identity=protected_identity,
        subject_sealed=_seal(ctx, referral_id, "subject", json.dumps(subject)),
        nik_hash=ctx.keyring.nik_index(subject["nik"]) if subject.get("nik") else None,
        groups=groups,
        kemenham_groups=kemenham_groups,
        case_types=case_types,
        urgency=urgency,
        summary_sealed=_seal(ctx, referral_id, "summary", summary),
        consent=consent,
        consent_sealed=(
            _seal(ctx, referral_id, "consent", json.dumps({"guardian": guardian}))
            if guardian
            else None
        ),
        external_ref=external_ref,
        parent_id=parent_id,
        due_at=_due_at(ctx, urgency, now),
        created_by_client=actor.client_id,
        created_at=now,
        updated_at=now,
        version=1,
    )


def _new_row(**values: Any) -> Any:
    return SimpleNamespace(**{**dict.fromkeys(repo.REFERRAL_COLUMNS), **values})


# Crockford's base32: no I, L, O or U, so nothing is misread on paper or over the phone.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 8
# Tries at a free reference: with 2**40 codes a year, even a second one is rare.
_REFERENCE_TRIES = 3


def new_reference(year: int) -> str:
    """A human-readable reference that counts nothing: `RJK-<year>-` and 8 random base32
    characters (unique through the referral table's unique index; a clash is drawn again)."""
    code = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"RJK-{year}-{code}"


def _store_referral(
    session: Session, row: Referral, actor: Principal, idempotency: dict[str, Any] | None = None
) -> None:
    """Insert a referral, its first history entry and, when given, the answer stored for
    its Idempotency-Key."""
    repo.add_referral(
        session,
        row,
        history={
            "action": "create",
            "from_status": None,
            "to_status": workflow.REFERRED,
            "actor_agency": actor.agency,
            "actor_client": actor.client_id,
            "detail": {"parent_id": str(row.parent_id)} if row.parent_id else {},
            "occurred_at": row.created_at,
        },
        idempotency=idempotency,
    )


def _new_referral(ctx: ServiceContext, session: Session, **fields: Any) -> Referral:
    """Build and store a referral inside the caller's transaction (an onward referral),
    following the duplicate rule of a create (`_check_duplicate`)."""
    actor: Principal = fields["actor"]
    row = _build_referral(ctx, **fields)
    _check_duplicate(session, row)
    tries = 1
    while True:
        try:
            with session.begin_nested():
                _store_referral(session, row, actor)
            return row
        except IntegrityError:
            # Lost a race with the same sender's create of the same person: name the winner.
            _check_duplicate(session, row)
            if tries == _REFERENCE_TRIES:
                raise
            # Otherwise the reference was taken: draw another.
            tries += 1
            row.reference = new_reference(row.created_at.year)


def _event_and_audit(
    session: Session,
    row: Referral,
    actor: Principal,
    *,
    event_type: str,
    status: str,
    now: dt.datetime,
    audit_action: str,
    detail: dict[str, Any],
) -> None:
    """The event and the audit entry of an action: the last writes of its transaction (from
    the audit lock to the commit, the part every writer of the service waits for)."""
    outbox.record(
        session,
        type=event_type,
        referral_id=row.id,
        reference=row.reference,
        status=status,
        from_agency=row.from_agency,
        to_agency=row.to_agency,
        occurred_at=now,
    )
    trail.append(
        session,
        action=audit_action,
        agency=actor.agency,
        client_id=actor.client_id,
        referral_id=row.id,
        detail=detail,
    )


def _audit_created(session: Session, row: Referral, actor: Principal) -> None:
    _event_and_audit(
        session,
        row,
        actor,
        event_type=workflow.CREATED_EVENT,
        status=row.status,
        now=row.created_at,
        audit_action="referral.create",
        detail={"to_agency": row.to_agency, "reference": row.reference},
    )


def _replay_if_stored(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    idempotency_key: str | None,
    fingerprint: str,
) -> Created | None:
    """The replay of the answer stored for the caller's Idempotency-Key, if there is one."""
    if not idempotency_key:
        return None
    record = repo.get_idempotency(session, principal.agency, idempotency_key)
    if record is None:
        return None
    return _replay(ctx, session, record, fingerprint, principal.agency)


def create_referral(
    ctx: ServiceContext,
    principal: Principal,
    body: ReferralCreate,
    idempotency_key: str | None,
) -> Created:
    """Create a referral from the caller's agency (replaying a repeated Idempotency-Key).

    Everything that needs no lock (the replay lookup, validation, agreements, the pointer to
    another sender's open referral of the person, sealing and rendering) happens before the
    write transaction; inside it, only the inserts. The unique indexes decide the rest: a
    request with an Idempotency-Key already used, or a second open referral of the same
    person from the same sender, fails its insert and is answered from what the first
    committed (its replay, or a 409 naming it).
    """
    fingerprint = _request_fingerprint(ctx, body) if idempotency_key else ""
    now = utcnow()
    with ctx.db.autocommit() as session:
        replay = _replay_if_stored(ctx, session, principal, idempotency_key, fingerprint)
        if replay is not None:
            return replay
        _validate_create(session, principal, body)
        agreements.check_referral_allowed(
            ctx,
            session,
            from_agency=principal.agency,
            to_agency=body.to_agency,
            groups=[*body.groups, *body.kemenham_groups],
            case_types=body.case_types,
            field="to_agency",
            on=now.date(),
        )
        row = _build_referral(
            ctx,
            from_agency=principal.agency,
            to_agency=body.to_agency,
            subject=body.subject.model_dump(mode="json", exclude_none=True),
            protected_identity=body.protected_identity,
            groups=body.groups,
            kemenham_groups=body.kemenham_groups,
            case_types=body.case_types,
            urgency=body.urgency,
            summary=body.summary,
            consent=body.consent.model_dump(mode="json", exclude={"guardian"}),
            guardian=(
                body.consent.guardian.model_dump(mode="json", exclude_none=True)
                if body.consent.guardian
                else None
            ),
            external_ref=body.external_ref,
            parent_id=None,
            actor=principal,
            now=now,
        )
        _check_duplicate(session, row, refuse_own=False)
    result = render(ctx, row, [], viewer=principal.agency, now=now)

    def store(session: Session) -> Created:
        result.reference = row.reference
        payload = result.model_dump_json()
        _store_referral(
            session,
            row,
            principal,
            idempotency=(
                {
                    "agency": principal.agency,
                    "key": idempotency_key,
                    "request_hash": fingerprint,
                    "response_status": 201,
                    "response_sealed": ctx.keyring.seal(
                        payload, idempotency_context(principal.agency, idempotency_key)
                    ),
                    "created_at": now,
                }
                if idempotency_key
                else None
            ),
        )
        _audit_created(session, row, principal)
        return Created(
            payload=payload.encode(),
            status=201,
            replayed=False,
            referral_id=str(row.id),
            version=row.version,
        )

    tries = 1
    while True:
        try:
            # On SQLite, committed together with other requests' writes waiting at the same
            # time.
            return ctx.db.write(store)
        except IntegrityError:
            with ctx.db.autocommit() as session:
                # A concurrent request with the same Idempotency-Key committed first (its
                # referral of the same person then also trips the unique index): replay it.
                replay = _replay_if_stored(ctx, session, principal, idempotency_key, fingerprint)
                if replay is not None:
                    return replay
                # The same sender's open referral of the person committed first: name it.
                _check_duplicate(session, row)
            if tries == _REFERENCE_TRIES:
                raise
            # Otherwise the reference was taken: draw another.
            tries += 1
            row.reference = new_reference(now.year)


# ---- reads ----------------------------------------------------------------------------------


def _load(
    session: Session, principal: Principal, referral_id: uuid.UUID, *, for_update: bool = False
) -> Referral:
    row = repo.get_visible(session, referral_id, principal.agency, for_update=for_update)
    if row is None:
        raise errors.NotFound("No referral with this id is visible to your agency.")
    return row


def get_referral(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    *,
    reveal: bool = False,
    reveal_reason: str | None = None,
) -> ReferralRead:
    """One referral, if the caller's agency is a party to it; a reveal is audited first."""
    if not reveal:
        # Row and services need no shared snapshot: services are only ever added, so at
        # worst the answer shows one recorded a moment after the row was read.
        with ctx.db.autocommit() as session:
            row = _load(session, principal, referral_id)
            services = repo.services_of_rows(session, [row])[row.id]
            return render(ctx, row, services, viewer=principal.agency)
    if not reveal_reason:
        raise errors.ValidationFailed("A reason is required to reveal an identity.")
    with ctx.db.writer() as session:
        row = _load(session, principal, referral_id)
        if withheld_from(row, principal.agency):
            raise errors.Forbidden(
                "The person withdrew consent: the receiving agency can no longer see "
                "their identity."
            )
        if row.protected_identity:
            audit_reveal(ctx, session, principal, row, reveal_reason)
            session.commit()
        services = repo.services_of(session, [row.id])[row.id]
        return render(ctx, row, services, viewer=principal.agency, reveal=True)


def seal_reveal_reason(ctx: ServiceContext, referral_id: uuid.UUID, reason: str) -> str:
    """A reveal reason sealed for the audit entry of a referral."""
    return ctx.keyring.seal(reason, f"audit:reveal:{referral_id}")


def audit_reveal(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    row: Referral,
    reason: str,
    **detail: str,
) -> None:
    """Write that the caller saw (or matched) a protected identity, with its sealed reason."""
    trail.append(
        session,
        action=REVEAL_ACTION,
        agency=principal.agency,
        client_id=principal.client_id,
        referral_id=row.id,
        detail={"reference": row.reference, **detail},
        detail_sealed=seal_reveal_reason(ctx, row.id, reason),
    )


def _encode_cursor(row: Referral) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.id)]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, rid = json.loads(raw)
        at = dt.datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError("naive")
        return check_instant(at), uuid.UUID(rid)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise errors.ValidationFailed(
            "cursor is not valid; pass back next_cursor exactly as received",
            [{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        ) from exc


def list_referrals(
    ctx: ServiceContext,
    principal: Principal,
    *,
    limit: int,
    cursor: str | None,
    nik: str | None,
    reveal_reason: str | None = None,
    **filters: Any,
) -> ReferralPage:
    """A page of the caller's referrals, newest first.

    A `nik` matches a protected identity only with a `reveal_reason`, and each protected
    referral it matched on the page is audited as a reveal before the page is answered.
    The identifying fields stay withheld, as in any list: the reason lets the match happen.
    """
    after = _decode_cursor(cursor) if cursor else None
    nik_hash = ctx.keyring.nik_index(nik) if nik else None
    spec = repo.ListFilter(
        agency=principal.agency,
        nik_hash=nik_hash,
        nik_reveal=bool(nik_hash and reveal_reason),
        **filters,
    )
    now = utcnow()
    # As for one referral: the page and its services need no shared snapshot.
    with ctx.db.autocommit() as session:
        rows = repo.list_page(session, spec, limit=limit, after=after, now=now)
        page, more = rows[:limit], len(rows) > limit
        services = repo.services_of_rows(session, page)
        items = [
            render_data(ctx, r, services[r.id], viewer=principal.agency, now=now) for r in page
        ]
    matched = [r for r in page if r.protected_identity]
    if spec.nik_reveal and reveal_reason and matched:
        with ctx.db.writer() as session:
            for row in matched:
                audit_reveal(ctx, session, principal, row, reveal_reason, matched_by="nik")
            session.commit()
    return ReferralPage.model_validate(
        {"items": items, "next_cursor": _encode_cursor(page[-1]) if more else None}
    )


def history_of(session: Session, referral_id: uuid.UUID) -> list[HistoryEntry]:
    """The history rows of a referral, oldest first (the caller checked visibility)."""
    # Numbered within the referral: the rows' own ids count every agency's actions.
    return [
        HistoryEntry(
            id=position,
            action=h.action,
            from_status=h.from_status,
            to_status=h.to_status,
            actor_agency=h.actor_agency,
            occurred_at=h.occurred_at,
            detail=h.detail,
        )
        for position, h in enumerate(repo.history(session, referral_id), start=1)
    ]


def notes_of(ctx: ServiceContext, session: Session, row: Referral, viewer: str) -> list[NoteRead]:
    """The notes of a referral as `viewer` sees them, oldest first."""
    withheld = withheld_from(row, viewer)
    return [
        NoteRead(
            id=n.id,
            text="" if withheld else _open(ctx, row.id, f"note:{n.id}", n.text_sealed) or "",
            author_agency=n.author_agency,
            created_at=n.created_at,
            withheld=withheld,
        )
        for n in repo.notes(session, row.id)
    ]


def get_history(
    ctx: ServiceContext, principal: Principal, referral_id: uuid.UUID
) -> list[HistoryEntry]:
    """Every successful action on a referral, oldest first."""
    with ctx.db.reader() as session:
        _load(session, principal, referral_id)
        return history_of(session, referral_id)


def list_notes(ctx: ServiceContext, principal: Principal, referral_id: uuid.UUID) -> list[NoteRead]:
    """The notes on a referral, oldest first."""
    with ctx.db.reader() as session:
        row = _load(session, principal, referral_id)
        return notes_of(ctx, session, row, principal.agency)


# ---- actions --------------------------------------------------------------------------------


def _party(principal: Principal, row: Referral) -> workflow.Party:
    return workflow.Party.SENDER if row.from_agency == principal.agency else workflow.Party.RECEIVER


def _check_precondition(row: Referral, if_match: str | None) -> None:
    if not if_match:
        raise errors.PreconditionRequired(
            "Send If-Match with the ETag of the referral version you acted on."
        )
    tags = [t.strip() for t in if_match.split(",")]
    if etag(row) not in tags:
        raise errors.PreconditionFailed(
            f"The referral is now at version {row.version}; read it again and retry.",
            current_version=row.version,
            current_status=row.status,
        )


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
            raise errors.InsufficientScope(refusal.detail) from refusal
        if refusal.kind == "party":
            raise errors.Forbidden(refusal.detail) from refusal
        if refusal.kind == "state":
            raise errors.InvalidTransition(refusal.detail, row.status) from refusal
        raise errors.ValidationFailed(
            refusal.detail,
            [
                {
                    "loc": ["body", p.split(":", 1)[0]],
                    "msg": p.split(": ", 1)[-1],
                    "type": "value_error",
                }
                for p in refusal.problems
            ],
        ) from refusal


def _apply(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    row: Referral,
    action: str,
    transition: workflow.Transition,
    changes: dict[str, Any],
    detail: dict[str, Any],
    now: dt.datetime,
    *,
    audit_action: str | None = None,
) -> None:
    changes = {**changes, "status": transition.to, "updated_at": now}
    if not repo.update_if_version(session, row.id, row.version, changes):
        # The error rolls the action's writes back (`Database.write`), and only them.
        raise errors.PreconditionFailed(
            "The referral changed while this request was handled; read it again and retry."
        )
    from_status = row.status
    # The row takes its new values here, so the answer needs no read after the commit.
    for key, value in {**changes, "version": row.version + 1}.items():
        setattr(row, key, value)
    repo.add_history(
        session,
        referral_id=row.id,
        action=action,
        from_status=from_status,
        to_status=transition.to,
        actor_agency=principal.agency,
        actor_client=principal.client_id,
        detail=detail,
        occurred_at=now,
    )
    _event_and_audit(
        session,
        row,
        principal,
        event_type=transition.event,
        status=transition.to,
        now=now,
        audit_action=audit_action or f"referral.{action.replace(':', '.')}",
        detail={"from_status": from_status, "to_status": transition.to, **detail},
    )


def _finish(ctx: ServiceContext, principal: Principal, row: Referral) -> ReferralRead:
    """The answer to an action, once its transaction has committed."""
    # Services are read by a reader: a read in the writer session would open a second write
    # transaction (and wait for the write lock again on SQLite).
    services: list[ReferralService] = []
    if row.status in workflow.MAY_HAVE_SERVICES:
        with ctx.db.autocommit() as reader:
            services = repo.services_of(reader, [row.id])[row.id]
    return render(ctx, row, services, viewer=principal.agency)


def _begin_action(
    session: Session, principal: Principal, referral_id: uuid.UUID, if_match: str | None
) -> Referral:
    row = _load(session, principal, referral_id, for_update=True)
    if not if_match:
        _check_precondition(row, if_match)
    return row


def assess_referral(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: AssessIn,
    if_match: str | None,
) -> ReferralRead:
    """Record the receiver's assessment: referred -> assessed."""

    def act(session: Session) -> Referral:
        row = _begin_action(session, principal, referral_id, if_match)
        transition = _decide(principal, row, "assess")
        _check_precondition(row, if_match)
        problems: list = []
        _check_codes(session, "service_type", "needs", body.needs, problems)
        _check_unit(session, body.service_unit, row.to_agency, problems)
        if problems:
            raise _invalid(problems)
        now = utcnow()
        assessment = {
            "needs": body.needs,
            "approach": body.approach,
            "service_unit": body.service_unit,
            "assessed_at": now.isoformat(),
        }
        _apply(
            ctx,
            session,
            principal,
            row,
            "assess",
            transition,
            {
                "assessment": assessment,
                "assessment_notes_sealed": _seal(ctx, row.id, "assessment_notes", body.notes),
                "due_at": _step_due_at(ctx, workflow.ASSESSED, now),
            },
            {"approach": body.approach, "service_unit": body.service_unit},
            now,
        )
        return row

    return _finish(ctx, principal, ctx.db.write(act))


def _record_service(
    ctx: ServiceContext,
    session: Session,
    principal: Principal,
    row: Referral,
    body: ServiceIn,
    action: str,
    transition: workflow.Transition,
) -> None:
    problems: list = []
    types = repo.active_codes(session, "service_type", [body.service_type])
    service_type = types.get(body.service_type)
    if service_type is None:
        problems.append((["body", "service_type"], "unknown service type code"))
    _check_unit(session, body.service_unit, row.to_agency, problems)
    if problems:
        raise _invalid(problems)
    assert service_type is not None
    if service_type.phase == "empowerment":
        # ATENSI: medical and social rehabilitation come before empowerment.
        needs = (row.assessment or {}).get("needs", [])
        needs_rehab = any(types[n].phase == "rehabilitation" for n in needs if n in types)
        done = repo.services_of(session, [row.id])[row.id]
        rehab_started = any(s.phase == "rehabilitation" for s in done)
        if needs_rehab and not rehab_started:
            raise _invalid(
                [
                    (
                        ["body", "service_type"],
                        "the assessed rehabilitation must start before an empowerment service",
                    )
                ]
            )
    now = utcnow()
    service = ReferralService(
        referral_id=row.id,
        service_type=body.service_type,
        service_unit=body.service_unit,
        phase=service_type.phase or "rehabilitation",
        started_at=body.started_at,
        recorded_by_client=principal.client_id,
        recorded_at=now,
    )
    service.notes_sealed = _seal(ctx, row.id, f"service:{service.id}", body.notes)
    repo.add_service(session, service)
    # The closure clock starts with the first service; further services do not reset it.
    changes = {"due_at": _step_due_at(ctx, workflow.SERVED, now)} if action == "serve" else {}
    _apply(
        ctx,
        session,
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


def serve_referral(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: ServiceIn,
    if_match: str | None,
) -> ReferralRead:
    """Start the first service: assessed -> served."""

    def act(session: Session) -> Referral:
        row = _begin_action(session, principal, referral_id, if_match)
        transition = _decide(principal, row, "serve")
        _check_precondition(row, if_match)
        _record_service(ctx, session, principal, row, body, "serve", transition)
        return row

    return _finish(ctx, principal, ctx.db.write(act))


def record_service(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: ServiceIn,
    if_match: str | None,
) -> ReferralRead:
    """Record a further service on a served referral."""

    def act(session: Session) -> Referral:
        row = _begin_action(session, principal, referral_id, if_match)
        transition = _decide(principal, row, "record_service")
        _check_precondition(row, if_match)
        _record_service(ctx, session, principal, row, body, "record_service", transition)
        return row

    return _finish(ctx, principal, ctx.db.write(act))


def close_referral(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: CloseIn,
    if_match: str | None,
) -> ReferralRead:
    """Close a referral with an outcome; referred_onward also creates the child referral."""
    action = f"close:{body.outcome}"

    def act(session: Session) -> Referral:
        row = _begin_action(session, principal, referral_id, if_match)
        transition = _decide(principal, row, action, body.model_dump())
        _check_precondition(row, if_match)
        problems: list = []
        if body.reason is not None:
            _check_codes(session, "decline_reason", "reason", [body.reason], problems)
            problems = [(["body", "reason"], msg) for _, msg in problems]
        if body.onward_agency is not None:
            if body.onward_agency == principal.agency:
                problems.append((["body", "onward_agency"], "cannot refer onward to yourself"))
            elif body.onward_agency not in repo.agency_codes(session, [body.onward_agency]):
                problems.append((["body", "onward_agency"], "unknown agency code"))
        if problems:
            raise _invalid(problems)
        now = utcnow()
        child: Referral | None = None
        if body.outcome == "referred_onward":
            assert body.onward_agency is not None
            agreements.check_referral_allowed(
                ctx,
                session,
                from_agency=principal.agency,
                to_agency=body.onward_agency,
                groups=[*row.groups, *row.kemenham_groups],
                case_types=row.case_types,
                field="onward_agency",
                on=now.date(),
            )
            child = _new_referral(
                ctx,
                session,
                from_agency=principal.agency,
                to_agency=body.onward_agency,
                subject=json.loads(_open(ctx, row.id, "subject", row.subject_sealed) or "{}"),
                protected_identity=row.protected_identity,
                groups=list(row.groups),
                kemenham_groups=list(row.kemenham_groups),
                case_types=list(row.case_types),
                urgency=row.urgency,
                summary=_open(ctx, row.id, "summary", row.summary_sealed) or "",
                consent=dict(row.consent),
                guardian=_guardian(ctx, row),
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
            session,
            principal,
            row,
            action,
            transition,
            {
                "closure_outcome": body.outcome,
                "closure_reason": body.reason,
                "closure_notes_sealed": _seal(ctx, row.id, "closure_notes", body.notes),
                "onward_agency": body.onward_agency,
                "onward_referral_id": child.id if child else None,
                "closed_at": now,
                "due_at": None,
            },
            detail,
            now,
        )
        if child is not None:
            _audit_created(session, child, principal)
        return row

    return _finish(ctx, principal, ctx.db.write(act))


def add_note(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: NoteIn,
    if_match: str | None,
) -> NoteRead:
    """Add a note; either party, any state. If-Match is optional (notes only append)."""
    with ctx.db.writer() as session:
        row = _load(session, principal, referral_id, for_update=True)
        if workflow.NOTE_SCOPE not in principal.scopes:
            raise errors.InsufficientScope(workflow.NOTE_SCOPE)
        if if_match:
            _check_precondition(row, if_match)
        now = utcnow()
        note = ReferralNote(
            referral_id=row.id,
            author_agency=principal.agency,
            author_client=principal.client_id,
            text_sealed="",
            created_at=now,
        )
        note.text_sealed = _seal(ctx, row.id, f"note:{note.id}", body.text) or ""
        repo.add_note(session, note)
        repo.add_history(
            session,
            referral_id=row.id,
            action="add_note",
            from_status=row.status,
            to_status=row.status,
            actor_agency=principal.agency,
            actor_client=principal.client_id,
            detail={"note_id": str(note.id)},
            occurred_at=now,
        )
        _event_and_audit(
            session,
            row,
            principal,
            event_type=workflow.NOTE_EVENT,
            status=row.status,
            now=now,
            audit_action="referral.add_note",
            detail={"note_id": str(note.id)},
        )
        session.commit()
        return NoteRead(
            id=note.id, text=body.text, author_agency=note.author_agency, created_at=now
        )


def withdraw_consent(
    ctx: ServiceContext,
    principal: Principal,
    referral_id: uuid.UUID,
    body: ConsentWithdrawalIn,
    if_match: str | None,
) -> ReferralRead:
    """Record that the person withdrew consent: the referral closes as consent_withdrawn and
    its receiving agency sees none of the person's data from then on."""
    action = workflow.WITHDRAW_CONSENT

    def act(session: Session) -> Referral:
        row = _begin_action(session, principal, referral_id, if_match)
        transition = _decide(principal, row, action, {"outcome": workflow.CONSENT_WITHDRAWN})
        _check_precondition(row, if_match)
        obtained_at = row.consent.get("obtained_at")
        if obtained_at and body.withdrawn_at < dt.datetime.fromisoformat(obtained_at):
            raise _invalid([(["body", "withdrawn_at"], "is before the consent was obtained")])
        now = utcnow()
        withdrawn_at = body.withdrawn_at.astimezone(dt.UTC)
        _apply(
            ctx,
            session,
            principal,
            row,
            action,
            transition,
            {
                "closure_outcome": workflow.CONSENT_WITHDRAWN,
                "closure_reason": None,
                "closure_notes_sealed": _seal(ctx, row.id, "closure_notes", body.notes),
                "onward_agency": None,
                "onward_referral_id": None,
                "closed_at": now,
                "due_at": None,
                "consent_withdrawn_at": withdrawn_at,
            },
            {"outcome": workflow.CONSENT_WITHDRAWN, "withdrawn_at": withdrawn_at.isoformat()},
            now,
            audit_action="referral.consent_withdrawn",
        )
        return row

    return _finish(ctx, principal, ctx.db.write(act))


# ---- retention ------------------------------------------------------------------------------


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
            repo.set_note_text(session, note.id, _seal(ctx, row.id, f"note:{note.id}", "") or "")
        services = repo.erase_service_notes(session, row.id)
        records = repo.delete_idempotency_records(session, row.id)
        erased = {
            "subject_sealed": _seal(ctx, row.id, "subject", "{}"),
            "nik_hash": None,
            "summary_sealed": _seal(ctx, row.id, "summary", ""),
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
