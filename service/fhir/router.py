"""GET /v1/referrals/{id}/fhir: a referral in FHIR R4 terms."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from service.auth.dependencies import Context, Reader
from service.fhir import service
from service.openapi_docs import problems
from service.referrals.router import ReferralId

router = APIRouter(prefix="/v1/referrals", tags=["fhir"])

FHIR_JSON = "application/fhir+json"


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


class FhirResource(BaseModel):
    """A FHIR R4 resource (Task, ServiceRequest, Patient or Organization)."""

    model_config = ConfigDict(extra="allow")

    resourceType: str = Field(  # noqa: N815 - FHIR's own member name
        description="The FHIR resource type: `Task`, `ServiceRequest`, `Patient` or "
        "`Organization`"
    )
    id: str = Field(description="The resource's id, stable for the same referral")


class FhirBundleEntry(BaseModel):
    """One resource of the Bundle."""

    model_config = ConfigDict(extra="allow")

    fullUrl: str = Field(  # noqa: N815 - FHIR's own member name
        description="The resource's `urn:uuid:` URL, by which the other resources refer to it"
    )
    resource: FhirResource = Field(description="The resource itself")


class FhirBundle(BaseModel):
    """A FHIR R4 Bundle of type `collection`."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"] = Field(  # noqa: N815 - FHIR's own member name
        description="Always `Bundle`"
    )
    id: str = Field(description="The Bundle's id, one per version of the referral")
    type: Literal["collection"] = Field(description="Always `collection`")
    timestamp: str = Field(description="When the referral last changed (FHIR instant)")
    entry: list[FhirBundleEntry] = Field(
        description="The Task first, then its ServiceRequest, the Patient and the Organizations"
    )


@router.get(
    "/{referral_id}/fhir",
    response_model=FhirBundle,
    response_class=FhirJSONResponse,
    summary="Read a referral as a FHIR R4 Bundle",
    description=(
        "The referral as a FHIR R4 Bundle (type `collection`): a `Task` whose `status` "
        "follows the lifecycle and closure outcome and whose `businessStatus` gives the exact "
        "state, `requester` and `owner` Organizations for the sending and receiving agencies, "
        "`focus` on the `ServiceRequest` and `for` the `Patient`. The NIK is "
        "`Patient.identifier` with system `https://fhir.kemkes.go.id/id/nik`. The Patient "
        "carries exactly what `GET /v1/referrals/{id}` shows the caller: identifying fields "
        "of a protected person, or of a person who withdrew consent (to the receiving "
        "agency), are left out and the Patient is labelled `MASKED`. Either party only "
        "(404 to anyone else)."
    ),
    responses={
        200: {
            "headers": {
                "ETag": {"description": "Version of the referral", "schema": {"type": "string"}}
            }
        },
        **problems(401, 403, 404, 422),
    },
)
def get_referral_fhir(
    referral_id: ReferralId,
    ctx: Context,
    principal: Reader,
) -> Any:
    """A referral as a FHIR R4 Bundle."""
    bundle, etag = service.get_referral_bundle(ctx, principal, referral_id)
    return FhirJSONResponse(bundle, headers={"ETag": etag, "Cache-Control": "no-store"})
