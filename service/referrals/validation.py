"""A request checked against the reference data (agencies and codes): 422 naming each field."""

from __future__ import annotations

from sqlmodel import Session

from service import errors
from service.auth.principal import Principal
from service.i18n import N_, Message, join, msg
from service.referrals.schemas import ReferralCreate
from service.taxonomy import repository as taxonomy
from service.taxonomy.models import TaxonomyTerm

# What is wrong with a request: each the location of a field and a message.
Problems = list[tuple[list[str | int], Message]]

# What an unknown code is called, per taxonomy list.
_UNKNOWN_CODE = {
    "group": N_("unknown group code"),
    "kemenham_group": N_("unknown kemenham group code"),
    "case_type": N_("unknown case type code"),
    "service_type": N_("unknown service type code"),
    "decline_reason": N_("unknown decline reason code"),
}


def invalid(problems: Problems) -> errors.ValidationFailed:
    return errors.ValidationFailed(
        join("; ", [join(": ", [".".join(map(str, loc)), text]) for loc, text in problems]),
        [{"loc": loc, "msg": text, "type": "value_error"} for loc, text in problems],
    )


def check_codes(
    session: Session, kind: str, field: str, values: list[str], problems: Problems
) -> dict[str, TaxonomyTerm]:
    known = taxonomy.active_codes(session, kind, values)
    for index, value in enumerate(values):
        if value not in known:
            unknown = _UNKNOWN_CODE.get(kind, f"unknown {kind.replace('_', ' ')} code")
            problems.append((["body", field, index], Message(unknown)))
    return known


def check_unit(
    session: Session, code: str, receiver: str, problems: Problems, field: str = "service_unit"
) -> None:
    units = taxonomy.active_codes(session, "service_unit", [code])
    unit = units.get(code)
    if unit is None:
        problems.append((["body", field], msg("unknown service unit code")))
    elif unit.agency != receiver:
        problems.append(
            (["body", field], msg("service unit does not belong to {agency}", agency=receiver))
        )


def validate_create(session: Session, principal: Principal, body: ReferralCreate) -> None:
    problems: Problems = []
    if body.to_agency == principal.agency:
        problems.append((["body", "to_agency"], msg("an agency cannot refer to itself")))
    elif body.to_agency not in taxonomy.agency_codes(session, [body.to_agency]):
        problems.append((["body", "to_agency"], msg("unknown agency code")))
    check_codes(session, "group", "groups", body.groups, problems)
    check_codes(session, "kemenham_group", "kemenham_groups", body.kemenham_groups, problems)
    check_codes(session, "case_type", "case_types", body.case_types, problems)
    purposes = taxonomy.active_codes(session, "consent_purpose", body.consent.purposes)
    for index, code in enumerate(body.consent.purposes):
        if code not in purposes:
            problems.append(
                (["body", "consent", "purposes", index], msg("unknown consent purpose"))
            )
    if problems:
        raise invalid(problems)
