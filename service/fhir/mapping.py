"""A referral as a FHIR R4 Bundle: Task, ServiceRequest, Patient and the two Organizations.

Pure functions over the `ReferralRead` that `view_for` produced for the caller, so a field that
`view_for` withheld (a protected identity, a receiver after consent withdrawal, erased data)
cannot reach the bundle: sealing is decided in one place only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from service.referrals.schemas import ReferralRead
from service.referrals.workflow import ASSESSED, CLOSED, REFERRED, SERVED
from service.times import wire

# The identifier system SATUSEHAT (Kemenkes) uses for the NIK, so a receiving health system
# matches the person against its own records.
NIK_SYSTEM = "https://fhir.kemkes.go.id/id/nik"
# Rujukan's own code systems and identifiers, named as URNs: no resolvable host is implied.
REFERENCE_SYSTEM = "urn:rujukan:referral-reference"
AGENCY_SYSTEM = "urn:rujukan:agency"
STATUS_SYSTEM = "urn:rujukan:referral-status"
OUTCOME_SYSTEM = "urn:rujukan:closure-outcome"
DECLINE_REASON_SYSTEM = "urn:rujukan:decline-reason"
GROUP_SYSTEM = "urn:rujukan:group"
KEMENHAM_GROUP_SYSTEM = "urn:rujukan:kemenham-group"
CASE_TYPE_SYSTEM = "urn:rujukan:case-type"
SERVICE_TYPE_SYSTEM = "urn:rujukan:service-type"
REGION_CODE_EXTENSION = "urn:rujukan:fhir:region-code"
SNOMED = "http://snomed.info/sct"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

# Task.status by lifecycle state, and for a closed referral by its closure outcome.
TASK_STATUS_BY_STATE: dict[str, str] = {
    REFERRED: "requested",
    ASSESSED: "accepted",
    SERVED: "in-progress",
}
TASK_STATUS_BY_OUTCOME = {
    "completed": "completed",
    # The receiver finished its part by handing the person to the next agency.
    "referred_onward": "completed",
    "declined": "rejected",
    "withdrawn": "cancelled",
    "consent_withdrawn": "cancelled",
    "deceased": "cancelled",
    # Attempted, but the person could not be reached.
    "unreachable": "failed",
}
REQUEST_STATUS_BY_OUTCOME = {"completed": "completed", "referred_onward": "completed"}
PRIORITY_BY_URGENCY = {"emergency": "stat", "urgent": "urgent", "routine": "routine"}

_NAMESPACE = uuid.UUID("6f1c7e0a-3a52-4d55-9a57-2f0d6e1b8c41")


def _resource_id(referral_id: uuid.UUID, kind: str) -> str:
    # Stable across reads, so a consumer can update the resources it stored before.
    return str(uuid.uuid5(_NAMESPACE, f"{referral_id}:{kind}"))


def _instant(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return wire(value)


def _codings(system: str, codes: list[str]) -> list[dict[str, Any]]:
    return [{"coding": [{"system": system, "code": code}], "text": code} for code in codes]


def task_status(referral: ReferralRead) -> str:
    """FHIR Task.status for the referral's state and closure outcome."""
    if referral.status == CLOSED and referral.closure is not None:
        return TASK_STATUS_BY_OUTCOME.get(referral.closure.outcome, "cancelled")
    return TASK_STATUS_BY_STATE.get(referral.status, "requested")


def _request_status(referral: ReferralRead) -> str:
    if referral.status != CLOSED:
        return "active"
    outcome = referral.closure.outcome if referral.closure else ""
    return REQUEST_STATUS_BY_OUTCOME.get(outcome, "revoked")


def _business_status(referral: ReferralRead) -> dict[str, Any]:
    codings = [{"system": STATUS_SYSTEM, "code": referral.status}]
    text: str = referral.status
    if referral.closure is not None:
        codings.append({"system": OUTCOME_SYSTEM, "code": referral.closure.outcome})
        text = f"closed: {referral.closure.outcome}"
    return {"coding": codings, "text": text}


def organization_id(agency: str) -> str:
    """The Organization id of an agency: the same in every bundle."""
    return str(uuid.uuid5(_NAMESPACE, f"agency:{agency}"))


def _organization(code: str, names: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": organization_id(code),
        "identifier": [{"system": AGENCY_SYSTEM, "value": code}],
        "active": True,
        "name": names.get(code, code),
    }


def _patient(referral: ReferralRead, patient_id: str) -> dict[str, Any]:
    subject = referral.subject
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id}
    security = []
    if referral.protected_identity:
        security.append({"system": CONFIDENTIALITY, "code": "R", "display": "restricted"})
    if subject.sealed:
        security.append({"system": OBSERVATION_VALUE, "code": "MASKED", "display": "masked"})
    if security:
        patient["meta"] = {"security": security}
    if subject.nik:
        patient["identifier"] = [{"use": "official", "system": NIK_SYSTEM, "value": subject.nik}]
    if subject.full_name:
        patient["name"] = [{"use": "official", "text": subject.full_name}]
    if subject.phone:
        patient["telecom"] = [{"system": "phone", "value": subject.phone}]
    if subject.sex in ("male", "female"):
        patient["gender"] = subject.sex
    if subject.birth_date:
        patient["birthDate"] = subject.birth_date.isoformat()
    if referral.closure is not None and referral.closure.outcome == "deceased":
        patient["deceasedBoolean"] = True
    address: dict[str, Any] = {}
    if subject.address:
        address["text"] = subject.address
    if subject.region_code:
        address["extension"] = [{"url": REGION_CODE_EXTENSION, "valueCode": subject.region_code}]
    if address:
        patient["address"] = [address]
    return patient


def _service_request(
    referral: ReferralRead, request_id: str, refs: dict[str, dict[str, str]]
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": request_id,
        "identifier": [{"system": REFERENCE_SYSTEM, "value": referral.reference}],
        "status": _request_status(referral),
        "intent": "order",
        "category": _codings(GROUP_SYSTEM, referral.groups)
        + _codings(KEMENHAM_GROUP_SYSTEM, referral.kemenham_groups),
        "priority": PRIORITY_BY_URGENCY[referral.urgency],
        "code": {
            "coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}],
            "text": "Referral",
        },
        "subject": refs["patient"],
        "authoredOn": _instant(referral.created_at),
        "requester": refs["requester"],
        "performer": [refs["owner"]],
    }
    if referral.assessment is not None:
        request["orderDetail"] = _codings(SERVICE_TYPE_SYSTEM, referral.assessment.needs)
    if referral.case_types:
        request["reasonCode"] = _codings(CASE_TYPE_SYSTEM, referral.case_types)
    if referral.summary:
        request["note"] = [{"text": referral.summary}]
    return request


def _task(referral: ReferralRead, refs: dict[str, dict[str, str]]) -> dict[str, Any]:
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(referral.id),
        "identifier": [{"system": REFERENCE_SYSTEM, "value": referral.reference}],
        "status": task_status(referral),
        "businessStatus": _business_status(referral),
        "intent": "order",
        "priority": PRIORITY_BY_URGENCY[referral.urgency],
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}]
        },
        "focus": refs["request"],
        "for": refs["patient"],
        "authoredOn": _instant(referral.created_at),
        "lastModified": _instant(referral.updated_at),
        "requester": refs["requester"],
        "owner": refs["owner"],
    }
    if referral.due_at is not None:
        task["restriction"] = {"period": {"end": _instant(referral.due_at)}}
    started = [s.started_at for s in referral.services]
    if started:
        period = {"start": _instant(min(started))}
        if referral.closure is not None:
            period["end"] = _instant(referral.closure.closed_at)
        task["executionPeriod"] = period
    closure = referral.closure
    if closure is not None and closure.reason:
        task["statusReason"] = {
            "coding": [{"system": DECLINE_REASON_SYSTEM, "code": closure.reason}],
            "text": closure.reason,
        }
    if closure is not None and closure.notes:
        task["note"] = [{"text": closure.notes, "time": _instant(closure.closed_at)}]
    return task


def referral_bundle(referral: ReferralRead, agency_names: dict[str, str]) -> dict[str, Any]:
    """The FHIR R4 Bundle (type collection) of one referral as the caller sees it."""
    request_id = _resource_id(referral.id, "service-request")
    patient_id = _resource_id(referral.id, "patient")
    urls = {
        "task": f"urn:uuid:{referral.id}",
        "request": f"urn:uuid:{request_id}",
        "patient": f"urn:uuid:{patient_id}",
    }
    organizations = {
        code: _organization(code, agency_names)
        for code in dict.fromkeys((referral.from_agency, referral.to_agency))
    }
    org_urls = {code: f"urn:uuid:{organization_id(code)}" for code in organizations}
    refs = {
        "request": {"reference": urls["request"], "type": "ServiceRequest"},
        "patient": {"reference": urls["patient"], "type": "Patient"},
        "requester": {
            "reference": org_urls[referral.from_agency],
            "type": "Organization",
            "display": organizations[referral.from_agency]["name"],
        },
        "owner": {
            "reference": org_urls[referral.to_agency],
            "type": "Organization",
            "display": organizations[referral.to_agency]["name"],
        },
    }
    entries = [
        (urls["task"], _task(referral, refs)),
        (urls["request"], _service_request(referral, request_id, refs)),
        (urls["patient"], _patient(referral, patient_id)),
    ] + [(org_urls[code], org) for code, org in organizations.items()]
    return {
        "resourceType": "Bundle",
        "id": _resource_id(referral.id, f"bundle:{referral.version}"),
        "meta": {"lastUpdated": _instant(referral.updated_at), "versionId": str(referral.version)},
        "identifier": {"system": REFERENCE_SYSTEM, "value": referral.reference},
        "type": "collection",
        "timestamp": _instant(referral.updated_at),
        "entry": [{"fullUrl": url, "resource": resource} for url, resource in entries],
    }
