"""GET /v1/agencies and GET /v1/taxonomy: reference data, read from the database."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.auth.dependencies import Context, Reader
from service.openapi_docs import problems
from service.taxonomy import repository
from service.taxonomy.fields import agency_field
from service.taxonomy.models import DEFAULT_TIME_ZONE, TAXONOMY_LISTS

router = APIRouter(prefix="/v1", tags=["reference data"])


class AgencyRead(BaseModel):
    """An agency that sends and receives referrals."""

    code: str = Field(
        description="The agency's code, as fields such as `to_agency` take it", examples=["LPSK"]
    )
    name: str = Field(description="The agency's name, in Bahasa Indonesia")
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
    """One code of a reference list."""

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
    """An ATENSI service type."""

    phase: str = Field(
        description="`rehabilitation` (medical, social, psychosocial) or `empowerment` "
        "(school, vocational training, economic); empowerment follows rehabilitation"
    )


class ServiceUnitTerm(Term):
    """A unit (a Sentra or other) of an agency that serves people."""

    agency: str = agency_field("The agency the unit belongs to.")
    approach: str = Field(
        description="How the unit serves: `residential`, `family` or `community`"
    )
    region: str | None = Field(
        default=None, description="Where the unit is; absent when not recorded"
    )


class Taxonomy(BaseModel):
    """Every code a referral may carry, retired ones marked `active: false`."""

    groups: list[Term] = Field(description="The 12-PAS groups (PPKS) of Kemensos")
    kemenham_groups: list[Term] = Field(
        description="KemenHAM's groups: witnesses and victims of human-rights violations, "
        "people in conflict areas, refugees, migrant workers and others"
    )
    case_types: list[Term] = Field(description="What happened to the person")
    service_types: list[ServiceTypeTerm] = Field(
        description="ATENSI service types, with their phase"
    )
    service_units: list[ServiceUnitTerm] = Field(
        description="Units that serve people (Sentra and others), with their agency and approach"
    )
    outcomes: list[Term] = Field(description="How a referral can end")
    decline_reasons: list[Term] = Field(description="Why a receiving agency can decline")
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
