"""GET /v1/subjects/export: a data subject's access request (UU PDP Pasal 32)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from service import errors
from service.auth.dependencies import Context, Reader
from service.i18n import Message, join
from service.openapi_docs import problems
from service.referrals.nik import nik_problems
from service.referrals.router import RevealReason
from service.subjects import service
from service.subjects.schemas import SubjectExport

router = APIRouter(prefix="/v1/subjects", tags=["data subjects"])


@router.get(
    "/export",
    response_model=SubjectExport,
    summary="Export a person's data (subject access request)",
    description=(
        "Answers a person's request to access their data (UU PDP Pasal 32): every referral "
        "of the person with this NIK that the caller's agency sent or received, each as the "
        "caller sees it, with its history, notes and processing trail (who did what, when, "
        "from the audit log). A referral of an LPSK-protected person (`protected_identity`) "
        "is exported, with the identity, only when the request carries `X-Reveal-Reason`; "
        "without it the referral is left out. A referral whose consent was withdrawn is left "
        "out for its receiving agency. Each exported referral is written to the audit trail "
        "as `subject.export` (never with the NIK; with the reason, sealed, for a protected "
        "one). An unknown NIK answers 200 with no referrals; a malformed one 422. Erased "
        "(purged) referrals no longer match."
    ),
    responses=problems(401, 403, 422),
)
def export_subject_data(
    ctx: Context,
    principal: Reader,
    response: Response,
    nik: Annotated[str, Query(description="The person's 16-digit NIK", pattern=r"^[0-9]{16}$")],
    reveal_reason: RevealReason = None,
) -> SubjectExport:
    """Export a data subject's referrals."""
    problems_found = nik_problems(nik)
    if problems_found:
        messages = [Message(problem) for problem in problems_found]
        raise errors.ValidationFailed(
            join("; ", messages),
            [{"loc": ["query", "nik"], "msg": m, "type": "value_error"} for m in messages],
        )
    response.headers["Cache-Control"] = "no-store"
    return service.export_subject_data(ctx, principal, nik, reveal_reason)
