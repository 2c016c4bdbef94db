"""GET /v1/agencies and GET /v1/taxonomy: reference data, read from the database."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.auth.dependencies import Context, Reader
from service.openapi_docs import problems
from service.taxonomy import repository
from service.taxonomy.models import DEFAULT_TIME_ZONE, TAXONOMY_LISTS

router = APIRouter(prefix="/v1", tags=["reference data"])


class AgencyRead(BaseModel):
    code: str
    name: str
    name_en: str | None = Field(
        default=None, description="The agency's name in English; `name` is the Indonesian name."
    )
    time_zone: str = Field(
        default=DEFAULT_TIME_ZONE,
        description=(
            "IANA time zone the agency's days are counted in (statistics, agreements in "
            "force): `Asia/Jakarta` (WIB) unless set, `Asia/Makassar` (WITA), "
            "`Asia/Jayapura` (WIT)"
        ),
        examples=["Asia/Jakarta"],
    )


class Term(BaseModel):
    code: str = Field(description="The code a request carries; never changes with the language.")
    name: str = Field(description="Name in Indonesian (Bahasa Indonesia).")
    name_en: str = Field(description="Name in English.")
    description: str | None = Field(
        default=None,
        description=(
            "Description in English. Every seeded code has one; a code an operator added may "
            "have none (then `description_id` is absent too)."
        ),
    )
    description_id: str | None = Field(
        default=None, description="Description in Indonesian, present with `description`."
    )
    active: bool = Field(
        description=(
            "False for a retired code: refused on new referrals, assessments, services and "
            "closures, still listed so that records that carry it can be shown."
        )
    )


class ServiceTypeTerm(Term):
    phase: str


class ServiceUnitTerm(Term):
    agency: str
    approach: str
    region: str | None = None


class Taxonomy(BaseModel):
    """Every code a referral may carry, retired ones marked `active: false`."""

    groups: list[Term]
    kemenham_groups: list[Term]
    case_types: list[Term]
    service_types: list[ServiceTypeTerm]
    service_units: list[ServiceUnitTerm]
    outcomes: list[Term]
    decline_reasons: list[Term]
    consent_purposes: list[Term] = Field(
        default_factory=list, description="Purposes a consent record may name (UU PDP)"
    )


@router.get(
    "/agencies",
    response_model=list[AgencyRead],
    summary="List agencies",
    description="The agencies that send and receive referrals.",
    responses=problems(401, 403),
)
def list_agencies(ctx: Context, principal: Reader) -> list[AgencyRead]:
    """All agencies."""
    with ctx.db.reader() as session:
        rows = repository.agencies(session)
    return [
        AgencyRead(code=a.code, name=a.name, name_en=a.name_en, time_zone=a.time_zone)
        for a in rows
    ]


@router.get(
    "/taxonomy",
    response_model=Taxonomy,
    response_model_exclude_none=True,
    summary="Reference codes",
    description=(
        "12-PAS groups, KemenHAM's groups, case types, ATENSI service types with their phase "
        "(rehabilitation before empowerment), service units (Sentra and others) with agency "
        "and approach, close outcomes, decline reasons and consent purposes. Each code has its "
        "name and description in Indonesian and English; a retired code stays listed with "
        "`active: false` (old referrals still carry it) and is refused on new ones."
    ),
    responses=problems(401, 403),
)
def get_taxonomy(ctx: Context, principal: Reader) -> Taxonomy:
    """Every reference code, retired ones marked."""
    with ctx.db.reader() as session:
        rows = repository.every_term(session)
    by_list: dict[str, list[dict[str, Any]]] = {name: [] for name in TAXONOMY_LISTS.values()}
    for row in rows:
        listed = TAXONOMY_LISTS.get(row.kind)
        if listed is None:
            continue
        fields: dict[str, Any] = {
            "code": row.code,
            "name": row.name,
            # A code added by hand without an English name shows its Indonesian one.
            "name_en": row.name_en or row.name,
            "description": row.description,
            "description_id": row.description_id,
            "active": row.active,
        }
        if row.kind == "service_type":
            fields["phase"] = row.phase or ""
        elif row.kind == "service_unit":
            fields.update(agency=row.agency or "", approach=row.approach or "", region=row.region)
        by_list[listed].append(fields)
    return Taxonomy.model_validate(by_list)
