"""Consent withdrawal (UU PDP Pasal 40): POST /v1/referrals/{id}/consent-withdrawal closes an
open referral and stops further sharing of the person's data with the receiving agency."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from service.audit.models import AuditEntry
from service.context import ServiceContext
from tests.support import Api, assert_problem, assess_body, ok, service_body
from tests.support.pdp import adult_body, child_body, created

IDENTIFYING = ("full_name", "nik", "birth_date", "address", "phone")


def withdrawal(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "withdrawn_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).isoformat(),
        "notes": "Withdrew consent by telephone.",
    }
    body.update(fields)
    return body


def withdraw(api: Api, rid: str, body: dict[str, Any] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    return api.act(rid, "consent-withdrawal", body or withdrawal(), **kw)


def worked(lpsk: Api, kemensos: Api, state: str, body: dict[str, Any] | None = None) -> str:
    """An LPSK -> KEMENSOS referral with notes, moved to `state`."""
    rid = created(lpsk, body or child_body())["id"]
    ok(lpsk.http.post(f"/v1/referrals/{rid}/notes", json={"text": "Sender note."},
                      headers=lpsk.headers()), 201)
    ok(kemensos.http.post(f"/v1/referrals/{rid}/notes", json={"text": "Receiver note."},
                          headers=kemensos.headers()), 201)
    if state in ("assessed", "served"):
        ok(kemensos.act(rid, "assess", assess_body()))
    if state == "served":
        ok(kemensos.act(rid, "serve", service_body()))
    return rid


def assert_withheld(view: dict[str, Any]) -> None:
    assert view["consent_withdrawn"] is True
    assert view["subject"]["sealed"] is True
    assert all(view["subject"][field] is None for field in IDENTIFYING)
    assert view["summary"] == ""
    assert view["consent"]["guardian"] is None
    if view["assessment"]:
        assert view["assessment"]["notes"] is None
    assert all(s["notes"] is None for s in view["services"])
    assert view["closure"]["notes"] is None


def assert_whole(view: dict[str, Any]) -> None:
    assert view["subject"]["sealed"] is False
    assert view["subject"]["full_name"] == "Dewi Lestari"
    assert view["subject"]["nik"]
    assert view["summary"]
    assert view["consent"]["guardian"]["full_name"]
    if view["assessment"]:
        assert view["assessment"]["notes"]
    assert all(s["notes"] for s in view["services"])
    assert view["closure"]["notes"] == "Withdrew consent by telephone."


@pytest.mark.parametrize("state", ["referred", "assessed", "served"])
@pytest.mark.parametrize("by", ["sender", "receiver"])
def test_either_party_withdraws_from_any_open_state(
    lpsk: Api, kemensos: Api, state: str, by: str
) -> None:
    rid = worked(lpsk, kemensos, state)
    before = ok(lpsk.get(rid))
    actor = lpsk if by == "sender" else kemensos
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    response = withdraw(actor, rid, withdrawal(withdrawn_at=at.isoformat()))
    view = ok(response)
    assert response.headers["ETag"] == f'"{before["version"] + 1}"'
    assert view["status"] == "closed"
    assert view["closure"]["outcome"] == "consent_withdrawn"
    assert view["due_at"] is None
    assert dt.datetime.fromisoformat(view["consent"]["withdrawn_at"]) == at
    # The receiver sees nothing of the person any more; the sender keeps everything.
    assert_withheld(ok(kemensos.get(rid)))
    assert_whole(ok(lpsk.get(rid)))
    if by == "receiver":
        assert_withheld(view)
    else:
        assert_whole(view)
    # The codes statistics count by stay for both.
    for api in (lpsk, kemensos):
        seen = ok(api.get(rid))
        assert seen["groups"] == before["groups"]
        assert seen["case_types"] == before["case_types"]
    # What only narrows the person down stays with the sender alone.
    sender = ok(lpsk.get(rid))["subject"]
    assert (sender["sex"], sender["region_code"]) == ("female", before["subject"]["region_code"])
    receiver = ok(kemensos.get(rid))["subject"]
    assert (receiver["sex"], receiver["region_code"]) == (None, None)


def test_the_receiver_no_longer_reads_the_notes_or_the_list_entry(
    lpsk: Api, kemensos: Api
) -> None:
    rid = worked(lpsk, kemensos, "assessed")
    ok(withdraw(lpsk, rid))
    notes = ok(kemensos.http.get(f"/v1/referrals/{rid}/notes", headers=kemensos.headers()))
    assert len(notes) == 2
    assert all(n["text"] == "" and n["withheld"] is True for n in notes)
    notes = ok(lpsk.http.get(f"/v1/referrals/{rid}/notes", headers=lpsk.headers()))
    assert [n["text"] for n in notes] == ["Sender note.", "Receiver note."]
    assert not any(n["withheld"] for n in notes)
    (item,) = ok(kemensos.list())["items"]
    assert_withheld(item)
    (item,) = ok(lpsk.list())["items"]
    assert_whole(item)


def test_the_receiver_cannot_find_the_person_by_nik_any_more(lpsk: Api, kemensos: Api) -> None:
    body = adult_body()
    rid = created(lpsk, body)["id"]
    nik = body["subject"]["nik"]
    assert [i["id"] for i in ok(kemensos.list(nik=nik))["items"]] == [rid]
    ok(withdraw(kemensos, rid))
    assert ok(kemensos.list(nik=nik))["items"] == []
    assert [i["id"] for i in ok(lpsk.list(nik=nik))["items"]] == [rid]
    assert [i["id"] for i in ok(kemensos.list())["items"]] == [rid]  # still listed, withheld


def test_the_receiver_keeps_nothing_that_narrows_the_person_down(
    lpsk: Api, kemensos: Api
) -> None:
    """Sex, a village-level region code, the reason a NIK is absent and the sender's case
    number would still single a person out; after withdrawal the receiver gets none."""
    with_nik = adult_body(external_ref="LPSK-2026-0042")
    without_nik = adult_body(external_ref="LPSK-2026-0043")
    without_nik["subject"] = {
        **{k: v for k, v in without_nik["subject"].items() if k != "nik"},
        "nik_absent_reason": "foreign_national",
        "region_code": "31.71.01.1001",
    }
    for body in (with_nik, without_nik):
        rid = created(lpsk, body)["id"]
        ok(withdraw(lpsk, rid))
        for view in (ok(kemensos.get(rid)), *[
            i for i in ok(kemensos.list(limit=200))["items"] if i["id"] == rid
        ]):
            assert set(view["subject"].values()) == {None, True}, view["subject"]
            assert view["subject"]["sealed"] is True
            assert view["external_ref"] is None
        raw = kemensos.get(rid).text + kemensos.list(limit=200).text
        for value in (body["external_ref"], body["subject"]["region_code"]):
            assert value not in raw
        # FHIR's own media type (application/fhir+json), so not `ok`, which wants JSON's.
        fhir_view = kemensos.http.get(f"/v1/referrals/{rid}/fhir", headers=kemensos.headers())
        assert fhir_view.status_code == 200, fhir_view.text
        fhir = json.dumps(fhir_view.json())
        assert body["subject"]["region_code"] not in fhir and '"female"' not in fhir
        # The sender keeps all of it.
        mine = ok(lpsk.get(rid))
        assert mine["external_ref"] == body["external_ref"]
        assert {k: mine["subject"][k] for k in body["subject"]} == body["subject"]


def test_the_receiver_cannot_reveal_a_withdrawn_referral(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    rid = created(lpsk, adult_body(protected_identity=True))["id"]
    ok(withdraw(lpsk, rid))

    def reveal(api: Api):  # type: ignore[no-untyped-def]
        return api.http.get(
            f"/v1/referrals/{rid}",
            params={"reveal": "identity"},
            headers=api.headers(**{"X-Reveal-Reason": "Follow-up visit"}),
        )

    assert "withdrew consent" in assert_problem(reveal(kemensos), 403)["detail"]
    assert ok(reveal(lpsk))["subject"]["full_name"] == "Dewi Lestari"
    with ctx.db.reader() as session:
        reveals = session.execute(
            select(AuditEntry.agency).where(
                AuditEntry.referral_id == uuid.UUID(rid),
                AuditEntry.action == "referral.reveal_identity",
            )
        ).scalars().all()
    assert reveals == ["LPSK"]


def test_the_withdrawal_is_in_the_history_and_the_audit_trail(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    rid = created(lpsk, adult_body())["id"]
    ok(withdraw(kemensos, rid))
    history = ok(kemensos.history(rid))
    assert [h["action"] for h in history] == ["create", "close:consent_withdrawn"]
    last = history[-1]
    assert (last["from_status"], last["to_status"], last["actor_agency"]) == (
        "referred", "closed", "KEMENSOS"
    )
    assert last["detail"]["outcome"] == "consent_withdrawn"
    with ctx.db.reader() as session:
        entries = session.execute(
            select(AuditEntry).where(AuditEntry.referral_id == uuid.UUID(rid))
            .order_by(AuditEntry.id)  # type: ignore[arg-type]
        ).scalars().all()
    assert [e.action for e in entries] == ["referral.create", "referral.consent_withdrawn"]
    entry = entries[-1]
    assert (entry.agency, entry.client_id) == ("KEMENSOS", kemensos.party.client_id)
    assert entry.detail["to_status"] == "closed"
    assert "Withdrew" not in str(entry.detail)


@pytest.mark.parametrize("outcome", ["unreachable", "withdrawn"])
def test_a_closed_referral_gets_409(lpsk: Api, kemensos: Api, outcome: str) -> None:
    rid = created(lpsk, adult_body())["id"]
    closer = kemensos if outcome == "unreachable" else lpsk
    ok(closer.act(rid, "close", {"outcome": outcome}))
    found = assert_problem(withdraw(lpsk, rid), 409)
    assert found["current_status"] == "closed"
    assert ok(kemensos.get(rid))["consent_withdrawn"] is False


def test_a_second_withdrawal_gets_409(lpsk: Api, kemensos: Api) -> None:
    rid = created(lpsk, adult_body())["id"]
    ok(withdraw(lpsk, rid))
    assert assert_problem(withdraw(kemensos, rid), 409)["current_status"] == "closed"


def test_close_cannot_give_the_consent_withdrawn_outcome(lpsk: Api, kemensos: Api) -> None:
    rid = created(lpsk, adult_body())["id"]
    for api in (lpsk, kemensos):
        assert_problem(api.act(rid, "close", {"outcome": "consent_withdrawn"}), 422)
    assert ok(lpsk.get(rid))["status"] == "referred"


def test_if_match_is_required_and_checked(lpsk: Api) -> None:
    rid = created(lpsk, adult_body())["id"]
    assert_problem(withdraw(lpsk, rid, etag=None), 428)
    assert_problem(withdraw(lpsk, rid, etag='"7"'), 412)
    assert ok(lpsk.get(rid))["status"] == "referred"


def test_the_write_scope_is_needed(lpsk: Api, kemensos: Api) -> None:
    rid = created(lpsk, adult_body())["id"]
    limited = kemensos.with_scope("referrals:read referrals:close referrals:assess")
    assert_problem(withdraw(limited, rid), 403)
    assert ok(lpsk.get(rid))["status"] == "referred"


def test_a_third_agency_gets_404(lpsk: Api, kemenham: Api) -> None:
    rid = created(lpsk, adult_body())["id"]
    assert_problem(withdraw(kemenham, rid, etag='"1"'), 404)


@pytest.mark.parametrize(
    "body",
    [
        withdrawal(withdrawn_at=(dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()),
        withdrawal(withdrawn_at="2026-11-20T10:00:00"),
        withdrawal(withdrawn_at="2025-01-01T00:00:00+00:00"),  # before the consent
        withdrawal(reason="NOT_ELIGIBLE"),
        {"notes": "no date"},
        withdrawal(notes=""),
    ],
    ids=["future", "naive", "before-consent", "extra-field", "no-date", "empty-notes"],
)
def test_invalid_withdrawals_get_422(lpsk: Api, body: dict[str, Any]) -> None:
    rid = created(lpsk, adult_body())["id"]
    assert_problem(withdraw(lpsk, rid, body), 422)
    assert ok(lpsk.get(rid))["status"] == "referred"


def test_the_outcome_is_in_the_taxonomy(lpsk: Api) -> None:
    taxonomy = ok(lpsk.http.get("/v1/taxonomy", headers=lpsk.headers()))
    assert "consent_withdrawn" in {o["code"] for o in taxonomy["outcomes"]}
