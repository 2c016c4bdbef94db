"""GET /v1/referrals/{id}/fhir: a valid FHIR R4 Bundle that seals exactly what the API seals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from service.fhir.mapping import NIK_SYSTEM
from service.times import MAX_CLOCK_SKEW
from tests.support import Api, assert_problem, assess_body, referral_body, service_body

FHIR_JSON = "application/fhir+json"
# Task.status codes of FHIR R4 (required binding; the models do not check bindings).
TASK_STATUSES = {
    "draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
    "in-progress", "on-hold", "failed", "completed", "entered-in-error",
}
REQUEST_STATUSES = {"draft", "active", "on-hold", "revoked", "completed", "entered-in-error",
                    "unknown"}


def fhir(api: Api, referral_id: str) -> dict[str, Any]:
    """The bundle as `api`'s agency reads it, checked against the FHIR R4 models."""
    response = api.http.get(f"/v1/referrals/{referral_id}/fhir", headers=api.headers())
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == FHIR_JSON
    body = response.json()
    Bundle.model_validate(body)
    assert response.headers["ETag"] == f'"{api.get(referral_id).json()["version"]}"'
    return body  # type: ignore[no-any-return]


def resources(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task, ServiceRequest and Patient by type; Organizations by their identifier."""
    found: dict[str, dict[str, Any]] = {}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        key = resource["resourceType"]
        if key == "Organization":
            key = f"Organization:{resource['identifier'][0]['value']}"
        assert key not in found, f"two {key} entries"
        found[key] = resource
    return found


def resolve(bundle: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """The entry a reference points at; fails when it points outside the bundle."""
    matches = [e["resource"] for e in bundle["entry"] if e["fullUrl"] == reference["reference"]]
    assert len(matches) == 1, reference
    return matches[0]


def task_of(bundle: dict[str, Any]) -> dict[str, Any]:
    return resources(bundle)["Task"]


def business(task: dict[str, Any]) -> set[str]:
    return {c["code"] for c in task["businessStatus"]["coding"]}


def test_bundle_follows_the_lifecycle(lpsk: Api, kemensos: Api) -> None:
    body = referral_body(urgency="emergency")
    referral = lpsk.create_ok(**{k: v for k, v in body.items() if k != "to_agency"})
    rid = referral["id"]

    bundle = fhir(kemensos, rid)
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    assert bundle["entry"][0]["resource"]["resourceType"] == "Task"
    found = resources(bundle)
    task = found["Task"]
    assert task["id"] == rid
    assert task["status"] == "requested" and business(task) == {"referred"}
    assert task["priority"] == "stat"
    assert task["identifier"][0]["value"] == referral["reference"]
    assert resolve(bundle, task["focus"])["resourceType"] == "ServiceRequest"
    requester = resolve(bundle, task["requester"])
    owner = resolve(bundle, task["owner"])
    assert requester["identifier"][0]["value"] == "LPSK"
    assert owner["identifier"][0]["value"] == "KEMENSOS"
    assert requester["name"] and owner["name"] and requester["name"] != owner["name"]
    assert task["restriction"]["period"]["end"]

    patient = resolve(bundle, task["for"])
    subject = referral["subject"]
    assert patient["identifier"] == [
        {"use": "official", "system": NIK_SYSTEM, "value": subject["nik"]}
    ]
    assert patient["name"][0]["text"] == subject["full_name"]
    assert patient["birthDate"] == subject["birth_date"]
    assert patient["gender"] == "female"
    assert patient["telecom"][0]["value"] == subject["phone"]
    assert patient["address"][0]["text"] == subject["address"]
    assert "meta" not in patient

    request = found["ServiceRequest"]
    assert request["status"] == "active" and request["intent"] == "order"
    assert resolve(bundle, request["subject"]) is patient
    assert resolve(bundle, request["requester"]) is requester
    assert {c["coding"][0]["code"] for c in request["category"]} == {"KORBAN_KEKERASAN"}
    assert {c["coding"][0]["code"] for c in request["reasonCode"]} == {"TPPO"}
    assert request["note"][0]["text"] == body["summary"]

    assert kemensos.act(rid, "assess", assess_body()).status_code == 200
    task = task_of(fhir(lpsk, rid))
    assert task["status"] == "accepted" and business(task) == {"assessed"}
    assert "orderDetail" in resources(fhir(lpsk, rid))["ServiceRequest"]

    served = service_body()  # started now, in WIB (+07:00)
    assert kemensos.act(rid, "serve", served).status_code == 200
    task = task_of(fhir(lpsk, rid))
    assert task["status"] == "in-progress" and business(task) == {"served"}
    start = task["executionPeriod"]["start"]
    assert start.endswith("Z")
    assert dt.datetime.fromisoformat(start) == dt.datetime.fromisoformat(served["started_at"])
    # The service cannot have started before the referral was made (within the clock skew).
    authored = dt.datetime.fromisoformat(task["authoredOn"])
    assert dt.datetime.fromisoformat(start) >= authored - MAX_CLOCK_SKEW

    closed = kemensos.act(rid, "close", {"outcome": "completed", "notes": "Reintegrated."})
    assert closed.status_code == 200, closed.text
    bundle = fhir(lpsk, rid)
    task, request = task_of(bundle), resources(bundle)["ServiceRequest"]
    assert task["status"] == "completed" and business(task) == {"closed", "completed"}
    assert task["executionPeriod"]["end"]
    assert task["note"][0]["text"] == "Reintegrated."
    assert request["status"] == "completed"
    assert task["status"] in TASK_STATUSES and request["status"] in REQUEST_STATUSES


@pytest.mark.parametrize(
    ("by", "close", "task_status", "request_status"),
    [
        ("receiver", {"outcome": "declined", "reason": "CAPACITY_FULL"}, "rejected", "revoked"),
        ("sender", {"outcome": "withdrawn"}, "cancelled", "revoked"),
        ("receiver", {"outcome": "unreachable"}, "failed", "revoked"),
        ("receiver", {"outcome": "deceased"}, "cancelled", "revoked"),
    ],
)
def test_closure_outcomes_map_to_task_status(
    lpsk: Api, kemensos: Api, by: str, close: dict[str, Any], task_status: str,
    request_status: str,
) -> None:
    rid = lpsk.create_ok()["id"]
    actor = kemensos if by == "receiver" else lpsk
    response = actor.act(rid, "close", close)
    assert response.status_code == 200, response.text
    bundle = fhir(kemensos, rid)
    found = resources(bundle)
    task = found["Task"]
    assert task["status"] == task_status
    assert business(task) == {"closed", close["outcome"]}
    assert found["ServiceRequest"]["status"] == request_status
    if "reason" in close:
        assert task["statusReason"]["coding"][0]["code"] == close["reason"]
    assert found["Patient"].get("deceasedBoolean", False) is (close["outcome"] == "deceased")


def _assert_masked(bundle: dict[str, Any], text: str, secrets: list[str]) -> None:
    patient = resources(bundle)["Patient"]
    for field in ("identifier", "name", "birthDate", "telecom"):
        assert field not in patient, field
    assert all("text" not in a for a in patient.get("address", []))
    assert "MASKED" in {s["code"] for s in patient["meta"]["security"]}
    for secret in secrets:
        assert secret not in text


def test_protected_identity_is_left_out_for_both_parties(lpsk: Api, kemensos: Api) -> None:
    body = referral_body(protected_identity=True)
    created = lpsk.create(body)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    subject = body["subject"]
    secrets = [subject["nik"], subject["full_name"], subject["phone"], subject["address"]]
    for api in (lpsk, kemensos):
        response = api.http.get(f"/v1/referrals/{rid}/fhir", headers=api.headers())
        bundle = fhir(api, rid)
        _assert_masked(bundle, response.text, secrets)
        patient = resources(bundle)["Patient"]
        assert "R" in {s["code"] for s in patient["meta"]["security"]}
        # What stays (not identifying) is what GET /v1/referrals/{id} shows too.
        shown = api.get(rid).json()["subject"]
        assert shown["nik"] is None and shown["full_name"] is None
        assert patient["gender"] == shown["sex"] == "female"
        assert patient["address"][0]["extension"][0]["valueCode"] == shown["region_code"]


def test_receiver_sees_no_personal_data_after_consent_withdrawal(
    lpsk: Api, kemensos: Api
) -> None:
    body = referral_body()
    created = lpsk.create(body)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    withdrawn = lpsk.act(
        rid, "consent-withdrawal", {"withdrawn_at": "2026-01-20T10:00:00+07:00"}
    )
    assert withdrawn.status_code == 200, withdrawn.text

    response = kemensos.http.get(f"/v1/referrals/{rid}/fhir", headers=kemensos.headers())
    bundle = fhir(kemensos, rid)
    subject = body["subject"]
    _assert_masked(
        bundle, response.text,
        [subject["nik"], subject["full_name"], subject["phone"], body["summary"]],
    )
    found = resources(bundle)
    assert "note" not in found["ServiceRequest"]
    assert found["Task"]["status"] == "cancelled"
    assert business(found["Task"]) == {"closed", "consent_withdrawn"}

    # The sender keeps seeing what it sent.
    patient = resources(fhir(lpsk, rid))["Patient"]
    assert patient["identifier"][0]["value"] == subject["nik"]


def test_only_the_parties_see_the_bundle(lpsk: Api, kemensos: Api, kemenham: Api) -> None:
    rid = lpsk.create_ok()["id"]
    path = f"/v1/referrals/{rid}/fhir"
    assert_problem(kemenham.http.get(path, headers=kemenham.headers()), 404)
    assert_problem(lpsk.http.get(path), 401)
    no_read = kemensos.with_scope("referrals:assess")
    assert_problem(no_read.http.get(path, headers=no_read.headers()), 403)
    unknown = "/v1/referrals/00000000-0000-4000-8000-000000000000/fhir"
    assert_problem(lpsk.http.get(unknown, headers=lpsk.headers()), 404)
    assert_problem(lpsk.http.get("/v1/referrals/not-a-uuid/fhir", headers=lpsk.headers()), 422)
