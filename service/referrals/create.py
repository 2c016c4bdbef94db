"""Creating a referral: validation, the duplicate rule, its reference, and the replay of a
repeated Idempotency-Key."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from service import errors
from service.agreements import service as agreements
from service.auth.principal import Principal
from service.context import ServiceContext
from service.crypto import KeyFileError
from service.db.types import utcnow
from service.db.writes import Writes
from service.i18n import msg
from service.referrals import repository as repo
from service.referrals import workflow
from service.referrals.models import IdempotencyRecord, Referral
from service.referrals.recording import audit_created
from service.referrals.schemas import ReferralCreate
from service.referrals.sealing import idempotency_context, seal_field
from service.referrals.validation import validate_create
from service.referrals.views import view_for
from service.times import wire


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
        body: dict[str, Any] = json.loads(self.payload)
        return body


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
                msg("This Idempotency-Key cannot be replayed to your agency; send a new key.")
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
            msg("This Idempotency-Key was first used with a different request body.")
        )
    body = json.loads(_stored_answer(ctx, session, record, agency))
    consent = body.get("consent") or {}
    if consent.get("obtained_at"):
        # Answers stored before consent times were written in UTC echo the caller's offset.
        consent["obtained_at"] = wire(dt.datetime.fromisoformat(consent["obtained_at"]))
    # Written out as the first answer was (records stored by earlier releases are spaced).
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Created(
        payload=payload,
        status=record.response_status,
        replayed=True,
        referral_id=str(body["id"]),
        version=int(body["version"]),
    )


def _consent_record(body: ReferralCreate) -> dict[str, Any]:
    """The consent as stored: its time in UTC, like every other (the caller's offset goes)."""
    consent = body.consent.model_dump(mode="json", exclude={"guardian"})
    consent["obtained_at"] = wire(body.consent.obtained_at)
    return consent


def _due_at(ctx: ServiceContext, urgency: str, start: dt.datetime) -> dt.datetime:
    return start + dt.timedelta(hours=ctx.settings.sla_hours(urgency))


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
    # only read (viewed), so an ORM instance would be bookkeeping for nothing.
    return _new_row(
        id=referral_id,
        reference=new_reference(now.year),
        status=workflow.REFERRED,
        from_agency=from_agency,
        to_agency=to_agency,
        protected_identity=protected_identity,
        subject_sealed=seal_field(ctx, referral_id, "subject", json.dumps(subject)),
        nik_hash=ctx.keyring.nik_index(subject["nik"]) if subject.get("nik") else None,
        groups=groups,
        kemenham_groups=kemenham_groups,
        case_types=case_types,
        urgency=urgency,
        summary_sealed=seal_field(ctx, referral_id, "summary", summary),
        consent=consent,
        consent_sealed=(
            seal_field(ctx, referral_id, "consent", json.dumps({"guardian": guardian}))
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


def _new_row(**values: Any) -> repo.ReferralRow:
    return repo.ReferralRow(**{**dict.fromkeys(repo.REFERRAL_COLUMNS), **values})


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
    w: Writes, row: Referral, actor: Principal, idempotency: dict[str, Any] | None = None
) -> None:
    """Insert a referral, its first history entry and, when given, the answer stored for
    its Idempotency-Key."""
    w.insert_referral(
        row,
        history={
            "action": workflow.CREATE,
            "from_status": None,
            "to_status": workflow.REFERRED,
            "actor_agency": actor.agency,
            "actor_client": actor.client_id,
            "detail": {"parent_id": str(row.parent_id)} if row.parent_id else {},
            "occurred_at": row.created_at,
        },
        idempotency=idempotency,
    )


def _allowed_referral(ctx: ServiceContext, session: Session, field: str, **fields: Any) -> Referral:
    """`_build_referral`, once the agreements between its two agencies allow it (`field`: the
    request's field naming the receiver, for the 422)."""
    agreements.check_referral_allowed(
        ctx,
        session,
        from_agency=fields["from_agency"],
        to_agency=fields["to_agency"],
        groups=[*fields["groups"], *fields["kemenham_groups"]],
        case_types=fields["case_types"],
        field=field,
        at=fields["now"],
    )
    return _build_referral(ctx, **fields)


def new_referral(ctx: ServiceContext, w: Writes, field: str, **fields: Any) -> Referral:
    """Build and store a referral inside the caller's transaction (an onward referral),
    following the agreements and the duplicate rule of a create (`_check_duplicate`)."""
    session = w.session
    actor: Principal = fields["actor"]
    row = _allowed_referral(ctx, session, field, **fields)
    _check_duplicate(session, row)
    tries = 1
    while True:
        try:
            with session.begin_nested():
                _store_referral(w, row, actor)
            return row
        except IntegrityError:
            # Lost a race with the same sender's create of the same person: name the winner.
            _check_duplicate(session, row)
            if tries == _REFERENCE_TRIES:
                raise
            # Otherwise the reference was taken: draw another.
            tries += 1
            row.reference = new_reference(row.created_at.year)


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
    another sender's open referral of the person, sealing and the view) happens before the
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
        validate_create(session, principal, body)
        row = _allowed_referral(
            ctx,
            session,
            "to_agency",
            from_agency=principal.agency,
            to_agency=body.to_agency,
            subject=body.subject.model_dump(mode="json", exclude_none=True),
            protected_identity=body.protected_identity,
            groups=body.groups,
            kemenham_groups=body.kemenham_groups,
            case_types=body.case_types,
            urgency=body.urgency,
            summary=body.summary,
            consent=_consent_record(body),
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
    result = view_for(ctx, row, [], viewer=principal.agency, now=now)

    def store(w: Writes) -> Created:
        result.reference = row.reference
        payload = result.model_dump_json()
        _store_referral(
            w,
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
        audit_created(w, row, principal)
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
