"""A request checked against the reference data (agencies and codes): 422 naming each field."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session

from service import errors
from service.auth.principal import Principal
from service.i18n import N_, Message, join, msg
from service.referrals.schemas import ReferralCreate
from service.taxonomy import repository as taxonomy
from service.taxonomy.models import TaxonomyTerm
from service.taxonomy.service import code_problem

Location = Sequence[str | int]
# What is wrong with a request: each the location of a field, a message, and optionally the
# error's extra members (an unknown code's list and the closest codes).
Problems = list[
    tuple[Location, str | Message] | tuple[Location, str | Message, dict[str, Any]]
]
UNKNOWN_AGENCY = N_("unknown agency code; the codes are in GET /v1/agencies")


def invalid(problems: Problems) -> errors.ValidationFailed:
    listed: list[dict[str, Any]] = []
    for loc, text, *extra in problems:
        listed.append(
            {"loc": list(loc), "msg": text, "type": "value_error", **(extra[0] if extra else {})}
        )
    return errors.ValidationFailed(
        join("; ", [join(": ", [".".join(map(str, item["loc"])), item["msg"]]) for item in listed]),
        listed,
    )


def check_code(
    kind: str, loc: Location, value: str, terms: Mapping[str, TaxonomyTerm], problems: Problems
) -> None:
    """Add a problem when `value` is not an active code of `kind` among `terms`."""
    problem = code_problem(kind, value, terms)
    if problem is not None:
        problems.append((loc, *problem))


def check_codes(
    session: Session, kind: str, loc: Location, values: list[str], problems: Problems
) -> None:
    """Check codes of one kind given as a list at `loc`."""
    terms = taxonomy.terms_of_kind(session, kind, values)
    for index, value in enumerate(values):
        check_code(kind, [*loc, index], value, terms, problems)


def check_unit(
    session: Session, code: str, receiver: str, problems: Problems, field: str = "service_unit"
) -> None:
    units = taxonomy.terms_of_kind(session, "service_unit", [code])
    check_code("service_unit", ["body", field], code, units, problems)
    unit = units.get(code)
    if unit is not None and unit.active and unit.agency != receiver:
        problems.append(
            (["body", field], msg("service unit does not belong to {agency}", agency=receiver))
        )


def validate_create(session: Session, principal: Principal, body: ReferralCreate) -> None:
    problems: Problems = []
    if body.to_agency == principal.agency:
        problems.append((["body", "to_agency"], msg("an agency cannot refer to itself")))
    elif body.to_agency not in taxonomy.agency_codes(session, [body.to_agency]):
        problems.append((["body", "to_agency"], msg(UNKNOWN_AGENCY)))
    check_codes(session, "group", ["body", "groups"], body.groups, problems)
    check_codes(
        session, "kemenham_group", ["body", "kemenham_groups"], body.kemenham_groups, problems
    )
    check_codes(session, "case_type", ["body", "case_types"], body.case_types, problems)
    check_codes(
        session, "consent_purpose", ["body", "consent", "purposes"], body.consent.purposes,
        problems,
    )
    if problems:
        raise invalid(problems)
