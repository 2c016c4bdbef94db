"""Canary values sent through every kind of request never reach the logs.

Names, NIK, address, phone, free text (summary, assessment, service, closure, notes, consent
withdrawal), the reveal reason, a NIK in a query string and a NIK in a path all carry a
marker; the captured log lines (and the metrics) must hold none of them, and each request's
line must say who, which route, what status and how long.
"""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.context import ServiceContext
from service.logs import MASKED_DIGITS
from tests.support import Api, assess_body, make_nik, referral_body, service_body

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database


def log_lines(err: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_personal_data_sent_everywhere_never_reaches_the_logs(
    lpsk: Api, kemensos: Api, http: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    mark = f"CANARY{uuid.uuid4().hex[:8]}"
    body = referral_body("KEMENSOS", protected_identity=True)
    subject = body["subject"]
    subject.update(
        full_name=f"Nama {mark}",
        address=f"Jl. {mark} 7",
        phone="+62 811 4242 4242",
    )
    body["summary"] = f"summary {mark}"
    nik = subject["nik"]
    other_nik = referral_body()["subject"]["nik"]
    canaries = [mark, nik, other_nik, "4242 4242", "811 4242"]
    capsys.readouterr()

    rid_header = {"X-Request-ID": f"canary-{mark[-8:]}"}
    created = lpsk.create(body, **rid_header)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    # A duplicate (409) and an invalid body (422) echo nothing either.
    assert lpsk.create(body).status_code == 409
    broken = {**body, "subject": {**subject, "nik": nik[:-1] + "X"}}
    assert lpsk.create(broken).status_code == 422

    assert lpsk.list(nik=nik).status_code == 200
    assert kemensos.list(nik=other_nik).status_code == 200
    revealed = http.get(
        f"/v1/referrals/{rid}",
        params={"reveal": "identity"},
        headers=kemensos.headers(**{"X-Reveal-Reason": f"reason {mark}"}),
    )
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["subject"]["full_name"] == f"Nama {mark}"

    steps = [
        ("assess", assess_body(notes=f"assessment {mark}")),
        ("serve", service_body(notes=f"service {mark}")),
        ("services", service_body(notes=f"more {mark}")),
    ]
    for action, step in steps:
        answer = kemensos.act(rid, action, step)
        assert answer.status_code in (200, 201), answer.text
    note = http.post(
        f"/v1/referrals/{rid}/notes", json={"text": f"note {mark}"}, headers=lpsk.headers()
    )
    assert note.status_code == 201, note.text
    assert http.get(f"/v1/referrals/{rid}/notes", headers=kemensos.headers()).status_code == 200
    assert http.get(f"/v1/referrals/{rid}/history", headers=lpsk.headers()).status_code == 200
    exported = http.get("/v1/subjects/export", params={"nik": nik}, headers=lpsk.headers())
    assert exported.status_code == 200, exported.text
    closed = kemensos.act(rid, "close", {"outcome": "completed", "notes": f"closure {mark}"})
    assert closed.status_code == 200, closed.text

    second = lpsk.create_ok("KEMENSOS", summary=f"second {mark}")
    withdrawn = kemensos.act(
        second["id"],
        "consent-withdrawal",
        {"withdrawn_at": "2026-01-11T09:00:00+07:00", "notes": f"withdrawn {mark}"},
    )
    assert withdrawn.status_code == 200, withdrawn.text
    # A stranger's token request with a canary as its secret.
    denied = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": mark, "client_secret": mark},
    )
    assert denied.status_code == 401

    err = capsys.readouterr().err
    for canary in canaries:
        assert canary not in err, canary

    lines = log_lines(err)
    requests = [line for line in lines if line.get("msg") == "request"]
    assert len(requests) >= 15
    for line in requests:
        assert {"request_id", "route", "status", "duration_ms", "method"} <= set(line)
        assert line["duration_ms"] >= 0
    first = next(line for line in requests if line["request_id"] == rid_header["X-Request-ID"])
    assert first["route"] == "/v1/referrals"
    assert first["status"] == 201
    assert first["agency"] == "LPSK"
    assert first["client"] == lpsk.party.client_id
    reveal = [
        line for line in requests
        if line["route"] == "/v1/referrals/{referral_id}" and line["agency"] == "KEMENSOS"
    ]
    assert reveal and all(line["status"] == 200 for line in reveal)
    assert any(
        line["route"] == "/v1/referrals/{referral_id}/assess" and line["status"] == 200
        for line in requests
    )
    # The token endpoint's failure is logged without the client_id it was given.
    assert any(line["route"] == "/oauth/token" and line["status"] == 401 for line in requests)


def test_the_request_id_is_echoed_and_a_bad_one_replaced(http: TestClient) -> None:
    given = http.get("/healthz", headers={"X-Request-ID": "ops-check-42"})
    assert given.headers["X-Request-ID"] == "ops-check-42"
    hostile = http.get("/healthz", headers={"X-Request-ID": "a b\"{}<script>"})
    assert hostile.headers["X-Request-ID"] != "a b\"{}<script>"
    assert len(hostile.headers["X-Request-ID"]) == 32


def test_a_nik_typed_into_a_path_reaches_neither_the_logs_nor_the_metrics(
    ctx: ServiceContext, lpsk: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unmatched paths are logged with long digit runs masked; a path that matched a route
    (even with a NIK where the id goes) is logged as the route's template; so is a failure."""
    nik = make_nik()
    spaced = " ".join(nik[i : i + 4] for i in range(0, 16, 4))
    app = create_app(ctx=ctx)

    @app.get("/v1/boom/{anything}")
    def boom(anything: str) -> None:
        raise RuntimeError("failed")

    with TestClient(app, raise_server_exceptions=False) as http:
        capsys.readouterr()
        headers = lpsk.headers()
        answers = [
            http.get(f"/v1/{nik}", headers=headers),
            http.get(f"/v1/people/{spaced}/cases", headers=headers),
            http.get(f"/nik/{nik[:8]}-{nik[8:]}"),
            http.get(f"/v1/referrals/{nik}", headers=headers),
            http.get(f"/v1/referrals/{nik}/history", headers=headers),
            http.put(f"/v1/referrals/{nik}", headers=headers),
            http.get(f"/v1/boom/{nik}", headers=headers),
        ]
        assert [a.status_code for a in answers] == [404, 404, 404, 422, 422, 405, 500]
        metrics = http.get("/metrics").text

    err = capsys.readouterr().err
    for value in (nik, spaced, nik[:8], nik[8:]):
        assert value not in err, value
        assert value not in metrics, value
    lines = log_lines(err)
    paths = [line["path"] for line in lines if line.get("msg") == "request"]
    assert f"/v1/{MASKED_DIGITS}" in paths
    assert f"/v1/people/{MASKED_DIGITS}/cases" in paths
    assert "/v1/referrals/{referral_id}" in paths
    assert "/v1/referrals/{referral_id}/history" in paths
    failure = next(line for line in lines if line.get("msg") == "unhandled error")
    assert failure["path"] == "/v1/boom/{anything}"
