"""Days are the agency's own: a referral made early on 1 November, local time, counts in
November for an agency in WIB, WITA or WIT, though it is still 31 October in UTC; the last
minute of 31 October, local time, counts in October. Statistics, the report and the
agreements in force all count so."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from service import errors
from service.agreements import service as agreements
from service.context import ServiceContext
from service.referrals.models import Referral
from service.taxonomy.models import DEFAULT_TIME_ZONE
from tests.support import Api, ok, writer_session
from tests.support.cli import Cli

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}

# (zone, its offset, a local time early on 1 November): 06:00 WIB, 00:30 WITA, 00:30 WIT.
ZONES = [
    pytest.param("Asia/Jakarta", 7, dt.time(6, 0), id="WIB"),
    pytest.param("Asia/Makassar", 8, dt.time(0, 30), id="WITA"),
    pytest.param("Asia/Jayapura", 9, dt.time(0, 30), id="WIT"),
]


def _at(day: dt.date, local: dt.time, offset: int) -> dt.datetime:
    """The instant (UTC) of a local time in a zone `offset` hours ahead of UTC."""
    zone = dt.timezone(dt.timedelta(hours=offset))
    return dt.datetime.combine(day, local, tzinfo=zone).astimezone(dt.UTC)


def _set_zone(ctx: ServiceContext, code: str, zone: str) -> None:
    ctx.db.write(lambda w: agreements.set_agency_time_zone(w, code, zone))


@pytest.fixture
def zone_of_kemensos(ctx: ServiceContext) -> Iterator[Any]:
    """Sets KEMENSOS's time zone for the test, and puts the default back after it."""
    yield lambda zone: _set_zone(ctx, "KEMENSOS", zone)
    _set_zone(ctx, "KEMENSOS", DEFAULT_TIME_ZONE)


def _made_at(ctx: ServiceContext, api: Api, at: dt.datetime) -> str:
    rid: str = api.create_ok("KEMENSOS")["id"]
    with writer_session(ctx.db) as session:
        session.execute(update(Referral).where(Referral.id == uuid.UUID(rid)).values(created_at=at))
        session.commit()
    return rid


def _total(api: Api, period: dict[str, str]) -> int:
    body = ok(api.http.get("/v1/stats", params=period, headers=api.headers()))
    return int(body["total"])


@pytest.mark.parametrize(("zone", "offset", "early"), ZONES)
def test_stats_count_days_in_the_callers_zone(
    ctx: ServiceContext,
    lpsk: Api,
    kemensos: Api,
    zone_of_kemensos: Any,
    zone: str,
    offset: int,
    early: dt.time,
) -> None:
    zone_of_kemensos(zone)
    first = _at(dt.date(2026, 11, 1), early, offset)
    assert first.date() == dt.date(2026, 10, 31)  # still October in UTC
    _made_at(ctx, lpsk, first)
    _made_at(ctx, lpsk, _at(dt.date(2026, 10, 31), dt.time(23, 59), offset))
    assert _total(kemensos, NOVEMBER) == 1
    assert _total(kemensos, OCTOBER) == 1
    one_day = {"from": "2026-11-01", "to": "2026-11-01"}
    body = ok(kemensos.http.get("/v1/stats", params=one_day, headers=kemensos.headers()))
    assert (body["total"], body["time_zone"]) == (1, zone)


@pytest.mark.parametrize(("zone", "offset", "early"), ZONES)
def test_the_report_counts_days_in_the_reported_agencys_zone(
    ctx: ServiceContext,
    lpsk: Api,
    zone_of_kemensos: Any,
    zone: str,
    offset: int,
    early: dt.time,
) -> None:
    zone_of_kemensos(zone)
    _made_at(ctx, lpsk, _at(dt.date(2026, 11, 1), early, offset))
    _made_at(ctx, lpsk, _at(dt.date(2026, 10, 31), dt.time(23, 59), offset))
    settings = ctx.settings
    assert settings.signing_key_file is not None
    key_dir = Path(settings.signing_key_file).parent
    cli = Cli(settings.database_url, key_dir, key_dir)

    def report(period: dict[str, str]) -> dict[str, Any]:
        args = ["report", "--agency", "KEMENSOS", "--from", period["from"], "--to", period["to"]]
        return json.loads(cli.ok(*args).stdout)  # type: ignore[no-any-return]

    november = report(NOVEMBER)
    assert (november["total"], november["time_zone"]) == (1, zone)
    assert report(OCTOBER)["total"] == 1


@pytest.mark.parametrize(("zone", "offset", "early"), ZONES)
def test_an_agreement_is_in_force_from_the_senders_first_day(
    ctx: ServiceContext,
    clean: None,
    zone_of_kemensos: Any,
    zone: str,
    offset: int,
    early: dt.time,
) -> None:
    # KEMENSOS sends; the agreement starts on 1 November by KEMENSOS's calendar.
    zone_of_kemensos(zone)
    number = f"PKS/{uuid.uuid4().hex[:8]}"
    ctx.db.write(
        lambda w: agreements.add_agreement(
            w,
            number=number,
            kind="PKS",
            agencies=("KEMENSOS", "KEMENHAM"),
            valid_from=dt.date(2026, 11, 1),
            valid_until=None,
        )
    )
    strict = dataclasses.replace(
        ctx, settings=ctx.settings.model_copy(update={"require_agreement": True})
    )

    def check(at: dt.datetime, sender: str = "KEMENSOS", receiver: str = "KEMENHAM") -> None:
        with ctx.db.reader() as session:
            agreements.check_referral_allowed(
                strict,
                session,
                from_agency=sender,
                to_agency=receiver,
                groups=["KORBAN_KEKERASAN"],
                case_types=[],
                field="to_agency",
                at=at,
            )

    check(_at(dt.date(2026, 11, 1), early, offset))
    last_minute = _at(dt.date(2026, 10, 31), dt.time(23, 59), offset)
    with pytest.raises(
        errors.AgreementMissing, match=f"2026-10-31 \\(KEMENSOS's day, in {zone}\\)"
    ):
        check(last_minute)
    if zone != DEFAULT_TIME_ZONE:
        # The other way, the sender's day is KEMENHAM's (WIB): still 31 October there.
        with pytest.raises(errors.AgreementMissing, match="KEMENHAM's day, in Asia/Jakarta"):
            check(_at(dt.date(2026, 11, 1), early, offset), "KEMENHAM", "KEMENSOS")


def test_a_time_zone_must_exist(ctx: ServiceContext) -> None:
    with pytest.raises(agreements.AgreementError, match="unknown time zone 'Asia/Jkarta'"):
        _set_zone(ctx, "KEMENSOS", "Asia/Jkarta")
