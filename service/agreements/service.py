"""Agreement rules: registering and ending agreements, agencies, and the check on referrals."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from service import errors
from service.agreements import repository as repo
from service.agreements.models import KINDS, Agreement
from service.context import ServiceContext
from service.db.types import utcnow
from service.db.writes import Writes
from service.i18n import msg
from service.taxonomy import repository as taxonomy
from service.taxonomy.models import DEFAULT_TIME_ZONE, Agency
from service.taxonomy.service import closest_codes, unknown_agency
from service.times import UnknownTimeZone, check_zone, day_start, local_day, wire

AGENCY_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,31}$")
# Agencies seeded by the first migration; dev mode links them with these agreements.
DEV_AGENCIES = ("KEMENHAM", "KEMENSOS", "LPSK")
DEV_VALID_FROM = dt.date(2020, 1, 1)


class AgreementError(ValueError):
    """An operator command on agreements or agencies cannot be done as asked."""


def summary(
    row: Agreement, now: dt.datetime | None = None, zones: dict[str, str] | None = None
) -> dict[str, Any]:
    """An agreement as the CLI prints it; `in_force_for` says, for each of its agencies,
    whether it covers a referral that agency sends now (its own day: SENDER_DAY)."""
    now = now or utcnow()
    zones = zones or {}
    by_sender = {}
    for code in (row.agency_a, row.agency_b):
        zone = zones.get(code, DEFAULT_TIME_ZONE)
        by_sender[code] = in_force(row, local_day(now, zone), zone)
    return {
        "number": row.number,
        "kind": row.kind,
        "agencies": [row.agency_a, row.agency_b],
        "valid_from": row.valid_from.isoformat(),
        "valid_until": row.valid_until.isoformat() if row.valid_until else None,
        "groups": list(row.groups),
        "case_types": list(row.case_types),
        "ended_at": wire(row.ended_at) if row.ended_at else None,
        "in_force": any(by_sender.values()),
        "in_force_for": by_sender,
    }


# An agreement's days (valid_from, valid_until, the day it ended) are the sending agency's:
# the referral is made at the sender's desk, on the sender's calendar, and the sender is the
# one refused when no agreement is in force. A referral sent at 23:30 WIB on 31 October from
# Jakarta counts on 31 October, though it is already 1 November in Jayapura.
SENDER_DAY = "the sending agency's day"


def in_force(row: Agreement, on: dt.date, zone_name: str) -> bool:
    """Whether the agreement applies on the day `on` of the calendar of `zone_name`."""
    if row.ended_at is not None and local_day(row.ended_at, zone_name) <= on:
        return False
    return row.valid_from <= on and (row.valid_until is None or on <= row.valid_until)


def _covers(row: Agreement, groups: set[str], case_types: set[str]) -> bool:
    return (not row.groups or groups <= set(row.groups)) and (
        not row.case_types or case_types <= set(row.case_types)
    )


def check_referral_allowed(
    ctx: ServiceContext,
    session: Session,
    *,
    from_agency: str,
    to_agency: str,
    groups: Sequence[str],
    case_types: Sequence[str],
    field: str,
    at: dt.datetime,
) -> None:
    """Refuse (422) a referral that no agreement in force covers, when agreements are required.

    Only the two agencies and the referral's own codes are consulted, so the answer tells the
    caller nothing about other referrals.
    """
    if not ctx.settings.agreement_required:
        return
    wanted_groups, wanted_types = set(groups), set(case_types)
    zone_name = taxonomy.time_zone_of(session, from_agency)
    on = local_day(at, zone_name)
    current = [
        a for a in repo.between(session, from_agency, to_agency) if in_force(a, on, zone_name)
    ]
    if any(_covers(a, wanted_groups, wanted_types) for a in current):
        return
    if not current:
        detail = msg(
            "No cooperation agreement (MoU or PKS) between {sender} and {receiver} is in force "
            "on {day} ({sender}'s day, in {zone}).",
            sender=from_agency,
            receiver=to_agency,
            day=on,
            zone=zone_name,
        )
        missing = msg("no agreement in force")
    else:
        uncovered_groups = sorted(
            g for g in wanted_groups if not any(not a.groups or g in a.groups for a in current)
        )
        uncovered_types = sorted(
            c
            for c in wanted_types
            if not any(not a.case_types or c in a.case_types for a in current)
        )
        parts = []
        if uncovered_groups:
            parts.append(msg("group(s) {codes}", codes=", ".join(uncovered_groups)))
        if uncovered_types:
            parts.append(msg("case type(s) {codes}", codes=", ".join(uncovered_types)))
        what = (
            msg("{first} and {second}", first=parts[0], second=parts[1])
            if len(parts) == 2
            else parts[0]
            if parts
            else msg("this combination of groups and case types")
        )
        detail = msg(
            "The agreements in force between {sender} and {receiver} on {day} ({sender}'s day, "
            "in {zone}) do not cover {what}.",
            sender=from_agency,
            receiver=to_agency,
            day=on,
            zone=zone_name,
            what=what,
        )
        missing = msg("not covered: {what}", what=what)
    raise errors.AgreementMissing(
        detail, [{"loc": ["body", field], "msg": missing, "type": "agreement_missing"}]
    )


def add_agreement(
    w: Writes,
    *,
    number: str,
    kind: str,
    agencies: tuple[str, str],
    valid_from: dt.date,
    valid_until: dt.date | None,
    groups: Sequence[str] = (),
    case_types: Sequence[str] = (),
) -> Agreement:
    """Register an agreement and write it to the audit trail."""
    session = w.session
    number = number.strip()
    if not number or len(number) > 100:
        raise AgreementError("the agreement number must be 1 to 100 characters")
    if kind not in KINDS:
        raise AgreementError(f"kind must be one of {', '.join(KINDS)}")
    one, other = agencies
    if one == other:
        raise AgreementError("an agreement needs two different agencies")
    for code in agencies:
        if taxonomy.agency(session, code) is None:
            raise AgreementError(
                unknown_agency(session, code) + "; add another with `rujukan agency add`"
            )
    if valid_until is not None and valid_until < valid_from:
        raise AgreementError("valid_until is before valid_from")
    known_groups = taxonomy.term_codes(session, "group", "kemenham_group")
    known_types = taxonomy.term_codes(session, "case_type")
    unknown = []
    for given, known, option in (
        (groups, known_groups, "--group"),
        (case_types, known_types, "--case-type"),
    ):
        for code in given:
            if code not in known:
                near = closest_codes(code, known)
                guess = f" (did you mean {' or '.join(near)}?)" if near else ""
                unknown.append(f"{option} {code}{guess}")
    if unknown:
        raise AgreementError(
            "unknown code(s): "
            + ", ".join(unknown)
            + "; see `rujukan taxonomy list --kind group` (or kemenham_group, case_type)"
        )
    if repo.by_number(session, number) is not None:
        raise AgreementError(f"an agreement numbered {number!r} is already registered")
    a, b = repo.pair(one, other)
    row = Agreement(
        number=number,
        kind=kind,
        agency_a=a,
        agency_b=b,
        valid_from=valid_from,
        valid_until=valid_until,
        groups=sorted(set(groups)),
        case_types=sorted(set(case_types)),
    )
    repo.add(session, row)
    w.append_audit(
        action="agreement.add",
        agency=None,
        client_id=None,
        detail={k: v for k, v in summary(row).items() if k not in ("in_force", "in_force_for")},
    )
    return row


def end_agreement(
    w: Writes, number: str, ended_at: dt.datetime | None = None, on: dt.date | None = None
) -> Agreement:
    """End an agreement early, at `ended_at` (default now) or from the day `on` as both its
    agencies count days; audited."""
    session = w.session
    row = repo.by_number(session, number)
    if row is None:
        raise AgreementError(f"no agreement numbered {number!r}")
    if row.ended_at is not None:
        raise AgreementError(f"agreement {number!r} already ended at {wire(row.ended_at)}")
    if on is not None:
        # The later of the two midnights: the day `on` has begun for both agencies, and
        # neither loses the day before it.
        zones = taxonomy.time_zones(session, [row.agency_a, row.agency_b])
        ended_at = max(
            day_start(on, zones.get(code, DEFAULT_TIME_ZONE))
            for code in (row.agency_a, row.agency_b)
        )
    row.ended_at = ended_at or utcnow()
    session.add(row)
    w.append_audit(
        action="agreement.end",
        agency=None,
        client_id=None,
        detail={"number": row.number, "ended_at": wire(row.ended_at)},
    )
    return row


def list_agreements(session: Session) -> list[dict[str, Any]]:
    """Every agreement, as the CLI prints it."""
    now = utcnow()
    zones = taxonomy.time_zones(session)
    return [summary(a, now, zones) for a in repo.every(session)]


def add_agency(
    w: Writes,
    code: str,
    name: str,
    time_zone: str = DEFAULT_TIME_ZONE,
    *,
    name_en: str | None = None,
) -> Agency:
    """Register a new agency (a provincial social service, another ministry); audited."""
    session = w.session
    if not AGENCY_CODE.match(code):
        raise AgreementError(
            "the agency code must be 2 to 32 capital letters, digits or underscores, "
            "starting with a letter"
        )
    name = name.strip()
    if not name or len(name) > 200:
        raise AgreementError("the agency name must be 1 to 200 characters")
    name_en = (name_en or "").strip() or None
    if name_en is not None and len(name_en) > 200:
        raise AgreementError("the agency's English name must be at most 200 characters")
    _check_zone(time_zone)
    if taxonomy.agency(session, code) is not None:
        raise AgreementError(f"agency {code} already exists")
    row = Agency(code=code, name=name, name_en=name_en, time_zone=time_zone)
    taxonomy.add_agency(session, row)
    w.append_audit(
        action="agency.add",
        agency=None,
        client_id=None,
        detail={"code": code, "name": name, "name_en": name_en, "time_zone": time_zone},
    )
    return row


def _check_zone(name: str) -> None:
    try:
        check_zone(name)
    except UnknownTimeZone as exc:
        raise AgreementError(str(exc)) from None


def set_agency_time_zone(w: Writes, code: str, time_zone: str) -> Agency:
    """Change the time zone an agency's days are counted in; audited with the old zone."""
    session = w.session
    _check_zone(time_zone)
    row = taxonomy.agency(session, code)
    if row is None:
        raise AgreementError(
            unknown_agency(session, code) + "; add another with `rujukan agency add`"
        )
    before = row.time_zone
    taxonomy.set_time_zone(session, row, time_zone)
    w.append_audit(
        action="agency.set_time_zone",
        agency=None,
        client_id=None,
        detail={"code": code, "from": before, "to": time_zone},
    )
    return row


def seed_dev_agreements(w: Writes) -> list[str]:
    """In dev, one open-ended MoU between each two of the three founding agencies (idempotent);
    the numbers of those added."""
    # Several `rujukan migrate` may run at once (containers starting together): holding the
    # audit lock from the look-up to the insert lets one register while the others wait and
    # then find the agreements there.
    w.hold_append_lock()
    session = w.session
    added = []
    for one, other in itertools.combinations(DEV_AGENCIES, 2):
        if taxonomy.agency(session, one) is None or taxonomy.agency(session, other) is None:
            continue
        number = f"DEV/MOU/{one}-{other}"
        if repo.by_number(session, number) is not None:
            continue
        add_agreement(
            w,
            number=number,
            kind="MoU",
            agencies=(one, other),
            valid_from=DEV_VALID_FROM,
            valid_until=None,
        )
        added.append(number)
    return added
