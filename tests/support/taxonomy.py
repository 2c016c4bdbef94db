"""Codes an operator adds and retires in a test, as `rujukan taxonomy` does (through the
service functions), removed again at the end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from service.context import ServiceContext
from service.taxonomy import repository
from service.taxonomy.models import TaxonomyTerm
from service.taxonomy.service import add_term, retire_term
from tests.support import writer_session


def forget_reference_data(ctx: ServiceContext) -> None:
    """What a server sees once REFERENCE_DATA_SECONDS have passed: the codes read afresh."""
    repository._reference_data.pop(ctx.db.engine.url, None)


def retire(ctx: ServiceContext, kind: str, code: str) -> None:
    """Retire a code, and let the cache time pass."""
    ctx.db.write(lambda w: retire_term(w, kind, code))
    forget_reference_data(ctx)


@contextmanager
def added_code(ctx: ServiceContext, kind: str, code: str, **fields: Any) -> Iterator[str]:
    """A code added for the test (named in both languages), deleted at the end."""
    fields.setdefault("name", f"Kode uji {code}")
    fields.setdefault("name_en", f"Test code {code}")
    ctx.db.write(lambda w: add_term(w, kind, code, **fields))
    try:
        yield code
    finally:
        with writer_session(ctx.db) as session:
            session.execute(
                delete(TaxonomyTerm).where(
                    col(TaxonomyTerm.kind) == kind, col(TaxonomyTerm.code) == code
                )
            )
            session.commit()
        forget_reference_data(ctx)
