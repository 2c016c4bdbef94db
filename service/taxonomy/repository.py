"""Every query of reference data: agencies and taxonomy terms."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from cachetools import TTLCache
from sqlalchemy import URL, select
from sqlmodel import Session, col

from service.taxonomy.models import DEFAULT_TIME_ZONE, Agency, TaxonomyTerm

T = TypeVar("T", bound=Iterable[str])

# Reference data is read on every create and action, inside the write transaction, but
# changes only when an operator adds or retires a code. A process keeps what it read for
# this many seconds, and reads again at once when asked about a code it does not know, so
# an added code is usable immediately and a retired one is refused within this time.
REFERENCE_DATA_SECONDS = 30.0
# One cache per database, found by the database's URL (hashable: no string rendering per
# call), so that each database has its own entries whichever context or session asks.
_reference_data: dict[URL, TTLCache[str, Any]] = {}
_reference_lock = threading.Lock()


def _cached(session: Session, name: str, wanted: Iterable[str], load: Callable[[], T]) -> T:
    """What `load` reads, kept for REFERENCE_DATA_SECONDS unless a `wanted` code is not in it."""
    url = session.get_bind().engine.url
    with _reference_lock:  # a TTLCache reorders itself on reads: not safe between threads
        cache = _reference_data.get(url)
        if cache is None:
            cache = _reference_data[url] = TTLCache(maxsize=64, ttl=REFERENCE_DATA_SECONDS)
        try:
            hit = cache[name]
        except KeyError:
            hit = None
    if hit is not None and all(code in hit for code in wanted):
        return cast(T, hit)
    value = load()
    with _reference_lock:
        cache[name] = value
    return value


def terms_of_kind(
    session: Session, kind: str, wanted: Iterable[str] = ()
) -> Mapping[str, TaxonomyTerm]:
    """Every taxonomy term of one kind, active or retired, by code; `wanted` are the codes
    the caller will look up (an unknown one makes the cache read the table again)."""

    def load() -> dict[str, TaxonomyTerm]:
        stmt = select(TaxonomyTerm).where(col(TaxonomyTerm.kind) == kind)
        terms = {t.code: t for t in session.execute(stmt).scalars()}
        for term in terms.values():
            # Shared read-only between requests: detached from this request's session.
            session.expunge(term)
        return terms

    # The cached mapping itself, shared: the callers only read it.
    return _cached(session, f"taxonomy:{kind}", wanted, load)


def agency_codes(session: Session, wanted: Iterable[str] = ()) -> set[str]:
    """The agency codes; an unknown `wanted` code makes the cache read the table again."""

    def load() -> frozenset[str]:
        return all_agency_codes(session)

    return set(_cached(session, "agencies", wanted, load))


def all_agency_codes(session: Session) -> frozenset[str]:
    """Every agency code, read now."""
    return frozenset(session.execute(select(col(Agency.code))).scalars())


def agencies(session: Session) -> Sequence[Agency]:
    """Every agency, by code."""
    return session.execute(select(Agency).order_by(Agency.code)).scalars().all()


def agency(session: Session, code: str) -> Agency | None:
    """The agency with this code, if any."""
    return session.get(Agency, code)


def time_zones(session: Session, wanted: Iterable[str] = ()) -> dict[str, str]:
    """Each agency's time zone (IANA name), by code; kept like the other reference data."""

    def load() -> dict[str, str]:
        rows = session.execute(select(col(Agency.code), col(Agency.time_zone)))
        return {code: zone for code, zone in rows}

    return _cached(session, "agency_time_zones", wanted, load)


def time_zone_of(session: Session, code: str) -> str:
    """The agency's time zone, in which its days are counted (the default for an unknown code)."""
    return time_zones(session, [code]).get(code, DEFAULT_TIME_ZONE)


def set_time_zone(session: Session, row: Agency, zone: str) -> None:
    """Change an agency's time zone; this process counts in it at once."""
    row.time_zone = zone
    session.add(row)
    session.flush()
    _forget(session, "agency_time_zones")


def _forget(session: Session, name: str) -> None:
    url = session.get_bind().engine.url
    with _reference_lock:
        cache = _reference_data.get(url)
        if cache is not None:
            cache.pop(name, None)


def agency_names(session: Session, codes: list[str]) -> dict[str, str]:
    """The names of these agencies, by code."""
    rows = session.execute(
        select(col(Agency.code), col(Agency.name)).where(col(Agency.code).in_(codes))
    )
    return {code: name for code, name in rows}


def add_agency(session: Session, row: Agency) -> None:
    """Insert an agency."""
    session.add(row)
    session.flush()


def every_term(session: Session) -> Sequence[TaxonomyTerm]:
    """Every taxonomy term, active or retired, by kind and code."""
    stmt = select(TaxonomyTerm).order_by(TaxonomyTerm.kind, TaxonomyTerm.code)
    return session.execute(stmt).scalars().all()


def term(session: Session, kind: str, code: str) -> TaxonomyTerm | None:
    """The taxonomy term of this kind and code, active or retired, read now."""
    return session.get(TaxonomyTerm, (kind, code))


def add_term(session: Session, row: TaxonomyTerm) -> None:
    """Insert a taxonomy term."""
    session.add(row)
    session.flush()


def term_codes(session: Session, *kinds: str) -> set[str]:
    """The taxonomy codes of these kinds, active or not."""
    stmt = select(col(TaxonomyTerm.code)).where(col(TaxonomyTerm.kind).in_(kinds))
    return set(session.execute(stmt).scalars())
