"""Helpers shared by the tests, in one package; fixtures stay in the conftest files.

Here: registered parties, valid bodies, a small API wrapper. Beside it: `cli` (the one runner
of the `rujukan` command), `databases` (backends, fresh databases, test settings), `operator`
(the CLI on a database of its own, and the one helper that turns the audit triggers off),
`tokens`, `events`, `receiver`, `live` (a server in a thread), `served` (`rujukan serve` in a
process), `roles` (PostgreSQL roles), `pdp`, `hostile`, `dockerfile` and `roundtrips` (the
database round trips of a request, counted at the driver).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from sqlmodel import Session

from service.auth import clients
from service.auth.scopes import ALL_SCOPES as _ALL
from service.context import ServiceContext
from service.db import Database
from service.db.writes import Writes

AGENCIES = ("KEMENSOS", "LPSK", "KEMENHAM")
PROBLEM = "application/problem+json"
# The twelve 12-PAS group codes of CONTRACT §5, in its order.
# The six closure outcomes of CONTRACT §4.
CONTRACT_OUTCOMES = (
    "completed",
    "declined",
    "withdrawn",
    "unreachable",
    "deceased",
    "referred_onward",
)
# Every outcome the service records: the contract's, plus consent_withdrawn (UU PDP).
OUTCOMES = frozenset({*CONTRACT_OUTCOMES, "consent_withdrawn"})
# The case types the seed must hold.
CONTRACT_CASE_TYPES = frozenset(
    {
        "TPPO",
        "TERORISME",
        "KEKERASAN_FISIK",
        "KEKERASAN_PSIKIS",
        "KEKERASAN_SEKSUAL",
        "PELANGGARAN_HAM_BERAT",
        "KONFLIK_SOSIAL",
    }
)
CONTRACT_GROUPS = (
    "ANAK_RENTAN",
    "DISABILITAS",
    "LANSIA_TERLANTAR",
    "BERPENDAPATAN_RENDAH",
    "KORBAN_BENCANA",
    "AFIRMASI_KHUSUS",
    "WARGA_BINAAN",
    "KORBAN_KEKERASAN",
    "NAPZA_HIV",
    "BERMASALAH_SOSIAL",
    "PEREMPUAN_RENTAN",
    "FAKIR_MISKIN",
)
ALL_SCOPES = " ".join(_ALL)
_serial = itertools.count(1)


def assert_problem(response: Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem document with the given status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    body = response.json()
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    return body


def ok(response: Response, status: int = 200) -> Any:
    """The JSON body of a successful response with the given status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    return response.json()


def ts(value: str) -> dt.datetime:
    """An API timestamp as an aware datetime."""
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def make_nik(birth: dt.date | None = None, sex: str = "male", serial: int | None = None) -> str:
    """A structurally valid NIK (DKI Jakarta, Jakarta Pusat, Gambir)."""
    birth = birth or dt.date(1990, 1, 1) + dt.timedelta(days=random.randint(0, 9000))  # noqa: S311
    day = birth.day + (40 if sex == "female" else 0)
    number = serial if serial is not None else next(_serial) % 9999 + 1
    return f"317101{day:02d}{birth.month:02d}{birth.year % 100:02d}{number:04d}"


def person(birth: dt.date, **fields: Any) -> dict[str, Any]:
    """A subject born on `birth`, with a NIK that agrees with it."""
    subject = {
        "full_name": "Dewi Lestari",
        "nik": make_nik(birth, "female"),
        "birth_date": birth.isoformat(),
        "sex": "female",
        "address": "Jl. Kenanga 7, Jakarta",
        "region_code": "31.71.01",
        "phone": "+62 811 000 000",
    }
    subject.update(fields)
    return subject


def referral_body(to_agency: str = "KEMENSOS", **overrides: Any) -> dict[str, Any]:
    """A valid create body; each call gets a person of its own."""
    # Adults: a minor needs a guardian's consent, which the default body does not carry.
    birth = dt.date(1960, 1, 1) + dt.timedelta(days=random.randint(0, 14000))  # noqa: S311
    body: dict[str, Any] = {
        "to_agency": to_agency,
        "subject": person(birth),
        "protected_identity": False,
        "groups": ["KORBAN_KEKERASAN"],
        "kemenham_groups": [],
        "case_types": ["TPPO"],
        "urgency": "urgent",
        "summary": "Survivor of trafficking; needs social rehabilitation.",
        "consent": {
            "given": True,
            "obtained_at": "2026-01-10T09:00:00+07:00",
            "method": "written",
            "obtained_by": "Petugas",
        },
    }
    body.update(overrides)
    return body


def unit_of(agency: str) -> str:
    """A service unit that belongs to the agency (from the seeded taxonomy)."""
    return {
        "KEMENSOS": "SENTRA_HANDAYANI",
        "LPSK": "LPSK_RUMAH_AMAN",
        "KEMENHAM": "KEMENHAM_PELAYANAN_KOMUNIKASI_MASYARAKAT",
    }[agency]


def assess_body(agency: str = "KEMENSOS", **overrides: Any) -> dict[str, Any]:
    body = {
        "needs": ["REHABILITASI_SOSIAL"],
        "approach": "residential",
        "service_unit": unit_of(agency),
        "notes": "Needs a residential placement.",
    }
    body.update(overrides)
    return body


WIB = dt.timezone(dt.timedelta(hours=7), "WIB")


def _now_wib() -> str:
    # A service starts after the referral is made (the test made it just now), in WIB as an
    # Indonesian case system would write it.
    return dt.datetime.now(WIB).isoformat(timespec="seconds")


def service_body(agency: str = "KEMENSOS", **overrides: Any) -> dict[str, Any]:
    body = {
        "service_type": "REHABILITASI_SOSIAL",
        "service_unit": unit_of(agency),
        "started_at": _now_wib(),
        "notes": "Admitted.",
    }
    body.update(overrides)
    return body


@dataclass
class Party:
    """A registered client of one agency, with a token."""

    agency: str
    client_id: str
    secret: str
    token: str

    @classmethod
    def register(cls, ctx: ServiceContext, http: TestClient, agency: str, scope: str) -> Party:
        with writer_session(ctx.db) as session:
            client, secret = clients.create_client(
                session,
                agency=agency,
                name=f"{agency} test system",
                scope=scope,
                keyring=ctx.keyring,
            )
            session.commit()
        response = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client.client_id,
                "client_secret": secret,
            },
        )
        assert response.status_code == 200, response.text
        return cls(agency, client.client_id, secret, response.json()["access_token"])

    def token_for(self, http: TestClient, scope: str) -> str:
        """A token of this client limited to `scope`."""
        response = http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.secret,
                "scope": scope,
            },
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]


class Api:
    """The referral API as one party calls it."""

    def __init__(self, http: TestClient, party: Party, token: str | None = None) -> None:
        self.http = http
        self.party = party
        self.agency = party.agency
        self.token = token or party.token

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    def with_scope(self, scope: str) -> Api:
        return Api(self.http, self.party, self.party.token_for(self.http, scope))

    def create(self, body: dict[str, Any] | None = None, **headers: str) -> Response:
        return self.http.post(
            "/v1/referrals", json=body or referral_body(), headers=self.headers(**headers)
        )

    def create_ok(self, to_agency: str = "KEMENSOS", **overrides: Any) -> dict[str, Any]:
        response = self.create(referral_body(to_agency, **overrides))
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, referral_id: str, **params: str) -> Response:
        return self.http.get(f"/v1/referrals/{referral_id}", params=params, headers=self.headers())

    def list(self, **params: Any) -> Response:
        return self.http.get("/v1/referrals", params=params, headers=self.headers())

    def act(
        self,
        referral_id: str,
        action: str,
        body: dict[str, Any],
        etag: str | None = "current",
    ) -> Response:
        """POST an action; etag 'current' reads the referral first, None sends no If-Match."""
        headers = self.headers()
        if etag == "current":
            current = self.get(referral_id)
            etag = current.headers.get("ETag")
        if etag is not None:
            headers["If-Match"] = etag
        return self.http.post(f"/v1/referrals/{referral_id}/{action}", json=body, headers=headers)

    def history(self, referral_id: str) -> Response:
        return self.http.get(f"/v1/referrals/{referral_id}/history", headers=self.headers())


@contextmanager
def writer_session(db: Database) -> Iterator[Session]:
    """Test only: a session in a write transaction of its own, outside the write path, for
    tests that set rows up or tamper with them and commit themselves (the service writes
    only through `Database.write`)."""
    with db._session() as session:
        yield session


@contextmanager
def held_write(db: Database) -> Iterator[Writes]:
    """Test only: a write object whose transaction the test holds open and ends itself."""
    with db._session() as session:
        yield db._writes(session)
