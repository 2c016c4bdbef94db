"""A request checked against the reference data (agencies and codes): 422 naming each field."""

from __future__ import annotations

from sqlmodel import Session

from service import errors
from service.auth.principal import Principal
from service.referrals import repository as repo
from service.referrals.schemas import ReferralCreate


def invalid(problems: list[tuple[list[str | int], str]]) -> errors.ValidationFailed:
    return errors.ValidationFailed(
        "; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems),
        [{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in problems],
    )


def check_codes(session: Session, kind: str, field: str, values: list[str], problems: list) -> dict:
    known = repo.active_codes(session, kind, values)
    for index, value in enumerate(values):
        if value not in known:
            problems.append((["body", field, index], f"unknown {kind.replace('_', ' ')} code"))
    return known


def check_unit(
    session: Session, code: str, receiver: str, problems: list, field: str = "service_unit"
) -> None:
    units = repo.active_codes(session, "service_unit", [code])
    unit = units.get(code)
    if unit is None:
        problems.append((["body", field], "unknown service unit code"))
    elif unit.agency != receiver:
        problems.append((["body", field], f"service unit does not belong to {receiver}"))


def validate_create(session: Session, principal: Principal, body: ReferralCreate) -> None:
    problems: list[tuple[list[str | int], str]] = []
    if body.to_agency == principal.agency:
        problems.append((["body", "to_agency"], "an agency cannot refer to itself"))
    elif body.to_agency not in repo.agency_codes(session, [body.to_agency]):
        problems.append((["body", "to_agency"], "unknown agency code"))
    check_codes(session, "group", "groups", body.groups, problems)
    check_codes(session, "kemenham_group", "kemenham_groups", body.kemenham_groups, problems)
    check_codes(session, "case_type", "case_types", body.case_types, problems)
    purposes = repo.active_codes(session, "consent_purpose", body.consent.purposes)
    for index, code in enumerate(body.consent.purposes):
        if code not in purposes:
            problems.append((["body", "consent", "purposes", index], "unknown consent purpose"))
    if problems:
        raise invalid(problems)
