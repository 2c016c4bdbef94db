"""GET /v1/agencies and GET /v1/taxonomy: reference data, read from the database."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.auth.dependencies import Context, Reader
from service.openapi_docs import problems
from service.taxonomy import repository
from service.taxonomy.fields import agency_field
from service.taxonomy.models import TaxonomyTerm

router = APIRouter(prefix="/v1", tags=["reference data"])


class AgencyRead(BaseModel):
    """An agency that sends and receives referrals."""

    code: str = Field(
        description="The agency's code, as fields such as `to_agency` take it", examples=["LPSK"]
    )
    name: str = Field(description="The agency's name")


class Term(BaseModel):
    """One code of a reference list."""

    code: str = Field(
        description="The code, as referral fields take it; never changes", examples=["TPPO"]
    )
    name: str = Field(description="The code's name, in Bahasa Indonesia")
    description: str | None = Field(
        default=None, description="What the code covers, in English; absent when none is kept"
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
    """Every code a referral may carry."""

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
    return [AgencyRead(code=a.code, name=a.name) for a in rows]


@router.get(
    "/taxonomy",
    response_model=Taxonomy,
    response_model_exclude_none=True,
    summary="Reference codes",
    description=(
        "12-PAS groups, KemenHAM's groups, case types, ATENSI service types with their phase "
        "(rehabilitation before empowerment), service units (Sentra and others) with agency "
        "and approach, close outcomes and decline reasons."
    ),
    responses=problems(401, 403),
)
def get_taxonomy(ctx: Context, principal: Reader) -> Taxonomy:
    """The active reference codes."""
    with ctx.db.reader() as session:
        rows = repository.active_terms(session)
    by_kind: dict[str, list[TaxonomyTerm]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)

    def plain(kind: str) -> list[Term]:
        return [
            Term(code=t.code, name=t.name, description=t.description) for t in by_kind.get(kind, [])
        ]

    return Taxonomy(
        groups=plain("group"),
        kemenham_groups=plain("kemenham_group"),
        case_types=plain("case_type"),
        service_types=[
            ServiceTypeTerm(
                code=t.code, name=t.name, description=t.description, phase=t.phase or ""
            )
            for t in by_kind.get("service_type", [])
        ],
        service_units=[
            ServiceUnitTerm(
                code=t.code,
                name=t.name,
                description=t.description,
                agency=t.agency or "",
                approach=t.approach or "",
                region=t.region,
            )
            for t in by_kind.get("service_unit", [])
        ],
        outcomes=plain("outcome"),
        decline_reasons=plain("decline_reason"),
        consent_purposes=plain("consent_purpose"),
    )
