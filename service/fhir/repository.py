"""The queries of the FHIR view."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from service.taxonomy.models import Agency


def agency_names(session: Session, codes: list[str]) -> dict[str, str]:
    """The names of these agencies, by code."""
    rows = session.execute(select(Agency.code, Agency.name).where(Agency.code.in_(codes)))
    return {code: name for code, name in rows}
