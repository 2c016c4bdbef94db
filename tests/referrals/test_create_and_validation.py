"""POST /v1/referrals: creation, idempotency, duplicates and validation (CONTRACT §4, §7)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.support import (
    CONTRACT_GROUPS,
    Api,
    assert_problem,
    assess_body,
    make_nik,
    ok,
    referral_body,
    service_body,
    ts,
)

REFERENCE = re.compile(r"^RJK-(\d{4})-([0-9A-HJKMNP-TV-Z]{8})$")


def count(api: Api) -> int:
    return len(ok(api.list(limit=200))["items"])


# ---- create ---------------------------------------------------------------------------------


def test_create_answers_201_with_location_and_etag(lpsk: Api) -> None:
    body = referral_body("KEMENSOS", external_ref="LPSK-2026-0007")
    response = lpsk.create(body)
    created = ok(response, 201)
    assert response.headers["content-type"].split(";")[0] == "application/json"
    assert response.headers["Location"] == f"/v1/referrals/{created['id']}"
    assert response.headers["ETag"] == f'"{created["version"]}"'
    assert created["version"] == 1
    assert created["status"] == "referred"
    assert created["from_agency"] == "LPSK"
    assert created["to_agency"] == "KEMENSOS"
    assert created["parent_id"] is None
    assert created["assessment"] is None and created["closure"] is None
    assert created["services"] == []
    assert created["external_ref"] == "LPSK-2026-0007"
    for field in (
        "groups",
        "kemenham_groups",
        "case_types",
        "urgency",
        "summary",
        "protected_identity",
    ):
        assert created[field] == body[field], field
    assert {k: created["subject"][k] for k in body["subject"]} == body["subject"]
    assert created["consent"]["given"] is True
    assert created["created_at"] == created["updated_at"]

    # The Location can be followed, by both parties.
    followed = lpsk.http.get(response.headers["Location"], headers=lpsk.headers())
    assert ok(followed) == created
    assert followed.headers["ETag"] == response.headers["ETag"]


def test_references_are_well_formed_and_unique(lpsk: Api, kemensos: Api) -> None:
    created = [lpsk.create_ok("KEMENSOS") for _ in range(5)]
    created += [kemensos.create_ok("LPSK") for _ in range(3)]
    references = [c["reference"] for c in created]
    for c in created:
        match = REFERENCE.match(c["reference"])
        assert match, c["reference"]
        assert int(match.group(1)) == ts(c["created_at"]).year
    assert len(set(references)) == len(references)


@pytest.mark.parametrize(
    ("urgency", "allowed"),
    [
        ("emergency", dt.timedelta(hours=24)),
        ("urgent", dt.timedelta(hours=72)),
        ("routine", dt.timedelta(days=14)),
    ],
)
def test_due_at_follows_the_urgency(lpsk: Api, urgency: str, allowed: dt.timedelta) -> None:
    created = lpsk.create_ok("KEMENSOS", urgency=urgency)
    assert ts(created["due_at"]) - ts(created["created_at"]) == allowed
    assert created["is_overdue"] is False
    assert ok(lpsk.get(created["id"]))["due_at"] == created["due_at"]


def test_a_referral_without_nik_needs_a_reason(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    del body["subject"]["nik"]
    body["subject"]["nik_absent_reason"] = "undocumented_child"
    created = ok(lpsk.create(body), 201)
    assert created["subject"]["nik"] is None
    assert created["subject"]["nik_absent_reason"] == "undocumented_child"


def test_two_referrals_without_nik_of_the_same_name_are_both_accepted(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    del body["subject"]["nik"]
    body["subject"]["nik_absent_reason"] = "unknown"
    first = ok(lpsk.create(body), 201)
    second = ok(lpsk.create(copy.deepcopy(body)), 201)
    assert first["id"] != second["id"]


def test_kemenham_groups_alone_are_enough(lpsk: Api) -> None:
    created = lpsk.create_ok("KEMENHAM", groups=[], kemenham_groups=["PEKERJA_MIGRAN"])
    assert created["groups"] == [] and created["kemenham_groups"] == ["PEKERJA_MIGRAN"]


# ---- idempotency ----------------------------------------------------------------------------


def test_a_repeat_with_the_same_idempotency_key_replays_the_first_response(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    first = lpsk.create(body, **{"Idempotency-Key": "create-0001"})
    second = lpsk.create(copy.deepcopy(body), **{"Idempotency-Key": "create-0001"})
    third = lpsk.create(copy.deepcopy(body), **{"Idempotency-Key": "create-0001"})

    assert first.status_code == second.status_code == third.status_code == 201
    assert second.json() == first.json() == third.json()
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert third.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["ETag"] == first.headers["ETag"]
    assert count(lpsk) == 1


def test_a_replay_does_not_depend_on_key_order_of_the_body(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    reordered = json.loads(json.dumps(dict(reversed(list(body.items())))))
    first = lpsk.create(body, **{"Idempotency-Key": "order-1"})
    second = lpsk.create(reordered, **{"Idempotency-Key": "order-1"})
    assert second.status_code == 201, second.text
    assert second.json()["id"] == first.json()["id"]
    assert count(lpsk) == 1


def test_the_same_idempotency_key_with_another_body_is_422(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    first = ok(lpsk.create(body, **{"Idempotency-Key": "create-0002"}), 201)
    other = copy.deepcopy(body)
    other["summary"] = "A different summary."
    assert_problem(lpsk.create(other, **{"Idempotency-Key": "create-0002"}), 422)
    assert_problem(
        lpsk.create(referral_body("KEMENSOS"), **{"Idempotency-Key": "create-0002"}), 422
    )
    assert [i["id"] for i in ok(lpsk.list())["items"]] == [first["id"]]


def test_different_idempotency_keys_create_different_referrals(lpsk: Api) -> None:
    a = ok(lpsk.create(referral_body("KEMENSOS"), **{"Idempotency-Key": "k-a"}), 201)
    b = ok(lpsk.create(referral_body("KEMENSOS"), **{"Idempotency-Key": "k-b"}), 201)
    assert a["id"] != b["id"]
    assert count(lpsk) == 2


def test_the_replay_is_the_first_response_even_after_the_referral_changed(
    lpsk: Api, kemensos: Api
) -> None:
    body = referral_body("KEMENSOS")
    first = ok(lpsk.create(body, **{"Idempotency-Key": "create-0003"}), 201)
    ok(kemensos.act(first["id"], "assess", assess_body()))
    replay = lpsk.create(copy.deepcopy(body), **{"Idempotency-Key": "create-0003"})
    assert replay.status_code == 201
    assert replay.json() == first
    assert count(lpsk) == 1


def test_idempotency_keys_of_one_agency_do_not_replay_for_another(lpsk: Api, kemensos: Api) -> None:
    first = ok(lpsk.create(referral_body("KEMENHAM"), **{"Idempotency-Key": "shared"}), 201)
    response = kemensos.create(referral_body("KEMENHAM"), **{"Idempotency-Key": "shared"})
    second = ok(response, 201)
    assert "Idempotent-Replayed" not in response.headers
    assert second["id"] != first["id"]
    assert second["from_agency"] == "KEMENSOS"


def test_a_refused_create_is_not_remembered_under_its_key(lpsk: Api) -> None:
    bad = referral_body("KEMENSOS", groups=["NO_SUCH_GROUP"])
    assert_problem(lpsk.create(bad, **{"Idempotency-Key": "retry-me"}), 422)
    good = referral_body("KEMENSOS")
    ok(lpsk.create(good, **{"Idempotency-Key": "retry-me"}), 201)


# ---- duplicates -----------------------------------------------------------------------------


def test_a_second_open_referral_of_the_same_nik_to_the_same_receiver_is_409(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    first = ok(lpsk.create(body), 201)
    again = copy.deepcopy(body)
    again["summary"] = "Referred again by another officer."
    problem = assert_problem(lpsk.create(again), 409)
    assert problem["existing_referral_id"] == first["id"]
    assert count(lpsk) == 1


@pytest.mark.parametrize("state", ["assessed", "served"])
def test_the_duplicate_rule_holds_while_the_first_is_open(
    lpsk: Api, kemensos: Api, state: str
) -> None:
    body = referral_body("KEMENSOS")
    first = ok(lpsk.create(body), 201)
    ok(kemensos.act(first["id"], "assess", assess_body()))
    if state == "served":
        ok(
            kemensos.act(
                first["id"],
                "serve",
                {
                    "service_type": "REHABILITASI_SOSIAL",
                    "service_unit": "SENTRA_HANDAYANI",
                    "started_at": service_body()["started_at"],
                },
            )
        )
    problem = assert_problem(lpsk.create(copy.deepcopy(body)), 409)
    assert problem["existing_referral_id"] == first["id"]


def test_the_same_nik_may_be_referred_again_once_the_first_is_closed(
    lpsk: Api, kemensos: Api
) -> None:
    body = referral_body("KEMENSOS")
    first = ok(lpsk.create(body), 201)
    ok(lpsk.act(first["id"], "close", {"outcome": "withdrawn"}))
    second = ok(lpsk.create(copy.deepcopy(body)), 201)
    assert second["id"] != first["id"]
    assert second["reference"] != first["reference"]
    problem = assert_problem(lpsk.create(copy.deepcopy(body)), 409)
    assert problem["existing_referral_id"] == second["id"]


def test_the_same_nik_may_be_referred_to_another_receiver(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    ok(lpsk.create(body), 201)
    other = ok(lpsk.create({**copy.deepcopy(body), "to_agency": "KEMENHAM"}), 201)
    assert other["to_agency"] == "KEMENHAM"
    assert count(lpsk) == 2


def test_the_same_nik_may_be_referred_back_by_the_receiver(lpsk: Api, kemensos: Api) -> None:
    body = referral_body("KEMENSOS")
    ok(lpsk.create(body), 201)
    ok(kemensos.create({**copy.deepcopy(body), "to_agency": "LPSK"}), 201)


# ---- validation -----------------------------------------------------------------------------

SECRET_NAME = "Kartika Wulandari Siregar"
SECRET_NIK = make_nik(dt.date(1991, 7, 14), "female", serial=4321)  # 3171015407914321
LONG_SUMMARY_MARK = "Confidential-narrative-Q7"


def _base() -> dict[str, Any]:
    body = referral_body("KEMENSOS")
    body["subject"].update(
        full_name=SECRET_NAME, nik=SECRET_NIK, birth_date="1991-07-14", sex="female"
    )
    return body


def _subject(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is _DROP:
                body["subject"].pop(key, None)
            else:
                body["subject"][key] = value

    return apply


def _top(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is _DROP:
                body.pop(key, None)
            else:
                body[key] = value

    return apply


_DROP = object()

INVALID: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    # name: (change to a valid body, a field its error must point at)
    "nik-too-short": (_subject(nik=SECRET_NIK[:15]), "subject"),
    "nik-too-long": (_subject(nik=SECRET_NIK + "1"), "subject"),
    "nik-not-digits": (_subject(nik=SECRET_NIK[:15] + "X"), "subject"),
    "nik-unknown-province": (_subject(nik="99" + SECRET_NIK[2:]), "subject"),
    "nik-impossible-date": (_subject(nik=SECRET_NIK[:6] + "7313" + SECRET_NIK[10:]), "subject"),
    "nik-sex-mismatch": (_subject(sex="male"), "subject"),
    "nik-birth-date-mismatch": (_subject(birth_date="1991-07-15"), "subject"),
    "nik-serial-zero": (_subject(nik=SECRET_NIK[:12] + "0000"), "subject"),
    "nik-absent-without-reason": (_subject(nik=_DROP), "subject"),
    "nik-and-absent-reason": (_subject(nik_absent_reason="unknown"), "subject"),
    "nik-absent-reason-unknown": (_subject(nik=_DROP, nik_absent_reason="lost"), "subject"),
    "birth-date-in-future": (
        _subject(nik=_DROP, nik_absent_reason="unknown", birth_date="2999-01-01"),
        "subject",
    ),
    "full-name-missing": (_subject(full_name=_DROP), "full_name"),
    "full-name-too-long": (_subject(full_name=SECRET_NAME + "a" * 200), "full_name"),
    "subject-extra-field": (_subject(religion="Islam"), "religion"),
    "bad-phone": (_subject(phone="call me"), "phone"),
    "bad-region-code": (_subject(region_code="31-71"), "region_code"),
    "consent-not-given": (lambda b: b["consent"].update(given=False), "consent"),
    "consent-missing": (_top(consent=_DROP), "consent"),
    "consent-in-future": (
        lambda b: b["consent"].update(obtained_at="2999-01-01T09:00:00+07:00"),
        "consent",
    ),
    "consent-unknown-method": (lambda b: b["consent"].update(method="telepathy"), "method"),
    "birth-date-invalid": (_subject(birth_date="1991-13-45"), "birth_date"),
    "sex-unknown": (_subject(sex="unknown"), "sex"),
    "subject-missing": (_top(subject=_DROP), "subject"),
    "consent-naive-time": (
        lambda b: b["consent"].update(obtained_at="2026-01-10T09:00:00"),
        "obtained_at",
    ),
    "unknown-group": (_top(groups=["KORBAN_KEKERASAN", "NO_SUCH_GROUP"]), "groups"),
    "unknown-kemenham-group": (_top(kemenham_groups=["NO_SUCH_GROUP"]), "kemenham_groups"),
    "unknown-case-type": (_top(case_types=["NO_SUCH_CASE"]), "case_types"),
    "repeated-group": (_top(groups=["KORBAN_KEKERASAN", "KORBAN_KEKERASAN"]), ""),
    "too-many-groups": (_top(groups=[*CONTRACT_GROUPS, "ANAK_RENTAN_2"]), "groups"),
    "no-groups-at-all": (_top(groups=[], kemenham_groups=[]), ""),
    "refer-to-oneself": (_top(to_agency="LPSK"), "to_agency"),
    "unknown-to-agency": (_top(to_agency="KEMENDAGRI"), "to_agency"),
    "lowercase-to-agency": (_top(to_agency="kemensos"), "to_agency"),
    "bad-urgency": (_top(urgency="asap"), "urgency"),
    "summary-too-long": (_top(summary=LONG_SUMMARY_MARK + "x" * 4000), "summary"),
    "summary-empty": (_top(summary=""), "summary"),
    "extra-field": (_top(priority="high"), "priority"),
    "external-ref-too-long": (_top(external_ref="R" * 101), "external_ref"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_an_invalid_create_gets_422_with_errors_and_no_echo(lpsk: Api, case: str) -> None:
    change, field = INVALID[case]
    body = _base()
    change(body)

    response = lpsk.create(body)

    problem = assert_problem(response, 422)
    assert isinstance(problem["errors"], list) and problem["errors"]
    for error in problem["errors"]:
        assert isinstance(error["loc"], list) and error["msg"] and "type" in error
    if field:
        assert any(field in map(str, e["loc"]) for e in problem["errors"]), problem["errors"]
    for secret in (
        SECRET_NAME,
        SECRET_NIK,
        SECRET_NIK[:15],
        LONG_SUMMARY_MARK,
        "Islam",
        "call me",
        "1991-13-45",
        "telepathy",
    ):
        assert secret not in response.text, secret
    assert count(lpsk) == 0


def test_the_valid_base_body_of_the_validation_cases_is_accepted(lpsk: Api) -> None:
    ok(lpsk.create(_base()), 201)


def test_a_body_that_is_not_json_is_a_422_problem(lpsk: Api) -> None:
    response = lpsk.http.post(
        "/v1/referrals",
        content=b'{"to_agency": "KEMENSOS", "subject": {"nik": "3171',
        headers=lpsk.headers(**{"Content-Type": "application/json"}),
    )
    assert_problem(response, 422)
    assert "3171" not in response.text


def test_a_create_without_the_write_scope_is_403(lpsk: Api) -> None:
    response = lpsk.with_scope("referrals:read").create(referral_body("KEMENSOS"))
    assert_problem(response, 403)
    assert count(lpsk) == 0


def test_a_create_without_a_token_is_401(lpsk: Api) -> None:
    response = lpsk.http.post("/v1/referrals", json=referral_body("KEMENSOS"))
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("key", ["", "has space", "x" * 256])
def test_a_malformed_idempotency_key_is_422(lpsk: Api, key: str) -> None:
    assert_problem(lpsk.create(referral_body("KEMENSOS"), **{"Idempotency-Key": key}), 422)
    assert count(lpsk) == 0


# ---- timestamps -----------------------------------------------------------------------------


@pytest.mark.parametrize("number", [0, 1764547200, "0.5", "1764547200"])
def test_timestamps_are_rfc3339_text_never_numbers(
    lpsk: Api, kemensos: Api, number: object
) -> None:
    """Found by Schemathesis: `withdrawn_at: 0` and `updated_since=0.5` were read as seconds
    since 1970, where the spec promises RFC 3339 date-time strings."""
    body = referral_body("KEMENSOS")
    body["consent"] = {**body["consent"], "obtained_at": number}
    problem = assert_problem(lpsk.create(body), 422)
    assert ["body", "consent", "obtained_at"] in [e["loc"] for e in problem["errors"]]
    assert count(lpsk) == 0

    rid = lpsk.create_ok("KEMENSOS")["id"]
    assert ok(kemensos.act(rid, "assess", assess_body()))["version"] == 2
    serve = kemensos.act(rid, "serve", service_body(started_at=number))
    assert_problem(serve, 422)
    withdrawal = lpsk.act(rid, "consent-withdrawal", {"withdrawn_at": number})
    assert_problem(withdrawal, 422)
    assert ok(lpsk.get(rid))["status"] == "assessed"
    assert_problem(lpsk.list(updated_since=number), 422)
    assert ok(lpsk.list(updated_since="2026-01-01T00:00:00Z"))["items"]
