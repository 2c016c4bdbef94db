"""Taxonomy rules: what a request is told about a code it may not use, and the operator's
commands that add and retire codes (audited)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any, get_args

from sqlmodel import Session

from service.db.writes import Writes
from service.i18n import N_, Message, msg
from service.referrals.schemas import DEFAULT_CONSENT_PURPOSES, Approach
from service.taxonomy import repository
from service.taxonomy.models import PHASES, TAXONOMY_LISTS, TaxonomyTerm

CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
APPROACHES: tuple[str, ...] = get_args(Approach)
# Outcomes are the referral workflow's own: they change with a release, not from the CLI.
OPERATOR_KINDS = tuple(kind for kind in TAXONOMY_LISTS if kind != "outcome")
# Codes a request gets without naming them (the consent purposes assumed when a client sends
# none): retiring one would refuse requests that never chose it.
_IMPLIED = {("consent_purpose", code) for code in DEFAULT_CONSENT_PURPOSES}
MAX_SUGGESTIONS = 3


class TaxonomyError(ValueError):
    """An operator command on the taxonomy cannot be done as asked."""


def closest_codes(value: str, codes: Iterable[str]) -> list[str]:
    """The codes most like `value`: those containing it (or contained in it), then the
    closest spellings; at most MAX_SUGGESTIONS."""
    wanted = value.upper()
    candidates = sorted(codes)
    found: list[str] = []
    if len(wanted) >= 3:
        found = sorted(
            (c for c in candidates if wanted in c or (len(c) >= 3 and c in wanted)),
            key=lambda c: (abs(len(c) - len(wanted)), c),
        )
    for code in difflib.get_close_matches(wanted, candidates, n=MAX_SUGGESTIONS, cutoff=0.6):
        if code not in found:
            found.append(code)
    return found[:MAX_SUGGESTIONS]


# What each kind of code is called in a request's error (translated with the message).
_LABELS = {
    "group": N_("group"),
    "kemenham_group": N_("KemenHAM group"),
    "case_type": N_("case type"),
    "service_type": N_("service type"),
    "service_unit": N_("service unit"),
    "outcome": N_("outcome"),
    "decline_reason": N_("decline reason"),
    "consent_purpose": N_("consent purpose"),
}


def code_problem(
    kind: str, value: str, terms: Mapping[str, TaxonomyTerm]
) -> tuple[Message, dict[str, Any]] | None:
    """What is wrong with `value` as a code of `kind` (message and the error's extra members:
    the list to consult and the closest active codes), or None when it is an active code."""
    term = terms.get(value)
    if term is not None and term.active:
        return None
    listed = TAXONOMY_LISTS[kind]
    label = msg(_LABELS[kind])
    if term is not None:
        return (
            msg(
                "retired {label} code, no longer accepted on new records; the codes in use "
                "are in `{list}` of GET /v1/taxonomy",
                label=label,
                list=listed,
            ),
            {"taxonomy": listed},
        )
    suggestions = closest_codes(value, (c for c, t in terms.items() if t.active))
    if suggestions:
        message = msg(
            "unknown {label} code; the codes are in `{list}` of GET /v1/taxonomy; did you "
            "mean {codes}?",
            label=label,
            list=listed,
            codes=", ".join(suggestions),
        )
    else:
        message = msg(
            "unknown {label} code; the codes are in `{list}` of GET /v1/taxonomy",
            label=label,
            list=listed,
        )
    return message, {"taxonomy": listed, "suggestions": suggestions}


def unknown_agency(session: Session, code: str) -> str:
    """What an operator is told of an agency code that does not exist: the codes that do."""
    codes = ", ".join(sorted(repository.all_agency_codes(session)))
    return f"unknown agency {code!r}; the agencies are: {codes} (`rujukan agency list`)"


def _text(value: str | None, what: str, longest: int, *, required: bool) -> str | None:
    if value is None or not value.strip():
        if required:
            raise TaxonomyError(f"{what} is required")
        return None
    value = value.strip()
    if len(value) > longest:
        raise TaxonomyError(f"{what} must be at most {longest} characters")
    return value


def _unknown_kind(kind: str, kinds: tuple[str, ...]) -> str:
    hint = difflib.get_close_matches(kind.lower(), kinds, n=1)
    guess = f"; did you mean {hint[0]}?" if hint else ""
    return f"unknown kind {kind!r}{guess}; the kinds are: " + ", ".join(kinds)


def _check_kind(kind: str) -> None:
    if kind == "outcome":
        raise TaxonomyError(
            "outcomes belong to the referral workflow and change only with a release; "
            "kinds that can change: " + ", ".join(OPERATOR_KINDS)
        )
    if kind not in TAXONOMY_LISTS:
        raise TaxonomyError(_unknown_kind(kind, OPERATOR_KINDS))


def term_summary(row: TaxonomyTerm) -> dict[str, Any]:
    """A taxonomy term as the CLI prints it."""
    extra = {
        "service_type": ("phase",),
        "service_unit": ("agency", "approach", "region"),
    }.get(row.kind, ())
    return {
        "kind": row.kind,
        "code": row.code,
        "name": row.name,
        "name_en": row.name_en,
        "description": row.description,
        "description_id": row.description_id,
        **{key: getattr(row, key) for key in extra},
        "active": row.active,
    }


def add_term(
    w: Writes,
    kind: str,
    code: str,
    *,
    name: str,
    name_en: str,
    description: str | None = None,
    description_id: str | None = None,
    phase: str | None = None,
    agency: str | None = None,
    approach: str | None = None,
    region: str | None = None,
) -> TaxonomyTerm:
    """Add a code to one list of the taxonomy, named in Indonesian and English; audited."""
    session = w.session
    _check_kind(kind)
    if not CODE.match(code):
        raise TaxonomyError(
            "the code must be 2 to 64 capital letters, digits or underscores, starting with "
            "a letter (e.g. PERUNDUNGAN_DARING)"
        )
    row = TaxonomyTerm(
        kind=kind,
        code=code,
        name=_text(name, "--name (Indonesian)", 200, required=True) or "",
        name_en=_text(name_en, "--name-en (English)", 200, required=True),
        description=_text(description, "--description", 1000, required=False),
        description_id=_text(description_id, "--description-id", 1000, required=False),
    )
    if (row.description is None) != (row.description_id is None):
        raise TaxonomyError(
            "give the description in both languages (--description in English and "
            "--description-id in Indonesian), or neither"
        )
    _kind_fields(session, row, phase=phase, agency=agency, approach=approach, region=region)
    existing = repository.term(session, kind, code)
    if existing is not None:
        state = "active" if existing.active else "retired"
        raise TaxonomyError(f"{kind} {code} already exists ({state})")
    repository.add_term(session, row)
    w.append_audit(action="taxonomy.add", agency=None, client_id=None, detail=term_summary(row))
    return row


def _kind_fields(
    session: Session,
    row: TaxonomyTerm,
    *,
    phase: str | None,
    agency: str | None,
    approach: str | None,
    region: str | None,
) -> None:
    """Set and check the fields that only some kinds carry."""
    given = {
        "--phase": phase,
        "--agency": agency,
        "--approach": approach,
        "--region": region,
    }
    allowed = {
        "service_type": {"--phase"},
        "service_unit": {"--agency", "--approach", "--region"},
    }.get(row.kind, set())
    stray = [
        option for option, value in given.items() if value is not None and option not in allowed
    ]
    if stray:
        raise TaxonomyError(f"{', '.join(stray)} does not apply to a {row.kind}")
    if row.kind == "service_type":
        if phase not in PHASES:
            raise TaxonomyError("a service type needs --phase: " + " or ".join(PHASES))
        row.phase = phase
    if row.kind == "service_unit":
        agencies = sorted(repository.all_agency_codes(session))
        if agency is None:
            raise TaxonomyError("a service unit needs --agency, one of: " + ", ".join(agencies))
        if agency not in agencies:
            raise TaxonomyError(unknown_agency(session, agency))
        if approach not in APPROACHES:
            raise TaxonomyError("a service unit needs --approach: " + ", ".join(APPROACHES))
        row.agency, row.approach = agency, approach
        row.region = _text(region, "--region", 100, required=False)


def retire_term(w: Writes, kind: str, code: str) -> TaxonomyTerm:
    """Retire a code: refused on new records, still shown on the records that carry it;
    audited."""
    session = w.session
    _check_kind(kind)
    row = repository.term(session, kind, code)
    if row is None:
        known = repository.terms_of_kind(session, kind, [code])
        hint = closest_codes(code, (c for c, t in known.items() if t.active))
        raise TaxonomyError(
            f"no {kind} {code}"
            + (f"; did you mean {' or '.join(hint)}?" if hint else "")
            + f" (see `rujukan taxonomy list --kind {kind}`)"
        )
    if not row.active:
        raise TaxonomyError(f"{kind} {code} is already retired")
    if (kind, code) in _IMPLIED:
        raise TaxonomyError(
            f"{kind} {code} is assumed by the API when a client names none; it cannot be retired"
        )
    row.active = False
    session.add(row)
    w.append_audit(
        action="taxonomy.retire",
        agency=None,
        client_id=None,
        detail={"kind": kind, "code": code},
    )
    return row


def list_terms(session: Session, kind: str | None = None) -> list[dict[str, Any]]:
    """Every code (of one kind, or of all), retired ones included, as the CLI prints them."""
    if kind is not None and kind not in TAXONOMY_LISTS:
        raise TaxonomyError(_unknown_kind(kind, tuple(TAXONOMY_LISTS)))
    return [
        term_summary(t) for t in repository.every_term(session) if kind is None or t.kind == kind
    ]
