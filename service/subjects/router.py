"""GET /v1/subjects/export: a data subject's access request (UU PDP Pasal 32)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from service import errors
from service.auth import scopes
from service.auth.dependencies import Context, require
from service.auth.principal import Principal
from service.openapi_docs import problems
from service.referrals.nik import nik_problems
from service.subjects import service
from service.subjects.schemas import SubjectExport

router = APIRouter(prefix="/v1/subjects", tags=["data subjects"])

Reader = Annotated[Principal, Depends(require(scopes.READ))]


@router.get(
    "/export",
    response_model=SubjectExport,
    summary="Export a person's data (subject access request)",
    description=(
        "Answers a person's request to access their data (UU PDP Pasal 32): every referral "
        "of the person with this NIK that the caller's agency sent or received, each as the "
        "caller sees it but with a protected identity included (the request is the person's "
        "own), with its history, notes and processing trail (who did what, when, from the "
        "audit log). Each exported referral is written to the audit trail as "
        "`subject.export` (never with the NIK). An unknown NIK answers 200 with no "
        "referrals; a malformed one 422. Erased (purged) referrals no longer match."
    ),
    responses=problems(401, 403, 422),
)
def export_subject_data(
    ctx: Context,
    principal: Reader,
    response: Response,
    nik: Annotated[str, Query(description="The person's 16-digit NIK", pattern=r"^[0-9]{16}$")],
) -> SubjectExport:
    """Export a data subject's referrals."""
    problems_found = nik_problems(nik)
    if problems_found:
        raise errors.ValidationFailed(
            "; ".join(problems_found),
            [
                {"loc": ["query", "nik"], "msg": msg, "type": "value_error"}
                for msg in problems_found
            ],
        )
    response.headers["Cache-Control"] = "no-store"
    return service.export_subject_data(ctx, principal, nik)
