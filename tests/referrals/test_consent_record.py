"""Consent is a record (UU PDP Pasal 20-25): purposes, who gave it, and for a child the
parent or guardian, whose name and phone are personal data stored sealed."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from typing import Any

import pytest

from service.context import ServiceContext
from service.referrals import create
from service.referrals.models import Referral
from service.referrals.schemas import ReferralCreate
from tests.support import Api, assert_problem, assess_body, ok
from tests.support.pdp import (
    CONSENT_AT,
    GUARDIAN,
    adult_body,
    child_body,
    created,
    person,
    stored_bytes,
)

DEFAULT_PURPOSES = ["REFERRAL", "ASSESSMENT", "SERVICE_DELIVERY"]


def _row(ctx: ServiceContext, referral_id: str) -> Referral:
    with ctx.db.reader() as session:
        row = session.get(Referral, uuid.UUID(referral_id))
        assert row is not None
        return row


def test_a_consent_without_purposes_covers_the_default_ones(lpsk: Api, ctx: ServiceContext) -> None:
    body = adult_body()
    assert set(body["consent"]) == {"given", "obtained_at", "method", "obtained_by"}
    referral = created(lpsk, body)
    consent = referral["consent"]
    assert consent["purposes"] == DEFAULT_PURPOSES
    assert consent["given_by"] == "subject"
    assert consent["guardian"] is None
    assert consent["withdrawn_at"] is None
    # The record itself holds them, not only the response.
    stored = _row(ctx, referral["id"]).consent
    assert stored["purposes"] == DEFAULT_PURPOSES
    assert stored["given_by"] == "subject"


def test_the_purposes_given_are_recorded(lpsk: Api, kemensos: Api) -> None:
    body = adult_body()
    body["consent"]["purposes"] = ["REFERRAL", "PROTECTION", "CASE_COORDINATION"]
    referral = created(lpsk, body)
    seen = ok(kemensos.get(referral["id"]))["consent"]
    assert seen["purposes"] == ["REFERRAL", "PROTECTION", "CASE_COORDINATION"]


@pytest.mark.parametrize(
    ("purposes", "where"),
    [
        (["REFERRAL", "MARKETING"], ["body", "consent", "purposes", 1]),
        (["ASSESSMENT"], ["body", "consent", "purposes"]),
        (["REFERRAL", "REFERRAL"], ["body", "consent", "purposes"]),
        ([], None),
        (["referral nope"], None),
    ],
)
def test_bad_purposes_are_refused(
    lpsk: Api, purposes: list[str], where: list[Any] | None
) -> None:
    body = adult_body()
    body["consent"]["purposes"] = purposes
    found = assert_problem(lpsk.create(body), 422)
    if where is not None:
        assert [e["loc"] for e in found["errors"]] == [where]
    assert lpsk.list().json()["items"] == []


def test_a_child_needs_a_guardian_s_consent(lpsk: Api) -> None:
    body = child_body()
    body["consent"] = adult_body()["consent"]  # given by the 13-year-old herself
    found = assert_problem(lpsk.create(body), 422)
    assert "under 18" in found["errors"][0]["msg"]
    assert "guardian" in found["errors"][0]["msg"]
    assert found["errors"][0]["loc"] == ["body", "consent", "given_by"]
    assert lpsk.list().json()["items"] == []


def test_given_by_guardian_needs_the_guardian(lpsk: Api) -> None:
    body = child_body()
    del body["consent"]["guardian"]
    error = assert_problem(lpsk.create(body), 422)["errors"][0]
    assert "guardian is required" in error["msg"]
    assert error["loc"] == ["body", "consent", "guardian"]


def test_a_guardian_is_refused_when_the_person_consented(lpsk: Api) -> None:
    body = adult_body()
    body["consent"]["guardian"] = dict(GUARDIAN)
    assert "given_by guardian" in assert_problem(lpsk.create(body), 422)["errors"][0]["msg"]


@pytest.mark.parametrize(
    "guardian",
    [
        {"full_name": "Sri", "relationship": "aunt"},
        {"full_name": "", "relationship": "parent"},
        {"relationship": "parent"},
        {"full_name": "Sri", "relationship": "parent", "phone": "call me"},
        {"full_name": "Sri", "relationship": "parent", "email": "x@example.org"},
    ],
)
def test_an_invalid_guardian_is_refused(lpsk: Api, guardian: dict[str, Any]) -> None:
    assert_problem(lpsk.create(child_body(guardian=guardian)), 422)


def test_age_is_taken_on_the_day_consent_was_obtained(lpsk: Api) -> None:
    day = CONSENT_AT.date()
    eighteen_today = dt.date(day.year - 18, day.month, day.day)
    body = adult_body()
    body["subject"] = person(eighteen_today)
    created(lpsk, body)  # 18 on that very day: consents herself
    body = adult_body()
    body["subject"] = person(eighteen_today + dt.timedelta(days=1))
    assert_problem(lpsk.create(body), 422)  # one day short of 18


def test_without_a_birth_date_the_person_s_own_consent_is_taken(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    """No birth date, no age to check: the consent stands as the person's own, no guardian."""
    body = adult_body()
    del body["subject"]["birth_date"]
    referral = created(lpsk, body)
    for api in (lpsk, kemensos):
        consent = ok(api.get(referral["id"]))["consent"]
        assert consent["given_by"] == "subject"
        assert consent["guardian"] is None
        assert consent["purposes"] == DEFAULT_PURPOSES
    stored = _row(ctx, referral["id"]).consent
    assert stored["given_by"] == "subject"


def test_an_adult_may_consent_through_a_guardian(lpsk: Api) -> None:
    body = adult_body()
    body["consent"].update(given_by="guardian", guardian=dict(GUARDIAN, relationship="other"))
    assert created(lpsk, body)["consent"]["guardian"]["relationship"] == "other"


def test_both_parties_see_the_guardian(lpsk: Api, kemensos: Api) -> None:
    referral = created(lpsk, child_body())
    for api in (lpsk, kemensos):
        consent = ok(api.get(referral["id"]))["consent"]
        assert consent["given_by"] == "guardian"
        assert consent["guardian"] == GUARDIAN
    listed = ok(kemensos.list())["items"][0]["consent"]
    assert listed["guardian"] == GUARDIAN


def test_the_guardian_is_stored_sealed_not_in_the_consent_record(
    lpsk: Api, ctx: ServiceContext, backend: str
) -> None:
    name, phone = f"CANARYGUARDIAN_{uuid.uuid4().hex[:10]}", "+62 819 7777 4242"
    guardian = {"full_name": name, "relationship": "legal_guardian", "phone": phone}
    referral = created(lpsk, child_body(guardian=guardian))
    row = _row(ctx, referral["id"])
    assert "guardian" not in row.consent
    assert name not in json.dumps(row.consent) and phone not in json.dumps(row.consent)
    assert row.consent_sealed and name not in row.consent_sealed
    opened = json.loads(ctx.keyring.open(row.consent_sealed, f"referral:{row.id}:consent"))
    assert opened == {"guardian": guardian}
    raw = stored_bytes(ctx.settings.database_url, backend)
    assert referral["reference"].encode() in raw, "the scan sees the referral"
    assert name.encode() not in raw
    assert phone.encode() not in raw


def test_a_protected_person_s_guardian_is_withheld_unless_revealed(
    lpsk: Api, kemensos: Api
) -> None:
    referral = created(lpsk, child_body(protected_identity=True))
    assert referral["consent"]["guardian"] is None
    for api in (lpsk, kemensos):
        seen = ok(api.get(referral["id"]))
        assert seen["subject"]["sealed"] is True
        assert seen["consent"]["guardian"] is None
        assert seen["consent"]["given_by"] == "guardian"
        assert ok(api.list())["items"][0]["consent"]["guardian"] is None
    revealed = kemensos.http.get(
        f"/v1/referrals/{referral['id']}",
        params={"reveal": "identity"},
        headers=kemensos.headers(**{"X-Reveal-Reason": "Contacting the parent"}),
    )
    assert ok(revealed)["consent"]["guardian"] == GUARDIAN


def test_an_onward_child_referral_copies_the_consent_and_guardian(
    lpsk: Api, kemensos: Api, kemenham: Api, ctx: ServiceContext
) -> None:
    body = child_body()
    body["consent"]["purposes"] = ["REFERRAL", "CASE_COORDINATION"]
    rid = created(lpsk, body)["id"]
    ok(kemensos.act(rid, "assess", assess_body()))
    closed = ok(kemensos.act(rid, "close", {"outcome": "referred_onward",
                                             "onward_agency": "KEMENHAM"}))
    child_id = closed["closure"]["onward_referral_id"]
    consent = ok(kemenham.get(child_id))["consent"]
    assert consent["guardian"] == GUARDIAN
    assert consent["given_by"] == "guardian"
    assert consent["purposes"] == ["REFERRAL", "CASE_COORDINATION"]
    # Sealed again for the child's own place: the parent's ciphertext would not open there.
    parent, child = _row(ctx, rid), _row(ctx, child_id)
    assert child.consent_sealed and child.consent_sealed != parent.consent_sealed
    ctx.keyring.open(child.consent_sealed, f"referral:{child_id}:consent")


def test_an_idempotency_key_stored_before_consent_purposes_still_replays(
    ctx: ServiceContext,
) -> None:
    """A retry of a request whose fingerprint was stored by the previous release matches."""
    body = ReferralCreate.model_validate(adult_body())
    old_shape = body.model_dump(mode="json")
    for name in ("purposes", "given_by", "guardian"):
        old_shape["consent"].pop(name)
    canonical = json.dumps(old_shape, sort_keys=True, separators=(",", ":"))
    before = hmac.new(ctx.keyring.index_key, canonical.encode(), hashlib.sha256).hexdigest()
    assert create._request_fingerprint(ctx, body) == before
    # Sending the defaults explicitly is another body (the client said something more).
    explicit = adult_body()
    explicit["consent"]["purposes"] = list(DEFAULT_PURPOSES)
    assert create._request_fingerprint(ctx, ReferralCreate.model_validate(explicit)) != before


def test_the_openapi_document_describes_the_consent_record() -> None:
    from service.app import openapi_spec

    schemas = openapi_spec()["components"]["schemas"]
    consent_in = schemas["ConsentIn"]["properties"]
    assert {"purposes", "given_by", "guardian"} <= set(consent_in)
    assert set(schemas["ConsentIn"]["required"]) == {"given", "obtained_at", "method",
                                                     "obtained_by"}
    assert {"purposes", "given_by", "guardian", "withdrawn_at"} <= set(
        schemas["ConsentOut"]["properties"]
    )
    examples = schemas["ReferralCreate"]["examples"]
    assert any(e["consent"].get("given_by") == "guardian" for e in examples)
    assert all("purposes" in e["consent"] for e in examples)


def test_consent_given_is_const_true_in_the_schema_and_false_keeps_its_message(
    lpsk: Api,
) -> None:
    from service.app import openapi_spec

    given = openapi_spec()["components"]["schemas"]["ConsentIn"]["properties"]["given"]
    assert given["type"] == "boolean" and given["const"] is True
    body = adult_body()
    body["consent"]["given"] = False
    found = assert_problem(lpsk.create(body), 422)
    assert found["errors"] == [
        {
            "loc": ["body", "consent", "given"],
            "msg": "consent must be given before a person is referred",
            "type": "value_error",
        }
    ]
