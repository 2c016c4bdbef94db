"""The database round trips each hot request costs, on each database: a change that adds one
fails here, and one that saves one updates its budget below.

Counted at the driver (`tests/roundtrips.py`): on PostgreSQL the waits for the server, on
SQLite the statements run. Only the request's own work is counted: each request is sent a
few times first, so that the verified-token cache and the reference-data cache are warm and
psycopg has prepared its statements (a one-off round trip per statement and connection),
and the revocation list, read at most every two seconds per process, is not read by this
module's app. Metrics read the database only when scraped, never here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from service.app import create_app
from service.config import Settings
from service.context import ServiceContext
from tests.roundtrips import RoundTrips
from tests.support import Api, Party, assess_body, referral_body, service_body

# Requests sent before the one counted: psycopg prepares a statement (a round trip of its
# own) at its sixth execution on a connection (its prepare_threshold is 5).
WARM_UP = 6

# The exact round trips of each request, per database. On SQLite a "round trip" is a
# statement SQLite runs; from BEGIN IMMEDIATE to COMMIT every other writer waits.
BUDGETS: dict[str, dict[str, int]] = {
    "sqlite": {
        # The open-referral check; BEGIN, the referral, its group and case-type rows, its
        # history, the event, the subscriptions, the audit chain's head and entry, COMMIT.
        "create": 11,
        # The key's lookup, then a create's, plus the answer stored under the key.
        "create with Idempotency-Key": 13,
        # BEGIN, the row, the update at its version, history, event, subscriptions, the
        # audit chain's head and entry, COMMIT.
        "assess": 9,
        # The row (a referred referral has no services to read).
        "get": 1,
        # The row and its services.
        "get with services": 2,
        # The page and the services of its served referral.
        "list": 2,
        # The page (referred referrals have no services to read).
        "list by status and direction": 1,
    },
    "postgresql": {
        # The open-referral check; BEGIN; the referral with its index rows and history (one
        # statement); the commit: NOTIFY, lock, event and the chain's head; the audit entry
        # and COMMIT; the Sync of psycopg's leaving pipeline mode.
        "create": 6,
        # The key's lookup, then a create's (the answer stored within its one statement).
        "create with Idempotency-Key": 7,
        # BEGIN; the row, locked; the update at its version; history; the commit's three.
        "assess": 7,
        # The row.
        "get": 1,
        # The row and its services.
        "get with services": 2,
        # The page and the services of its served referral.
        "list": 2,
        # The page.
        "list by status and direction": 1,
    },
}


@dataclass
class Counted:
    """An app of its own on the test database, every connection of its engine counted."""

    trips: RoundTrips
    http: TestClient
    backend: str

    def api(self, party: Party) -> Api:
        return Api(self.http, party)

    def check(self, request: str, send: Callable[[], Response], status: int = 200) -> Response:
        """Send the request WARM_UP times, then once more counted: its trips must be the
        budget's; the counted request's response."""
        for _ in range(WARM_UP):
            assert send().status_code == status
        with self.trips.counting() as seen:
            response = send()
        assert response.status_code == status, response.text
        budget = BUDGETS[self.backend][request]
        assert seen.count == budget, (
            f"{request} on {self.backend}: budget {budget} round trips, counted {seen.count}: "
            f"{seen.describe()}"
        )
        return response


@pytest.fixture(scope="module")
def counted(settings: Settings, backend: str) -> Iterator[Counted]:
    context = ServiceContext.build(settings)
    trips = RoundTrips(context.db.engine)
    with pytest.MonkeyPatch.context() as patch:
        # The revocation list is read at most every two seconds per process: not per request.
        patch.setattr(context.revoked_clients, "due", lambda: False)
        with TestClient(create_app(ctx=context), raise_server_exceptions=False) as http:
            yield Counted(trips, http, backend)
    trips.close()
    context.db.dispose()


@pytest.fixture
def lpsk(counted: Counted, parties: dict[str, Party], clean: None) -> Api:
    return counted.api(parties["LPSK"])


@pytest.fixture
def kemensos(counted: Counted, parties: dict[str, Party], clean: None) -> Api:
    return counted.api(parties["KEMENSOS"])


def test_create(counted: Counted, lpsk: Api) -> None:
    counted.check("create", lambda: lpsk.create(referral_body()), 201)


def test_create_with_an_idempotency_key(counted: Counted, lpsk: Api) -> None:
    keys = iter(range(WARM_UP + 1))
    counted.check(
        "create with Idempotency-Key",
        lambda: lpsk.create(referral_body(), **{"Idempotency-Key": f"trips-{next(keys)}"}),
        201,
    )


def test_assess(counted: Counted, lpsk: Api, kemensos: Api) -> None:
    referrals = iter([lpsk.create_ok("KEMENSOS")["id"] for _ in range(WARM_UP + 1)])
    # The ETag of a referral just created: version 1.
    counted.check(
        "assess", lambda: kemensos.act(next(referrals), "assess", assess_body(), etag='"1"')
    )


def test_get(counted: Counted, lpsk: Api, kemensos: Api) -> None:
    referral = lpsk.create_ok("KEMENSOS")["id"]
    counted.check("get", lambda: lpsk.get(referral))


def test_get_with_services(counted: Counted, lpsk: Api, kemensos: Api) -> None:
    referral = lpsk.create_ok("KEMENSOS")["id"]
    assert kemensos.act(referral, "assess", assess_body()).status_code == 200
    assert kemensos.act(referral, "serve", service_body()).status_code == 200
    counted.check("get with services", lambda: lpsk.get(referral))


def _some_referrals(lpsk: Api, kemensos: Api) -> None:
    """A page's worth: referred, assessed, and served (whose services a page reads)."""
    referred, assessed, served = (lpsk.create_ok("KEMENSOS")["id"] for _ in range(3))
    for referral in (assessed, served):
        assert kemensos.act(referral, "assess", assess_body()).status_code == 200
    assert kemensos.act(served, "serve", service_body()).status_code == 200


def test_list(counted: Counted, lpsk: Api, kemensos: Api) -> None:
    _some_referrals(lpsk, kemensos)
    page = counted.check("list", lambda: lpsk.list(limit=20)).json()["items"]
    assert sorted(item["status"] for item in page) == ["assessed", "referred", "served"]


def test_list_by_status_and_direction(counted: Counted, lpsk: Api, kemensos: Api) -> None:
    _some_referrals(lpsk, kemensos)
    page = counted.check(
        "list by status and direction",
        lambda: lpsk.list(limit=20, status="referred", direction="outgoing"),
    ).json()["items"]
    assert [item["status"] for item in page] == ["referred"]
