"""GET /v1/agencies and GET /v1/taxonomy: reference data, read from the database."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.auth.dependencies import Context, Reader
from service.openapi_docs import problems
from service.taxonomy import repository
from service.taxonomy.models import DEFAULT_TIME_ZONE, TaxonomyTerm

router = APIRouter(prefix="/v1", tags=["reference data"])


class AgencyRead(BaseModel):
    code: str
    name: str
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
    code: str
    name: str
    description: str | None = None


class ServiceTypeTerm(Term):
    phase: str


class ServiceUnitTerm(Term):
    agency: str
    approach: str
    region: str | None = None


class Taxonomy(BaseModel):
    """Every code a referral may carry."""

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
    return [AgencyRead(code=a.code, name=a.name, time_zone=a.time_zone) for a in rows]


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
