"""Subject access (UU PDP Pasal 32): GET /v1/subjects/export?nik= returns the person's
referrals that the caller's agency is a party to, with their processing trail; audited."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import select

from service.audit.models import AuditEntry
from service.context import ServiceContext
from tests.support import Api, assert_problem, assess_body, make_nik, ok
from tests.support.pdp import adult_body, created

REASON = "Permintaan akses data oleh subjek, surat 12/2026"


def export(api: Api, nik: str, reason: str | None = None):  # type: ignore[no-untyped-def]
    headers = api.headers(**({"X-Reveal-Reason": reason} if reason else {}))
    return api.http.get("/v1/subjects/export", params={"nik": nik}, headers=headers)


def _audit_since(ctx: ServiceContext, after_id: int) -> list[AuditEntry]:
    with ctx.db.reader() as session:
        return list(
            session.execute(
                select(AuditEntry).where(AuditEntry.id > after_id)  # type: ignore[operator]
                .order_by(AuditEntry.id)  # type: ignore[arg-type]
            ).scalars()
        )


def _last_audit_id(ctx: ServiceContext) -> int:
    entries = _audit_since(ctx, 0)
    return entries[-1].id if entries else 0  # type: ignore[return-value]


@pytest.fixture
def story(lpsk: Api, kemensos: Api, kemenham: Api) -> dict[str, Any]:
    """One protected person: LPSK -> KEMENSOS (assessed, noted, referred onward to
    KEMENHAM); plus an unrelated person referred LPSK -> KEMENSOS."""
    body = adult_body(protected_identity=True)
    nik = body["subject"]["nik"]
    parent = created(lpsk, body)["id"]
    ok(kemensos.act(parent, "assess", assess_body(notes="Needs shelter.")))
    ok(lpsk.http.post(f"/v1/referrals/{parent}/notes", json={"text": "Call after 5 pm."},
                      headers=lpsk.headers()), 201)
    closed = ok(kemensos.act(parent, "close", {"outcome": "referred_onward",
                                               "onward_agency": "KEMENHAM"}))
    child = closed["closure"]["onward_referral_id"]
    other = created(lpsk, adult_body())["id"]
    return {"nik": nik, "parent": parent, "child": child, "other": other}


def test_each_party_gets_the_referrals_it_is_a_party_to(
    story: dict[str, Any], lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    nik = story["nik"]
    assert [r["id"] for r in ok(export(lpsk, nik, REASON))["referrals"]] == [story["parent"]]
    assert [r["id"] for r in ok(export(kemensos, nik, REASON))["referrals"]] == [
        story["parent"], story["child"]
    ]
    assert [r["id"] for r in ok(export(kemenham, nik, REASON))["referrals"]] == [story["child"]]


def test_the_export_is_the_whole_referral_with_the_identity(
    story: dict[str, Any], kemensos: Api
) -> None:
    response = export(kemensos, story["nik"], REASON)
    document = ok(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert document["nik"] == story["nik"]
    exported_at = dt.datetime.fromisoformat(document["exported_at"])
    assert abs(dt.datetime.now(dt.UTC) - exported_at) < dt.timedelta(minutes=1)
    parent = document["referrals"][0]
    # A protected identity, withheld in an ordinary read, is the person's own here (given a
    # reason).
    assert ok(kemensos.get(story["parent"]))["subject"]["full_name"] is None
    assert parent["subject"]["full_name"] == "Dewi Lestari"
    assert parent["subject"]["nik"] == story["nik"]
    assert parent["subject"]["sealed"] is False
    assert parent["protected_identity"] is True
    assert parent["assessment"]["notes"] == "Needs shelter."
    assert parent["closure"]["outcome"] == "referred_onward"
    assert parent["consent"]["purposes"]
    assert [h["action"] for h in parent["history"]] == [
        "create", "assess", "add_note", "close:referred_onward"
    ]
    assert [n["text"] for n in parent["notes"]] == ["Call after 5 pm."]


def test_the_processing_trail_comes_from_the_audit_log(
    story: dict[str, Any], kemensos: Api
) -> None:
    parent = ok(export(kemensos, story["nik"], REASON))["referrals"][0]
    trail = parent["processing_trail"]
    assert [(s["agency"], s["action"]) for s in trail] == [
        ("LPSK", "referral.create"),
        ("KEMENSOS", "referral.assess"),
        ("LPSK", "referral.add_note"),
        ("KEMENSOS", "referral.close.referred_onward"),
    ]
    assert all(set(step) == {"occurred_at", "agency", "action"} for step in trail)
    times = [dt.datetime.fromisoformat(s["occurred_at"]) for s in trail]
    assert times == sorted(times)
    # A second export shows the first one in the trail.
    again = ok(export(kemensos, story["nik"], REASON))["referrals"][0]["processing_trail"]
    assert again[-1] == {**again[-1], "agency": "KEMENSOS", "action": "subject.export"}


def test_the_export_is_audited_without_the_nik(
    story: dict[str, Any], kemensos: Api, ctx: ServiceContext
) -> None:
    before = _last_audit_id(ctx)
    ok(export(kemensos, story["nik"], REASON))
    entries = _audit_since(ctx, before)
    assert [e.action for e in entries] == ["subject.export", "subject.export"]
    assert [str(e.referral_id) for e in entries] == [story["parent"], story["child"]]
    assert all(e.agency == "KEMENSOS" for e in entries)
    assert all(e.client_id == kemensos.party.client_id for e in entries)
    assert entries[0].detail["identity_included"] is True
    for entry in entries:
        assert story["nik"] not in json.dumps(entry.detail)
        assert ctx.keyring.nik_index(story["nik"]) not in json.dumps(entry.detail)
        # The reason the identity was exported, sealed to its referral's audit entry.
        assert REASON not in entry.detail_sealed
        assert ctx.keyring.open(entry.detail_sealed, f"audit:reveal:{entry.referral_id}") == REASON


def test_without_a_reason_a_protected_referral_is_left_out(
    lpsk: Api, kemensos: Api, kemenham: Api, ctx: ServiceContext
) -> None:
    body = adult_body(protected_identity=True)
    nik = body["subject"]["nik"]
    protected = created(lpsk, body)["id"]
    plain = created(kemenham, {**body, "protected_identity": False})["id"]
    before = _last_audit_id(ctx)

    response = export(kemensos, nik)

    # The plain referral of the same person is exported; the protected one is not there.
    assert [r["id"] for r in ok(response)["referrals"]] == [plain]
    assert protected not in response.text
    for secret in ("Jl. Kenanga", "+62 811"):
        assert response.text.count(secret) == 1  # the plain referral's own copy
    (entry,) = _audit_since(ctx, before)
    assert (entry.action, str(entry.referral_id)) == ("subject.export", plain)
    assert entry.detail["identity_included"] is False and entry.detail_sealed is None

    # With a reason: exported with the identity, and the reason sealed in its audit entry.
    before = _last_audit_id(ctx)
    document = ok(export(kemensos, nik, REASON))
    exported = {r["id"]: r for r in document["referrals"]}
    assert list(exported) == [protected, plain]
    assert exported[protected]["subject"]["full_name"] == "Dewi Lestari"
    assert exported[protected]["subject"]["sealed"] is False
    entries = {str(e.referral_id): e for e in _audit_since(ctx, before)}
    assert entries[protected].detail["identity_included"] is True
    opened = ctx.keyring.open(entries[protected].detail_sealed, f"audit:reveal:{protected}")
    assert opened == REASON
    assert entries[plain].detail_sealed is None


def test_a_reason_shorter_than_three_characters_is_422(lpsk: Api) -> None:
    found = assert_problem(export(lpsk, make_nik(dt.date(1980, 1, 1)), "ok"), 422)
    assert found["errors"][0]["loc"] == ["header", "X-Reveal-Reason"]


def test_the_reason_header_is_documented() -> None:
    from service.app import openapi_spec

    operation = openapi_spec()["paths"]["/v1/subjects/export"]["get"]
    assert "X-Reveal-Reason" in {p["name"] for p in operation["parameters"]}
    assert "X-Reveal-Reason" in operation["description"]


def test_an_unknown_nik_is_an_empty_export_and_still_audited(
    lpsk: Api, ctx: ServiceContext
) -> None:
    created(lpsk, adult_body())
    nik = make_nik(dt.date(1971, 2, 3), "male", serial=9876)
    before = _last_audit_id(ctx)
    document = ok(export(lpsk, nik))
    assert document["nik"] == nik
    assert document["referrals"] == []
    (entry,) = _audit_since(ctx, before)
    assert (entry.action, entry.agency, entry.referral_id) == ("subject.export", "LPSK", None)
    assert entry.detail == {"referrals": 0}


def test_isolation_an_agency_that_is_no_party_gets_an_empty_list(
    lpsk: Api, kemenham: Api
) -> None:
    body = adult_body()
    created(lpsk, body)
    assert ok(export(kemenham, body["subject"]["nik"]))["referrals"] == []


@pytest.mark.parametrize(
    "nik",
    ["", "abc", "317101450890000", "31710145089000031", "0071014508900003",
     "3171014508900000", "３１７１０１４５０８９００００３"],
    ids=["empty", "letters", "15-digits", "17-digits", "bad-province", "zero-serial",
         "full-width"],
)
def test_a_malformed_nik_is_422(lpsk: Api, nik: str) -> None:
    found = assert_problem(export(lpsk, nik), 422)
    assert found["errors"][0]["loc"] == ["query", "nik"]
    assert not any(ch.isdigit() for ch in found["detail"])


def test_the_nik_is_required(lpsk: Api) -> None:
    assert_problem(lpsk.http.get("/v1/subjects/export", headers=lpsk.headers()), 422)


def test_the_read_scope_is_needed(lpsk: Api) -> None:
    nik = make_nik(dt.date(1980, 1, 1))
    assert_problem(export(lpsk.with_scope("referrals:write"), nik), 403)
    assert_problem(lpsk.http.get("/v1/subjects/export", params={"nik": nik}), 401)


@pytest.mark.parametrize("protected", [False, True], ids=["plain", "protected"])
def test_a_withdrawn_referral_is_left_out_of_its_receivers_export(
    lpsk: Api, kemensos: Api, ctx: ServiceContext, protected: bool
) -> None:
    body = adult_body(protected_identity=protected)
    nik = body["subject"]["nik"]
    rid = created(lpsk, body)["id"]
    assert [r["id"] for r in ok(export(kemensos, nik, REASON))["referrals"]] == [rid]
    ok(kemensos.act(rid, "consent-withdrawal",
                    {"withdrawn_at": dt.datetime.now(dt.UTC).isoformat()}))
    before = _last_audit_id(ctx)
    # Absent, with or without a reason: the receiver no longer finds the person by NIK.
    for reason in (None, REASON):
        response = export(kemensos, nik, reason)
        assert ok(response)["referrals"] == []
        assert rid not in response.text
    assert {e.detail.get("referrals") for e in _audit_since(ctx, before)} == {0}
    # The sender keeps what it sent.
    (theirs,) = ok(export(lpsk, nik, REASON))["referrals"]
    assert theirs["subject"]["full_name"] == "Dewi Lestari"


def test_the_operation_is_documented() -> None:
    from service.app import openapi_spec

    operation = openapi_spec()["paths"]["/v1/subjects/export"]["get"]
    assert operation["operationId"] == "export_subject_data"
    assert {"401", "403", "422"} <= set(operation["responses"])



def test_the_nik_parameter_has_the_referral_filters_pattern() -> None:
    from service.app import openapi_spec

    paths = openapi_spec()["paths"]

    def nik_schema(path: str) -> dict[str, Any]:
        (param,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "nik"]
        schema: dict[str, Any] = param["schema"]
        # An optional parameter is `anyOf: [string, null]`: its string branch carries the rule.
        return next((b for b in schema.get("anyOf", []) if b.get("type") == "string"), schema)

    assert nik_schema("/v1/subjects/export")["pattern"] == "^[0-9]{16}$"
    assert nik_schema("/v1/subjects/export")["pattern"] == nik_schema("/v1/referrals")["pattern"]
