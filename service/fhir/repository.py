"""The queries of the FHIR view."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from service.taxonomy.models import Agency


def agency_names(session: Session, codes: list[str]) -> dict[str, str]:
    """The names of these agencies, by code."""
    agency_code = col(Agency.code)
    rows = session.execute(select(agency_code, col(Agency.name)).where(agency_code.in_(codes)))
    return {code: name for code, name in rows}
