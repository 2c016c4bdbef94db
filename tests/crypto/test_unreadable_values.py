"""A sealed value the service cannot open (damaged in storage, or sealed under a data key the key
file lacks) costs only its own referral: the page around it is served, the referral comes
`unavailable`, the operator sees it in the log and the metrics, and `rujukan check` names it."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from service.app import create_app
from service.config import Settings
from service.context import ServiceContext
from service.db import upgrade_to_head
from service.referrals.models import Referral
from tests.support import ALL_SCOPES, Api, Party, ok, writer_session
from tests.support.cli import run
from tests.support.databases import make_settings
from tests.support.served import service_env

# Three ways a stored value goes bad: its ciphertext altered, its key id unknown to the key
# file (a key removed, or a key file from another deployment), not base64 at all.
DAMAGE = {
    "altered": lambda sealed: sealed[:-6] + ("BBBBBB" if sealed.endswith("AAAAAA") else "AAAAAA"),
    "unknown-key": lambda sealed: "dffffffff." + sealed.partition(".")[2],
    "malformed": lambda sealed: sealed.partition(".")[0] + ".!!not base64!!",
}


def rujukan(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """The command, in this process, on the settings' database and keys."""
    return run(args, service_env(settings))


def _damage(
    ctx: ServiceContext, referral_id: str, how: str, column: str = "subject_sealed"
) -> str:
    """Damage one sealed column of a referral; the value it held."""
    rid = uuid.UUID(referral_id)
    with writer_session(ctx.db) as session:
        before: str = session.get(Referral, rid).__dict__[column]  # type: ignore[union-attr]
        damaged = DAMAGE[how](before)
        session.execute(update(Referral).where(Referral.id == rid).values({column: damaged}))  # type: ignore[arg-type]
        session.commit()
    return before


def _restore(ctx: ServiceContext, referral_id: str, value: str, column: str) -> None:
    rid = uuid.UUID(referral_id)
    with writer_session(ctx.db) as session:
        session.execute(update(Referral).where(Referral.id == rid).values({column: value}))  # type: ignore[arg-type]
        session.commit()


def _unreadable_count(http: TestClient) -> float:
    text = http.get("/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "rujukan_referrals_unreadable_total"
    )


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_one_unreadable_referral_does_not_take_the_page_down(
    ctx: ServiceContext, lpsk: Api, kemensos: Api, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = f"CANARY{uuid.uuid4().hex[:10]}"
    good = lpsk.create_ok("KEMENSOS")
    bad = lpsk.create_ok("KEMENSOS", summary=f"Summary {canary}")
    _damage(ctx, bad["id"], how)
    counted = _unreadable_count(lpsk.http)
    capsys.readouterr()

    page = ok(kemensos.list())
    items = {item["id"]: item for item in page["items"]}
    assert set(items) == {good["id"], bad["id"]}
    assert items[good["id"]]["unavailable"] is False
    assert items[good["id"]]["subject"]["full_name"] == good["subject"]["full_name"]
    shown = items[bad["id"]]
    assert shown["unavailable"] is True
    # What is stored in the clear is still there; nothing of what is sealed.
    for name in ("reference", "status", "from_agency", "to_agency", "created_at", "version",
                 "groups", "case_types", "urgency"):
        assert shown[name] == bad[name], name
    assert {k: v for k, v in shown["subject"].items() if k != "sealed"} == dict.fromkeys(
        ("full_name", "nik", "nik_absent_reason", "birth_date", "sex", "address",
         "region_code", "phone")
    )
    assert shown["summary"] == "" and shown["consent"]["guardian"] is None

    one = kemensos.get(bad["id"])
    assert ok(one)["unavailable"] is True and one.headers["ETag"] == '"1"'
    assert ok(kemensos.get(good["id"]))["unavailable"] is False

    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    alerts = [line for line in lines if line["msg"] == "sealed referral data cannot be opened"]
    assert alerts and {line["referral_id"] for line in alerts} == {bad["id"]}
    assert all(line["error_type"] == "KeyFileError" and line["level"] == "ERROR" for line in alerts)
    assert canary not in err and "Traceback" not in err
    assert _unreadable_count(lpsk.http) >= counted + 2


@pytest.fixture
def own_database(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> Iterator[tuple[Any, ServiceContext, Api]]:
    """A database of its own (the check reads every row), its settings, and LPSK's client."""
    url = new_database_url(backend)
    upgrade_to_head(url)
    settings = make_settings(url, tmp_path / "keys")
    ctx = ServiceContext.build(settings)
    try:
        with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as http:
            yield settings, ctx, Api(http, Party.register(ctx, http, "LPSK", ALL_SCOPES))
    finally:
        ctx.db.dispose()


def test_rujukan_check_names_every_value_that_cannot_be_opened(
    own_database: tuple[Any, ServiceContext, Api],
) -> None:
    settings, ctx, lpsk = own_database
    created = [lpsk.create_ok("KEMENSOS") for _ in range(3)]
    ids = [c["id"] for c in created]
    lpsk.http.post(f"/v1/referrals/{ids[0]}/notes", json={"text": "A note."},
                   headers=lpsk.headers())
    fine: subprocess.CompletedProcess[str] = rujukan(settings, "check")
    assert fine.returncode == 0, fine.stderr
    report = json.loads(fine.stdout)
    assert report["unreadable"] == []
    assert report["sealed_values"]["referral.subject_sealed"] == 3
    assert report["sealed_values"]["referral_note.text_sealed"] == 1

    subject = _damage(ctx, ids[1], "altered")
    summary = _damage(ctx, ids[2], "unknown-key", column="summary_sealed")
    found = rujukan(settings, "check")
    assert found.returncode == 1
    named = {(u["column"], u["row"]["id"]) for u in json.loads(found.stdout)["unreadable"]}
    assert named == {("referral.subject_sealed", ids[1]), ("referral.summary_sealed", ids[2])}
    assert f"referral.subject_sealed of row id={ids[1]} cannot be opened" in found.stderr
    assert "Traceback" not in found.stderr

    for person in (c["subject"] for c in created):
        assert person["full_name"] not in found.stdout + found.stderr

    _restore(ctx, ids[1], subject, "subject_sealed")
    _restore(ctx, ids[2], summary, "summary_sealed")
    assert rujukan(settings, "check").returncode == 0
