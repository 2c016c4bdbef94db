"""Agency isolation (CONTRACT §3) and protected identities (CONTRACT §4).

An LPSK -> KEMENSOS referral does not exist for KEMENHAM: 404 everywhere, never 403, and it
never shows in KEMENHAM's lists.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import func, select

from service.audit.models import AuditEntry
from service.context import ServiceContext
from tests.support import Api, assert_problem, assess_body, ok, referral_body, service_body

NOWHERE = "00000000-0000-4000-8000-000000000000"
IDENTIFYING = ("full_name", "nik", "birth_date", "address", "phone")


def drive(lpsk: Api, kemensos: Api, state: str, **overrides: Any) -> dict[str, Any]:
    created = lpsk.create_ok("KEMENSOS", **overrides)
    rid = created["id"]
    if state in ("assessed", "served"):
        ok(kemensos.act(rid, "assess", assess_body()))
    if state == "served":
        ok(kemensos.act(rid, "serve", service_body()))
    if state == "closed":
        ok(kemensos.act(rid, "close", {"outcome": "unreachable"}))
    return created


def _third_party_calls(api: Api, rid: str) -> dict[str, Response]:
    """Everything KEMENHAM could try on a referral it is no party to."""
    http, base = api.http, f"/v1/referrals/{rid}"
    calls: dict[str, Response] = {
        "get": api.get(rid),
        "reveal": http.get(
            base,
            params={"reveal": "identity"},
            headers=api.headers(**{"X-Reveal-Reason": "Court order 12/2026"}),
        ),
        "history": api.history(rid),
        "notes-get": http.get(f"{base}/notes", headers=api.headers()),
        "notes-post": http.post(f"{base}/notes", json={"text": "Hi"}, headers=api.headers()),
        "notes-post-if-match": http.post(
            f"{base}/notes", json={"text": "Hi"}, headers=api.headers(**{"If-Match": '"1"'})
        ),
    }
    actions = {
        "assess": ("assess", assess_body("KEMENHAM")),
        "serve": ("serve", service_body("KEMENHAM")),
        "services": ("services", service_body("KEMENHAM")),
        **{
            f"close-{o}": ("close", {"outcome": o})
            for o in ("completed", "withdrawn", "unreachable", "deceased")
        },
        "close-declined": ("close", {"outcome": "declined", "reason": "NOT_ELIGIBLE"}),
        "close-referred_onward": ("close", {"outcome": "referred_onward", "onward_agency": "LPSK"}),
    }
    for name, (path, body) in actions.items():
        for tag in ('"1"', '"2"', '"3"', None):
            calls[f"{name}[{tag}]"] = api.act(rid, path, body, etag=tag)
    return calls


@pytest.mark.parametrize("state", ["referred", "assessed", "served", "closed"])
def test_a_third_agency_gets_404_for_everything(
    lpsk: Api, kemensos: Api, kemenham: Api, state: str
) -> None:
    rid = drive(lpsk, kemensos, state)["id"]
    before = ok(lpsk.get(rid))
    history_before = ok(lpsk.history(rid))

    for name, response in _third_party_calls(kemenham, rid).items():
        assert response.status_code == 404, (name, response.status_code, response.text)
        assert_problem(response, 404)

    after = ok(lpsk.get(rid))
    assert (after["status"], after["version"]) == (before["status"], before["version"])
    assert ok(lpsk.history(rid)) == history_before
    assert ok(lpsk.http.get(f"/v1/referrals/{rid}/notes", headers=lpsk.headers())) == []


def test_the_404_of_a_third_agency_looks_like_that_of_a_missing_referral(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    rid = drive(lpsk, kemensos, "referred")["id"]
    hidden = _third_party_calls(kemenham, rid)
    missing = _third_party_calls(kemenham, NOWHERE)
    for name, response in hidden.items():
        assert response.json() == missing[name].json(), name
        assert response.status_code == missing[name].status_code, name


def test_a_limited_token_of_a_third_agency_learns_nothing_either(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    rid = drive(lpsk, kemensos, "referred")["id"]
    for scope in ("referrals:read", "referrals:write", "referrals:close", "referrals:assess"):
        limited = kemenham.with_scope(scope)
        hidden = _third_party_calls(limited, rid)
        missing = _third_party_calls(limited, NOWHERE)
        for name, response in hidden.items():
            assert response.status_code in (403, 404), (scope, name, response.status_code)
            assert response.status_code == missing[name].status_code, (scope, name)
            assert response.json() == missing[name].json(), (scope, name)


def test_the_parties_themselves_see_the_referral(lpsk: Api, kemensos: Api, kemenham: Api) -> None:
    rid = drive(lpsk, kemensos, "referred")["id"]
    assert ok(lpsk.get(rid))["id"] == rid
    assert ok(kemensos.get(rid))["id"] == rid
    assert_problem(kemenham.get(rid), 404)


def _kemenham_list_queries(nik: str) -> list[dict[str, Any]]:
    an_hour_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    return [
        {},
        {"status": "referred"},
        {"status": "assessed"},
        {"direction": "incoming"},
        {"direction": "outgoing"},
        {"to_agency": "KEMENSOS"},
        {"from_agency": "LPSK"},
        {"to_agency": "KEMENSOS", "from_agency": "LPSK"},
        {"group": "KORBAN_KEKERASAN"},
        {"urgency": "urgent"},
        {"nik": nik},
        {"overdue": "false"},
        {"overdue": "true"},
        {"updated_since": an_hour_ago},
        {"limit": 200},
    ]


def test_the_referral_never_appears_in_a_third_agency_list(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    hidden = drive(lpsk, kemensos, "assessed")
    nik = hidden["subject"]["nik"]
    own = kemenham.create_ok("LPSK")["id"]
    incoming = lpsk.create_ok("KEMENHAM")["id"]

    for params in _kemenham_list_queries(nik):
        page = ok(kemenham.list(**params))
        ids = [item["id"] for item in page["items"]]
        assert hidden["id"] not in ids, params
        assert nik not in str(page), params
    assert {i["id"] for i in ok(kemenham.list())["items"]} == {own, incoming}
    assert ok(kemenham.list(nik=nik))["items"] == []


def test_the_third_agency_cannot_find_the_person_by_nik(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    hidden = drive(lpsk, kemensos, "referred")
    assert ok(kemenham.list(nik=hidden["subject"]["nik"])) == {"items": [], "next_cursor": None}
    assert [i["id"] for i in ok(kemensos.list(nik=hidden["subject"]["nik"]))["items"]] == [
        hidden["id"]
    ]


def test_another_sender_referring_the_same_person_learns_nothing_of_the_open_referral(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    body = referral_body("KEMENSOS")
    hidden = ok(lpsk.create(body), 201)

    response = kemenham.create(body)

    # Answered as for a person nobody referred: no 409 telling KEMENHAM the person is known.
    created = ok(response, 201)
    assert created["possible_duplicate_of"] is None
    assert hidden["id"] not in response.text
    assert hidden["reference"] not in response.text
    assert ok(kemenham.get(created["id"]))["possible_duplicate_of"] is None
    assert_problem(kemenham.get(hidden["id"]), 404)


def test_an_onward_referral_does_not_name_a_referral_the_closing_receiver_cannot_see(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    body = referral_body("KEMENSOS")
    rid = ok(lpsk.create(body), 201)["id"]
    hidden = ok(lpsk.create({**body, "to_agency": "KEMENHAM"}), 201)
    assert_problem(kemensos.get(hidden["id"]), 404)
    ok(kemensos.act(rid, "assess", assess_body()))

    response = kemensos.act(
        rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"}
    )

    child = ok(response)["closure"]["onward_referral_id"]
    assert hidden["id"] not in response.text
    assert hidden["reference"] not in response.text
    assert ok(kemensos.get(child))["possible_duplicate_of"] is None
    # KEMENHAM, the receiver of both, is pointed from the child to the open one.
    assert ok(kemenham.get(child))["possible_duplicate_of"] == hidden["id"]


def test_the_onward_child_belongs_to_its_own_two_agencies(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    rid = drive(lpsk, kemensos, "assessed")["id"]
    closed = ok(
        kemensos.act(rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"})
    )
    child = closed["closure"]["onward_referral_id"]
    # KEMENHAM sees the child but not the parent; LPSK sees the parent but not the child.
    ok(kemenham.get(child))
    assert_problem(kemenham.get(rid), 404)
    assert_problem(kemenham.history(rid), 404)
    ok(lpsk.get(rid))
    assert_problem(lpsk.get(child), 404)
    assert child not in [i["id"] for i in ok(lpsk.list())["items"]]


# ---- protected identities -------------------------------------------------------------------


def _protected(lpsk: Api, **overrides: Any) -> tuple[str, dict[str, Any]]:
    body = referral_body(
        "KEMENSOS",
        protected_identity=True,
        **overrides,
    )
    body["subject"] = {
        **body["subject"],
        "full_name": "Ratna Kusumawardhani",
        "address": "Jl. Cempaka Putih 99, Jakarta",
        "phone": "+62 813 9999 1234",
    }
    created = ok(lpsk.create(body), 201)
    return created["id"], body["subject"]


def assert_sealed(referral: dict[str, Any], subject: dict[str, Any]) -> None:
    assert referral["protected_identity"] is True
    assert referral["subject"]["sealed"] is True
    for field in IDENTIFYING:
        assert referral["subject"][field] is None, field
    assert referral["subject"]["sex"] == subject["sex"]
    assert referral["subject"]["region_code"] == subject["region_code"]


def _secrets(subject: dict[str, Any]) -> list[str]:
    return [
        subject["full_name"],
        subject["nik"],
        subject["birth_date"],
        subject["address"],
        subject["phone"],
    ]


def test_a_protected_identity_is_sealed_in_get_for_both_parties(lpsk: Api, kemensos: Api) -> None:
    rid, subject = _protected(lpsk)
    for api in (lpsk, kemensos):
        response = api.get(rid)
        assert_sealed(ok(response), subject)
        for secret in _secrets(subject):
            assert secret not in response.text


def test_a_protected_identity_is_sealed_in_lists_for_both_parties(lpsk: Api, kemensos: Api) -> None:
    rid, subject = _protected(lpsk)
    lpsk.create_ok("KEMENSOS")
    for api, params in [
        (lpsk, {}),
        (lpsk, {"direction": "outgoing"}),
        (kemensos, {}),
        (kemensos, {"direction": "incoming"}),
        (kemensos, {"nik": subject["nik"]}),
        (lpsk, {"nik": subject["nik"]}),
    ]:
        # A NIK finds a protected identity only with a reason; even then the list seals it.
        reason = {"X-Reveal-Reason": "Court order 12/2026"} if "nik" in params else {}
        response = api.http.get("/v1/referrals", params=params, headers=api.headers(**reason))
        items = {item["id"]: item for item in ok(response)["items"]}
        assert rid in items, params
        assert_sealed(items[rid], subject)
        for secret in _secrets(subject):
            assert secret not in response.text, (params, secret)


def test_a_protected_identity_stays_sealed_through_the_lifecycle(lpsk: Api, kemensos: Api) -> None:
    rid, subject = _protected(lpsk)
    responses = [
        kemensos.act(rid, "assess", assess_body()),
        kemensos.act(rid, "serve", service_body()),
        kemensos.act(rid, "services", service_body(service_type="TERAPI")),
        kemensos.http.post(
            f"/v1/referrals/{rid}/notes", json={"text": "Seen."}, headers=kemensos.headers()
        ),
        kemensos.act(rid, "close", {"outcome": "completed"}),
        lpsk.history(rid),
    ]
    for response in responses:
        assert response.status_code in (200, 201), response.text
        for secret in _secrets(subject):
            assert secret not in response.text
    assert_sealed(ok(lpsk.get(rid)), subject)


def test_an_onward_child_of_a_protected_person_stays_protected(
    lpsk: Api, kemensos: Api, kemenham: Api
) -> None:
    rid, subject = _protected(lpsk)
    ok(kemensos.act(rid, "assess", assess_body()))
    closed = ok(
        kemensos.act(rid, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"})
    )
    child = closed["closure"]["onward_referral_id"]
    response = kemenham.get(child)
    assert_sealed(ok(response), subject)
    listed = kemenham.list()
    assert_sealed(ok(listed)["items"][0], subject)
    for secret in _secrets(subject):
        assert secret not in response.text
        assert secret not in listed.text


@pytest.mark.parametrize("reason_header", [None, "", "ab"])
def test_reveal_without_a_reason_is_422(
    lpsk: Api, kemensos: Api, reason_header: str | None
) -> None:
    rid, subject = _protected(lpsk)
    headers = {} if reason_header is None else {"X-Reveal-Reason": reason_header}
    for api in (lpsk, kemensos):
        response = api.http.get(
            f"/v1/referrals/{rid}", params={"reveal": "identity"}, headers=api.headers(**headers)
        )
        assert_problem(response, 422)
        for secret in _secrets(subject):
            assert secret not in response.text


def _reveals(ctx: ServiceContext, rid: str) -> int:
    with ctx.db.reader() as session:
        stmt = (
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.referral_id == uuid.UUID(rid),
                AuditEntry.action == "referral.reveal_identity",
            )
        )
        return int(session.execute(stmt).scalar_one())


def test_reveal_with_a_reason_returns_the_identity_and_is_audited(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    rid, subject = _protected(lpsk)
    reason = "Placement at a safe house needs the full identity"
    for count, api in enumerate((lpsk, kemensos), start=1):
        response = api.http.get(
            f"/v1/referrals/{rid}",
            params={"reveal": "identity"},
            headers=api.headers(**{"X-Reveal-Reason": reason}),
        )
        revealed = ok(response)
        assert revealed["subject"]["sealed"] is False
        for field in IDENTIFYING:
            assert revealed["subject"][field] == subject[field], field
        assert response.headers["ETag"] == f'"{revealed["version"]}"'
        assert _reveals(ctx, rid) == count
    # A plain read afterwards is sealed again.
    assert_sealed(ok(kemensos.get(rid)), subject)


def test_the_reveal_reason_is_not_stored_in_clear(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    rid, _ = _protected(lpsk)
    reason = "Unique reason text 7f3a for the audit"
    ok(
        kemensos.http.get(
            f"/v1/referrals/{rid}",
            params={"reveal": "identity"},
            headers=kemensos.headers(**{"X-Reveal-Reason": reason}),
        )
    )
    with ctx.db.reader() as session:
        entries = (
            session.execute(select(AuditEntry).where(AuditEntry.referral_id == uuid.UUID(rid)))
            .scalars()
            .all()
        )
    assert entries
    assert all(
        reason not in str(e.detail) and reason not in (e.detail_sealed or "") for e in entries
    )


def test_a_third_agency_gets_404_on_reveal_and_nothing_is_audited(
    lpsk: Api, kemensos: Api, kemenham: Api, ctx: ServiceContext
) -> None:
    rid, subject = _protected(lpsk)
    response = kemenham.http.get(
        f"/v1/referrals/{rid}",
        params={"reveal": "identity"},
        headers=kemenham.headers(**{"X-Reveal-Reason": "Curious about this person"}),
    )
    assert_problem(response, 404)
    for secret in _secrets(subject):
        assert secret not in response.text
    assert _reveals(ctx, rid) == 0


def test_an_unprotected_referral_shows_the_identity_to_both_parties(
    lpsk: Api, kemensos: Api
) -> None:
    body = referral_body("KEMENSOS")
    rid = ok(lpsk.create(body), 201)["id"]
    for api in (lpsk, kemensos):
        got = ok(api.get(rid))
        assert got["subject"]["sealed"] is False
        for field in IDENTIFYING:
            assert got["subject"][field] == body["subject"][field]
        listed = {i["id"]: i for i in ok(api.list())["items"]}[rid]
        assert listed["subject"]["nik"] == body["subject"]["nik"]
