"""Cooperation agreements: referrals between agencies need one in force when required."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from service.agreements import service as agreements
from service.app import create_app
from service.audit.models import AuditEntry
from service.config import Settings
from service.context import ServiceContext
from service.db import upgrade_to_head
from tests.support import Api, Party, assert_problem, assess_body, ok, referral_body
from tests.support.databases import make_settings

TODAY = dt.datetime.now(dt.UTC).date()
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="session")
def strict_http(settings: Settings) -> Iterator[TestClient]:
    """The API on the same database and keys, with RUJUKAN_REQUIRE_AGREEMENT on."""
    assert settings.signing_key_file is not None
    strict = ServiceContext.build(
        make_settings(
            settings.database_url, Path(settings.signing_key_file).parent, require_agreement=True
        )
    )
    try:
        with TestClient(create_app(ctx=strict), raise_server_exceptions=False) as client:
            yield client
    finally:
        strict.db.dispose()


@pytest.fixture
def strict(
    strict_http: TestClient, parties: dict[str, Party], clean: None
) -> dict[str, Api]:
    """Each agency's client, calling the strict API."""
    return {code: Api(strict_http, party) for code, party in parties.items()}


def register(ctx: ServiceContext, number: str | None = None, **fields: Any) -> str:
    values: dict[str, Any] = {
        "number": number or f"PKS/{uuid.uuid4().hex[:8]}",
        "kind": "PKS",
        "agencies": ("LPSK", "KEMENSOS"),
        "valid_from": TODAY - 30 * DAY,
        "valid_until": None,
    }
    values.update(fields)
    row = ctx.db.write(lambda w: agreements.add_agreement(w, **values))
    return row.number


def refused(response: Any, *words: str) -> dict[str, Any]:
    body = assert_problem(response, 422)
    assert body["type"].endswith("agreement-missing")
    for word in words:
        assert word in body["detail"], body["detail"]
    return body


def test_dev_does_not_require_agreements_and_prod_does(tmp_path: Path) -> None:
    keys = {"signing_key_file": tmp_path / "s.pem", "data_key_file": tmp_path / "d.json"}
    assert Settings(env="dev").agreement_required is False
    assert Settings(env="prod", **keys).agreement_required is True
    assert Settings(env="prod", require_agreement=False, **keys).agreement_required is False
    assert Settings(env="dev", require_agreement=True).agreement_required is True


def test_without_an_agreement_a_referral_is_refused(
    ctx: ServiceContext, strict: dict[str, Api]
) -> None:
    body = refused(
        strict["LPSK"].create(referral_body("KEMENSOS")), "LPSK and KEMENSOS", "No cooperation"
    )
    assert body["errors"][0]["loc"] == ["body", "to_agency"]
    assert ok(strict["LPSK"].list())["items"] == []
    register(ctx)
    created = strict["LPSK"].create(referral_body("KEMENSOS"))
    assert created.status_code == 201, created.text
    # One agreement binds both directions.
    assert strict["KEMENSOS"].create(referral_body("LPSK")).status_code == 201
    # ... and no other pair.
    refused(strict["LPSK"].create(referral_body("KEMENHAM")), "LPSK and KEMENHAM")


def test_the_dates_and_the_end_of_an_agreement_count(
    ctx: ServiceContext, strict: dict[str, Api]
) -> None:
    register(ctx, valid_from=TODAY - 60 * DAY, valid_until=TODAY - DAY)
    register(ctx, valid_from=TODAY + DAY)
    refused(strict["LPSK"].create(referral_body("KEMENSOS")), "No cooperation")
    today_only = register(ctx, valid_from=TODAY, valid_until=TODAY)
    assert strict["LPSK"].create(referral_body("KEMENSOS")).status_code == 201
    ctx.db.write(lambda w: agreements.end_agreement(w, today_only))
    refused(strict["LPSK"].create(referral_body("KEMENSOS")), "No cooperation")


def test_an_agreement_covers_only_the_groups_and_case_types_it_lists(
    ctx: ServiceContext, strict: dict[str, Api]
) -> None:
    register(ctx, groups=["KORBAN_KEKERASAN"], case_types=["TPPO", "KEKERASAN_SEKSUAL"])
    lpsk = strict["LPSK"]
    assert lpsk.create(referral_body(groups=["KORBAN_KEKERASAN"])).status_code == 201
    refused(
        lpsk.create(referral_body(groups=["KORBAN_KEKERASAN", "DISABILITAS"])),
        "group(s) DISABILITAS",
    )
    refused(lpsk.create(referral_body(case_types=["TERORISME"])), "case type(s) TERORISME")
    # A second agreement on other terms widens what the pair may refer.
    register(ctx, groups=["DISABILITAS"], case_types=[])
    widened = lpsk.create(referral_body(groups=["DISABILITAS"], case_types=["TERORISME"]))
    assert widened.status_code == 201
    # Each referral must fit one agreement as a whole.
    refused(
        lpsk.create(referral_body(groups=["KORBAN_KEKERASAN", "DISABILITAS"])),
        "this combination",
    )


def test_an_onward_referral_needs_an_agreement_with_the_next_agency(
    ctx: ServiceContext, strict: dict[str, Api]
) -> None:
    register(ctx)
    lpsk, kemensos = strict["LPSK"], strict["KEMENSOS"]
    rid = ok(lpsk.create(referral_body("KEMENSOS")), 201)["id"]
    ok(kemensos.act(rid, "assess", assess_body()))
    onward = {"outcome": "referred_onward", "onward_agency": "KEMENHAM"}
    body = refused(kemensos.act(rid, "close", onward), "KEMENSOS and KEMENHAM")
    assert body["errors"][0]["loc"] == ["body", "onward_agency"]
    assert ok(kemensos.get(rid))["status"] == "assessed"
    register(ctx, agencies=("KEMENHAM", "KEMENSOS"), kind="MoU")
    closed = ok(kemensos.act(rid, "close", onward))
    assert closed["closure"]["onward_agency"] == "KEMENHAM"


def test_a_non_party_learns_nothing_from_the_agreement_check(
    ctx: ServiceContext, strict: dict[str, Api]
) -> None:
    register(ctx)
    rid = ok(strict["LPSK"].create(referral_body("KEMENSOS")), 201)["id"]
    # KEMENHAM has no agreement with anyone; acting on a referral it is no party to is a 404,
    # exactly like a referral that does not exist, never the agreement's 422.
    onward = {"outcome": "referred_onward", "onward_agency": "LPSK"}
    for target in (rid, str(uuid.uuid4())):
        response = strict["KEMENHAM"].act(target, "close", onward, etag='"1"')
        assert_problem(response, 404)


def test_agreement_changes_are_audited(ctx: ServiceContext, clean: None) -> None:
    number = register(ctx, number=f"MOU/{uuid.uuid4().hex[:6]}", kind="MoU")
    ctx.db.write(lambda w: agreements.end_agreement(w, number))
    with ctx.db.reader() as session:
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
    added = [e for e in entries if e.action == "agreement.add" and e.detail["number"] == number]
    ended = [e for e in entries if e.action == "agreement.end" and e.detail["number"] == number]
    assert len(added) == 1 and len(ended) == 1
    assert added[0].detail["agencies"] == ["KEMENSOS", "LPSK"]
    assert added[0].detail["kind"] == "MoU"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "LoI"}, "kind must be"),
        ({"agencies": ("LPSK", "LPSK")}, "two different agencies"),
        ({"agencies": ("LPSK", "NOWHERE")}, "unknown agency"),
        ({"valid_until": TODAY - 90 * DAY}, "before valid_from"),
        ({"groups": ["NOT_A_GROUP"]}, "unknown code"),
    ],
)
def test_bad_agreements_are_refused(
    ctx: ServiceContext, clean: None, fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(agreements.AgreementError, match=message):
        register(ctx, **fields)


def test_a_number_is_registered_once(ctx: ServiceContext, clean: None) -> None:
    register(ctx, number="PKS/ONCE")
    with pytest.raises(agreements.AgreementError, match="already registered"):
        register(ctx, number="PKS/ONCE")


@pytest.fixture
def own_database(
    backend: str, new_database_url, settings: Settings  # type: ignore[no-untyped-def]
) -> Iterator[tuple[ServiceContext, TestClient]]:
    """A database of its own, with agreements required: an agency added there cannot change
    the agency list the other tests see."""
    url = new_database_url(backend)
    upgrade_to_head(url)
    assert settings.signing_key_file is not None
    own = ServiceContext.build(
        make_settings(url, Path(settings.signing_key_file).parent, require_agreement=True)
    )
    try:
        with TestClient(create_app(ctx=own), raise_server_exceptions=False) as client:
            yield own, client
    finally:
        own.db.dispose()


def test_a_new_agency_joins_without_a_release(
    own_database: tuple[ServiceContext, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx, http = own_database
    code = "DINSOS_JATIM"
    assert code not in ctx.known_agencies()
    ctx.db.write(lambda w: agreements.add_agency(w, code, "Dinas Sosial Provinsi Contoh"))
    lpsk = Api(http, Party.register(ctx, http, "LPSK", "referrals:read referrals:write"))
    agencies = ok(http.get("/v1/agencies", headers=lpsk.headers()))
    added = {"code": code, "name": "Dinas Sosial Provinsi Contoh", "time_zone": "Asia/Jakarta"}
    assert added in agencies
    # The cached agency list (trusted issuers' tokens) picks it up when it next refreshes.
    import service.context as context_module

    later = context_module.time.monotonic() + context_module.AGENCY_CACHE_SECONDS + 1
    monkeypatch.setattr(context_module.time, "monotonic", lambda: later)
    assert code in ctx.known_agencies()
    monkeypatch.undo()

    newcomer = Api(http, Party.register(ctx, http, code, "referrals:read referrals:write"))
    refused(lpsk.create(referral_body(code)), f"LPSK and {code}")
    register(ctx, agencies=(code, "LPSK"))
    received = ok(lpsk.create(referral_body(code)), 201)
    inbox = ok(newcomer.list(direction="incoming"))["items"]
    assert [item["id"] for item in inbox] == [received["id"]]
    sent = ok(newcomer.create(referral_body("LPSK")), 201)
    assert sent["from_agency"] == code
    refused(newcomer.create(referral_body("KEMENSOS")), f"{code} and KEMENSOS")


def test_agency_codes_are_checked(ctx: ServiceContext) -> None:
    for bad in ("dinsos", "X", "1ABC", "A" * 40, "DIN SOS"):
        with pytest.raises(agreements.AgreementError):
            ctx.db.write(lambda w, bad=bad: agreements.add_agency(w, bad, "Some agency"))
    with pytest.raises(agreements.AgreementError, match="exists"):
        ctx.db.write(lambda w: agreements.add_agency(w, "LPSK", "Again"))
