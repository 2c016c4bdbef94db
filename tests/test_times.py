"""Time on the wire: every timestamp of every answer is UTC with `Z`, whatever offset the
caller wrote, and names the same instant it was given."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import Response

from service.context import ServiceContext
from service.events.dispatcher import Dispatcher
from service.referrals.models import Referral
from service.times import check_zone, day_start, local_day, wire
from tests.support import Api, assert_problem, assess_body, ok, referral_body, writer_session
from tests.support.events import FAST, drain, subscribe, variant
from tests.support.receiver import Receiver

WIB = dt.timezone(dt.timedelta(hours=7))
WIT = dt.timezone(dt.timedelta(hours=9))
# An RFC 3339 date-time, as opposed to a date or any other text.
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _timestamps(value: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """Every (path, text) of a JSON document whose text looks like a date-time."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _timestamps(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _timestamps(item, f"{path}[{index}]")
    elif isinstance(value, str) and TIMESTAMP.match(value):
        yield path, value


def _local(zone: dt.timezone, minutes_ago: int = 0) -> str:
    at = dt.datetime.now(zone) - dt.timedelta(minutes=minutes_ago)
    return at.isoformat(timespec="seconds")


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_every_timestamp_of_a_lifecycle_is_utc_with_z(
    ctx: ServiceContext, lpsk: Api, kemensos: Api
) -> None:
    bodies: list[tuple[str, Any]] = []

    def seen(name: str, response: Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        body = response.json()  # JSON, or FHIR's application/fhir+json
        bodies.append((name, body))
        return body

    receiver = Receiver()
    dispatcher = Dispatcher(variant(ctx, **FAST))
    try:
        sub = subscribe(lpsk, receiver.url)
        bodies.append(("subscription", sub))
        obtained = _local(WIT, minutes_ago=60)
        created = seen(
            "create",
            lpsk.create(
                referral_body(
                    consent={
                        "given": True,
                        "obtained_at": obtained,
                        "method": "written",
                        "obtained_by": "Petugas",
                    }
                )
            ),
            201,
        )
        rid = created["id"]
        assert created["consent"]["obtained_at"] == wire(_instant(obtained))
        seen("assess", kemensos.act(rid, "assess", assess_body()))
        started = _local(WIB)
        served = seen(
            "serve",
            kemensos.act(
                rid,
                "serve",
                {
                    "service_type": "REHABILITASI_SOSIAL",
                    "service_unit": "SENTRA_HANDAYANI",
                    "started_at": started,
                },
            ),
        )
        assert served["services"][0]["started_at"] == wire(_instant(started))
        further = _local(WIT)
        seen(
            "services",
            kemensos.act(
                rid,
                "services",
                {
                    "service_type": "DUKUNGAN_PSIKOSOSIAL",
                    "service_unit": "SENTRA_HANDAYANI",
                    "started_at": further,
                },
            ),
        )
        headers = lpsk.headers()
        seen(
            "note",
            lpsk.http.post(f"/v1/referrals/{rid}/notes", json={"text": "Hi"}, headers=headers),
            201,
        )
        seen("close", kemensos.act(rid, "close", {"outcome": "completed"}))

        # A second referral whose consent is withdrawn, at a time written in WIT.
        other = seen("create other", lpsk.create(referral_body()), 201)
        withdrawn = _local(WIT)
        after = seen(
            "withdraw", lpsk.act(other["id"], "consent-withdrawal", {"withdrawn_at": withdrawn})
        )
        assert after["consent"]["withdrawn_at"] == wire(_instant(withdrawn))

        get = lpsk.http.get
        seen("get", lpsk.get(rid))
        seen("list", lpsk.list(updated_since=_local(WIB, minutes_ago=120)))
        seen("history", lpsk.history(rid))
        seen("history other", lpsk.history(other["id"]))
        seen("notes", get(f"/v1/referrals/{rid}/notes", headers=headers))
        seen("fhir", get(f"/v1/referrals/{rid}/fhir", headers=headers))
        seen("events", get("/v1/events", headers=headers))
        seen("stats", get("/v1/stats", headers=headers))
        seen("audit", get("/v1/audit", headers=headers))
        seen(
            "export",
            get(
                "/v1/subjects/export",
                params={"nik": created["subject"]["nik"]},
                headers=headers,
            ),
        )
        seen("subscriptions", get("/v1/webhook-subscriptions", headers=headers))
        assert drain(dispatcher) >= 6
        payloads = [r.body for r in receiver.wait_for(6)]
        bodies += [("webhook", json.loads(p)) for p in payloads]
        seen(
            "deliveries", get(f"/v1/webhook-subscriptions/{sub['id']}/deliveries", headers=headers)
        )
    finally:
        dispatcher.close()
        receiver.close()

    found = [(name, path, text) for name, body in bodies for path, text in _timestamps(body)]
    # Every answer above carries timestamps, so an empty walk would prove nothing.
    assert {name for name, _, _ in found} >= {name for name, _ in bodies}
    not_utc = [(name, path, text) for name, path, text in found if not text.endswith("Z")]
    assert not_utc == []
    # The history records the withdrawal in UTC too, as the same instant.
    entries = dict(bodies)["history other"]
    assert entries[-1]["detail"]["withdrawn_at"] == wire(_instant(withdrawn))


@pytest.mark.parametrize("zone", ["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "UTC"])
def test_a_day_begins_at_local_midnight(zone: str) -> None:
    start = day_start(dt.date(2026, 11, 1), zone)
    assert start.tzinfo is dt.UTC
    assert local_day(start, zone) == dt.date(2026, 11, 1)
    assert local_day(start - dt.timedelta(minutes=1), zone) == dt.date(2026, 10, 31)


@pytest.mark.parametrize("name", ["Asia/Jkarta", "WIB", "+07:00", "localtime", "", "../etc"])
def test_only_zones_of_the_iana_database_are_taken(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        check_zone(name)


def test_a_consent_stored_with_the_callers_offset_is_read_in_utc(
    ctx: ServiceContext, lpsk: Api
) -> None:
    # Referrals stored before the service wrote consent times in UTC kept the caller's offset.
    rid = lpsk.create_ok()["id"]
    with writer_session(ctx.db) as session:
        row = session.get(Referral, uuid.UUID(rid))
        assert row is not None
        row.consent = {**row.consent, "obtained_at": "2026-11-20T09:00:00+07:00"}
        session.add(row)
        session.commit()
    consent = ok(lpsk.get(rid))["consent"]
    assert consent["obtained_at"] == "2026-11-20T02:00:00Z"


def test_a_time_without_an_offset_is_refused_on_every_input(lpsk: Api, kemensos: Api) -> None:
    naive = dt.datetime.now().replace(microsecond=0).isoformat()  # noqa: DTZ005 - on purpose
    body = referral_body()
    body["consent"]["obtained_at"] = naive
    problem = assert_problem(lpsk.create(body), 422)
    assert [e["loc"] for e in problem["errors"]] == [["body", "consent", "obtained_at"]]
    rid = lpsk.create_ok()["id"]
    ok(kemensos.act(rid, "assess", assess_body()))
    serve = {"service_type": "REHABILITASI_SOSIAL", "service_unit": "SENTRA_HANDAYANI"}
    for api, action, field, extra in [
        (kemensos, "serve", "started_at", serve),
        (lpsk, "consent-withdrawal", "withdrawn_at", {}),
    ]:
        problem = assert_problem(api.act(rid, action, {**extra, field: naive}), 422)
        assert [e["loc"] for e in problem["errors"]] == [["body", field]]
    problem = assert_problem(lpsk.list(updated_since=naive), 422)
    assert [e["loc"] for e in problem["errors"]] == [["query", "updated_since"]]
