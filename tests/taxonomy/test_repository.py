"""The reference data that create and the actions check: an added code is seen at once, a
retired one is refused within REFERENCE_DATA_SECONDS, and each database keeps its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cachetools import TTLCache
from sqlalchemy import delete, update
from sqlmodel import col

from service.context import ServiceContext
from service.db import upgrade_to_head
from service.taxonomy import repository
from service.taxonomy.models import TaxonomyTerm
from tests.conftest import make_settings
from tests.support import writer_session

CODE = "PERUNDUNGAN_DARING"


@pytest.fixture
def clock(ctx: ServiceContext, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The reference data of the context's database, cached on a clock the test moves by hand."""
    now = [0.0]
    cache: TTLCache[str, object] = TTLCache(
        maxsize=64, ttl=repository.REFERENCE_DATA_SECONDS, timer=lambda: now[0]
    )
    monkeypatch.setitem(repository._reference_data, ctx.db.engine.url, cache)
    return now


def add_code(ctx: ServiceContext) -> None:
    """What an operator does to add a case type."""
    with writer_session(ctx.db) as session:
        session.add(TaxonomyTerm(kind="case_type", code=CODE, name="Perundungan daring"))
        session.commit()


def remove_code(ctx: ServiceContext) -> None:
    with writer_session(ctx.db) as session:
        session.execute(delete(TaxonomyTerm).where(col(TaxonomyTerm.code) == CODE))
        session.commit()


@pytest.fixture
def new_code(ctx: ServiceContext) -> Iterator[str]:
    """A case type an operator added, removed at the end."""
    add_code(ctx)
    yield CODE
    remove_code(ctx)


def case_types(ctx: ServiceContext, *wanted: str) -> set[str]:
    with ctx.db.reader() as session:
        terms = repository.terms_of_kind(session, "case_type", wanted)
        return {code for code, term in terms.items() if term.active}


def test_a_code_added_after_the_list_was_read_is_seen_at_once(
    ctx: ServiceContext, clock: list[float]
) -> None:
    assert CODE not in case_types(ctx)
    add_code(ctx)
    try:
        assert CODE in case_types(ctx, CODE)
    finally:
        remove_code(ctx)


def test_a_retired_code_is_refused_within_the_cache_time(
    ctx: ServiceContext, clock: list[float], new_code: str
) -> None:
    assert new_code in case_types(ctx, new_code)
    with writer_session(ctx.db) as session:
        session.execute(
            update(TaxonomyTerm).where(col(TaxonomyTerm.code) == new_code).values(active=False)
        )
        session.commit()
    clock[0] += repository.REFERENCE_DATA_SECONDS + 1
    assert new_code not in case_types(ctx, new_code)
    assert "TPPO" in case_types(ctx, "TPPO")


def test_each_database_keeps_its_own_reference_data(
    ctx: ServiceContext,
    backend: str,
    new_database_url,  # type: ignore[no-untyped-def]
    tmp_path: Path,
    clock: list[float],
    new_code: str,
) -> None:
    url = new_database_url(backend)
    upgrade_to_head(url)
    other = ServiceContext.build(make_settings(url, tmp_path))
    try:
        assert new_code in case_types(ctx, new_code)
        # Read in the same process and at the same moment, from a database without the code.
        assert new_code not in case_types(other)
        with other.db.reader() as session:
            assert repository.agency_codes(session) == {"KEMENSOS", "LPSK", "KEMENHAM"}
    finally:
        other.db.dispose()
