"""HTTP surface of the referral lifecycle: parse, call one service function, shape the answer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import BaseModel

from service import errors
from service.auth.dependencies import (
    Assessor,
    Context,
    CurrentPrincipal,
    Reader,
    Server,
    Writer,
    any_scope_of,
)
from service.i18n import msg
from service.openapi_docs import problems
from service.paging import PageCursor
from service.referrals import actions, create, queries, workflow
from service.referrals.etags import etag, expected_versions
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
    Status,
    Timestamp,
    Urgency,
)
from service.taxonomy.fields import agency_query, code_query

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="ETag of the referral version the action is based on (required)",
    ),
]
ReferralId = Annotated[uuid.UUID, Path(description="The referral's `id` (a UUID)")]
RevealReason = Annotated[
    str | None,
    Header(
        alias="X-Reveal-Reason",
        min_length=3,
        max_length=500,
        description="Why the caller needs a protected identity; kept (sealed) in the audit trail",
    ),
]
_AGENCY_CODE = r"^[A-Z0-9_]+$"

_READ_ERRORS = problems(401, 403, 404, 422)
_ACTION_ERRORS = problems(401, 403, 404, 409, 412, 422, 428)
_ETAG_HEADER = {"ETag": {"description": "Version of the referral", "schema": {"type": "string"}}}
_ACTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"headers": _ETAG_HEADER},
    **_ACTION_ERRORS,
}


def _json(model: BaseModel, headers: dict[str, str]) -> Response:
    """The model as the JSON body FastAPI would send for it.

    Returned as a ready Response, FastAPI does not validate and serialise it a second time
    against the route's `response_model` (which still documents the body).
    """
    return Response(model.model_dump_json(), media_type="application/json", headers=headers)


def _with_etag(referral: ReferralRead, response: Response) -> ReferralRead:
    response.headers["ETag"] = etag(referral.version)
    response.headers["Cache-Control"] = "no-store"
    return referral


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReferralRead,
    summary="Refer a person to another agency",
    description=(
        "Creates a referral from the caller's agency to `to_agency` in state `referred`. "
        "Send `Idempotency-Key` to make retries safe: a repeat with the same key and body "
        "returns the first response; the same key with another body is refused (422), and "
        "a key is the calling agency's own. A second open referral of the same NIK from the "
        "caller to the same agency is refused (409) and the problem names the existing "
        "referral. An open referral of the same NIK to that agency from another sender does "
        "not refuse the create (that would tell the caller the person is known there): the "
        "new referral is created, and only its receiver sees `possible_duplicate_of` naming "
        "the open one."
    ),
    responses={
        201: {
            "headers": {
                **_ETAG_HEADER,
                "Location": {
                    "description": "The new referral's URL: `/v1/referrals/{id}`",
                    "schema": {"type": "string"},
                },
            }
        },
        **problems(
            401, 403, 409, 422,
            examples={
                409: errors.DuplicateReferral(
                    "0f8a4c2e-6b1d-4f3a-9c7e-2d5b8a1e4f60", "RJK-2026-7K3QX9MD"
                )
            },
        ),
    },
)
def create_referral(
    body: ReferralCreate,
    ctx: Context,
    principal: Writer,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description=(
                "A key of your choosing (e.g. a UUID; printable ASCII, no spaces, up to 255 "
                "characters) that makes a retry safe: a repeat with the same key and body "
                "returns the first answer, the same key with another body is refused (422). "
                "Keys are the calling agency's own"
            ),
        ),
    ] = None,
) -> Response:
    """Create a referral."""
    created = create.create_referral(ctx, principal, body, idempotency_key)
    headers = {
        "ETag": etag(created.version),
        "Location": f"/v1/referrals/{created.referral_id}",
        "Cache-Control": "no-store",
    }
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(
        created.payload, status_code=created.status, headers=headers, media_type="application/json"
    )


@router.get(
    "",
    response_model=ReferralPage,
    summary="List referrals of the caller's agency",
    description=(
        "Referrals the caller's agency sent or received, newest first. Filters combine with "
        "AND. `nik` matches exactly through a keyed hash index, but never a referral whose "
        "identity is sealed to the caller: a protected identity (`protected_identity`) "
        "matches only when the request carries `X-Reveal-Reason`, and each protected "
        "referral matched on the page is then written to the audit trail as a reveal "
        "(`referral.reveal_identity`, the reason sealed); its identifying fields stay "
        "withheld in the list all the same (read it with `reveal=identity` to see them). A "
        "referral whose consent was withdrawn never matches for its receiving agency. "
        "Without `nik` the header is ignored. Pages are keyset-based: pass `next_cursor` "
        "back as `cursor`; pages stay complete and free of duplicates while new referrals "
        "arrive. Identifying fields of protected persons are withheld."
    ),
    responses=problems(401, 403, 422),
)
def list_referrals(
    ctx: Context,
    principal: Reader,
    status_: Annotated[
        Status | None, Query(alias="status", description="Only referrals in this status")
    ] = None,
    direction: Annotated[
        Literal["incoming", "outgoing"] | None,
        Query(
            description="`incoming`: only those the caller's agency received; `outgoing`: only "
            "those it sent; both when left out"
        ),
    ] = None,
    to_agency: Annotated[
        str | None,
        agency_query("Only referrals to this agency.", max_length=32, pattern=_AGENCY_CODE),
    ] = None,
    from_agency: Annotated[
        str | None,
        agency_query("Only referrals from this agency.", max_length=32, pattern=_AGENCY_CODE),
    ] = None,
    group: Annotated[
        str | None,
        code_query(
            "groups",
            "kemenham_groups",
            description="Only referrals that carry this group.",
            max_length=64,
            pattern=r"^[A-Za-z0-9_]+$",
        ),
    ] = None,
    urgency: Annotated[Urgency | None, Query(description="Only referrals of this urgency")] = None,
    nik: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{16}$",
            description="Only referrals of the person with this 16-digit NIK (exact). A "
            "protected identity matches only with `X-Reveal-Reason` (see the operation's "
            "description)",
        ),
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(
            description="`true`: only open referrals past their `due_at`; `false`: only the "
            "others; both when left out"
        ),
    ] = None,
    updated_since: Annotated[
        Timestamp | None,
        Query(
            description="Only referrals changed at or after this time: an RFC 3339 date-time "
            "with an offset"
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=200, description="Most referrals on one page (1 to 200)")
    ] = 50,
    cursor: PageCursor = None,
    reveal_reason: RevealReason = None,
) -> Response:
    """List referrals."""
    page = queries.list_referrals(
        ctx,
        principal,
        limit=limit,
        cursor=cursor,
        nik=nik,
        reveal_reason=reveal_reason,
        status=status_,
        direction=direction,
        to_agency=to_agency,
        from_agency=from_agency,
        group=group,
        urgency=urgency,
        overdue=overdue,
        updated_since=updated_since,
    )
    return _json(page, {"Cache-Control": "no-store"})


@router.get(
    "/{referral_id}",
    response_model=ReferralRead,
    summary="Read one referral",
    description=(
        "A referral, to its sending or receiving agency only (404 to anyone else). For a "
        "protected person (`protected_identity`), identifying fields are withheld unless "
        "`reveal=identity` is given together with an `X-Reveal-Reason`. Once consent is "
        "withdrawn, the receiving agency sees none of the person's data and a reveal by it "
        "is refused (403)."
    ),
    responses={200: {"headers": _ETAG_HEADER}, **_READ_ERRORS},
)
def get_referral(
    referral_id: ReferralId,
    ctx: Context,
    principal: Reader,
    reveal: Annotated[
        Literal["identity"] | None,
        Query(
            description="`identity` shows a protected person's identifying fields to a party; "
            "needs `X-Reveal-Reason`, and is written to the audit trail"
        ),
    ] = None,
    reveal_reason: RevealReason = None,
) -> Response:
    """Get a referral."""
    if reveal and not reveal_reason:
        raise errors.ValidationFailed(
            msg("Revealing a protected identity needs an X-Reveal-Reason header."),
            [
                {
                    "loc": ["header", "X-Reveal-Reason"],
                    "msg": msg("required with reveal=identity"),
                    "type": "missing",
                }
            ],
        )
    referral = queries.get_referral(
        ctx, principal, referral_id, reveal=bool(reveal), reveal_reason=reveal_reason
    )
    return _json(referral, {"ETag": etag(referral.version), "Cache-Control": "no-store"})


@router.post(
    "/{referral_id}/assess",
    response_model=ReferralRead,
    summary="Assess the referred person",
    description="Receiver only, from `referred` to `assessed`. Needs `If-Match`.",
    responses=_ACTION_RESPONSES,
)
def assess_referral(
    referral_id: ReferralId,
    body: AssessIn,
    ctx: Context,
    principal: Assessor,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralRead:
    """Assess a referral."""
    return _with_etag(
        actions.assess_referral(ctx, principal, referral_id, body, expected_versions(if_match)),
        response,
    )


def _service_recorder(action: actions.ServiceAction) -> Callable[..., ReferralRead]:
    """The endpoint of one way to record a service: `serve` or `record_service`."""

    def record(
        referral_id: ReferralId,
        body: ServiceIn,
        ctx: Context,
        principal: Server,
        response: Response,
        if_match: IfMatch = None,
    ) -> ReferralRead:
        return _with_etag(
            actions.record_service(
                ctx, principal, referral_id, body, expected_versions(if_match), action=action
            ),
            response,
        )

    return record


router.post(
    "/{referral_id}/serve",
    name="serve_referral",
    response_model=ReferralRead,
    summary="Start serving the person",
    description=(
        "Receiver only, from `assessed` to `served`, recording the first service. Following "
        "ATENSI, an empowerment service (school, training) cannot start before the assessed "
        "rehabilitation. Needs `If-Match`."
    ),
    responses=_ACTION_RESPONSES,
)(_service_recorder("serve"))

router.post(
    "/{referral_id}/services",
    name="record_service",
    response_model=ReferralRead,
    summary="Record a further service",
    description="Receiver only, on a `served` referral (it stays `served`). Needs `If-Match`.",
    responses=_ACTION_RESPONSES,
)(_service_recorder("record_service"))


@router.post(
    "/{referral_id}/close",
    response_model=ReferralRead,
    summary="Close the referral",
    description=(
        "Outcomes: `completed` (receiver, from served); `declined` (receiver, from referred or "
        "assessed, with a decline `reason` code); `withdrawn` (sender, from referred or "
        "assessed; scope referrals:write); `unreachable`, `deceased` (receiver, any open "
        "state); `referred_onward` (receiver, from assessed or served, with `onward_agency`: "
        "creates the linked child referral in the same transaction). Needs `If-Match`."
    ),
    responses=_ACTION_RESPONSES,
    # The outcome decides the scope (the service checks it): each is documented.
    openapi_extra=any_scope_of(*workflow.scopes_of("close")),
)
def close_referral(
    referral_id: ReferralId,
    body: CloseIn,
    ctx: Context,
    principal: CurrentPrincipal,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralRead:
    """Close a referral."""
    return _with_etag(
        actions.close_referral(ctx, principal, referral_id, body, expected_versions(if_match)),
        response,
    )


@router.post(
    "/{referral_id}/consent-withdrawal",
    response_model=ReferralRead,
    summary="Record that the person withdrew consent",
    description=(
        "Either party (scope referrals:write), from any open state: closes the referral with "
        "outcome `consent_withdrawn` (UU PDP Pasal 40). From then on the receiving agency no "
        "longer sees any field of the subject (sex and region code included), the guardian, "
        "`external_ref`, `possible_duplicate_of`, the summary or notes (they read as "
        "withheld, `consent_withdrawn` is true, `subject.sealed` is true), cannot reveal "
        "them, and does not find the referral by NIK or in a subject export; the sending "
        "agency keeps seeing what it holds. Written to the history and the audit trail. 409 "
        "if already closed. Needs `If-Match`."
    ),
    responses=_ACTION_RESPONSES,
)
def withdraw_consent(
    referral_id: ReferralId,
    body: ConsentWithdrawalIn,
    ctx: Context,
    principal: Writer,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralRead:
    """Withdraw consent to a referral."""
    return _with_etag(
        actions.withdraw_consent(ctx, principal, referral_id, body, expected_versions(if_match)),
        response,
    )


@router.post(
    "/{referral_id}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=NoteRead,
    summary="Add a note",
    description=(
        "Either party, in any state. Notes only append, so `If-Match` is optional; when "
        "given it must match (412 otherwise)."
    ),
    responses=problems(401, 403, 404, 412, 422),
)
def add_note(
    referral_id: ReferralId,
    body: NoteIn,
    ctx: Context,
    principal: Writer,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=200,
            description="Optional: the referral's ETag; when given, the note is added only if "
            "the referral is still at that version (412 otherwise)",
        ),
    ] = None,
) -> NoteRead:
    """Add a note to a referral."""
    return actions.add_note(ctx, principal, referral_id, body, expected_versions(if_match))


@router.get(
    "/{referral_id}/notes",
    response_model=list[NoteRead],
    summary="List notes",
    description="The notes on a referral, oldest first.",
    responses=_READ_ERRORS,
)
def list_notes(referral_id: ReferralId, ctx: Context, principal: Reader) -> list[NoteRead]:
    """List notes of a referral."""
    return queries.list_notes(ctx, principal, referral_id)


@router.get(
    "/{referral_id}/history",
    response_model=list[HistoryEntry],
    summary="Read the history",
    description="Every successful action on the referral, oldest first.",
    responses=_READ_ERRORS,
)
def get_history(referral_id: ReferralId, ctx: Context, principal: Reader) -> list[HistoryEntry]:
    """History of a referral."""
    return queries.get_history(ctx, principal, referral_id)
