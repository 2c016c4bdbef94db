"""Logs are JSON lines with the request id, and never carry a person's data."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support import Api, referral_body

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database


def test_access_log_is_json_with_request_id_and_no_personal_data(
    lpsk: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = f"CANARY{uuid.uuid4().hex[:10]}"
    body = referral_body("KEMENSOS")
    body["subject"]["full_name"] = canary
    body["summary"] = f"summary {canary}"
    nik = body["subject"]["nik"]
    capsys.readouterr()

    created = lpsk.create(body, **{"X-Request-ID": "req-log-1"})
    assert created.status_code == 201
    listed = lpsk.list(nik=nik)
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 1
    bad = lpsk.create({**body, "subject": {**body["subject"], "nik": nik[:-1] + "x"}})
    assert bad.status_code == 422

    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("msg") == "request"]
    assert {"req-log-1"} <= {line["request_id"] for line in requests}
    assert any(line["path"] == "/v1/referrals" and line["status"] == 200 for line in requests)
    assert canary not in err
    assert nik not in err
