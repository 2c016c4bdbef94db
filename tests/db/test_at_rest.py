"""Personal data at rest: canary values must never be found in the database's own bytes.

Referrals are written with recognisable canaries in every personal field, then the raw
storage is searched: the SQLite file and its write-ahead log (no checkpoint forced), or a
`pg_dump` of the PostgreSQL database. The NIK stays findable through the keyed index, and
every sealed value names the key it was sealed with.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from service.audit.models import AuditEntry
from service.context import ServiceContext
from service.referrals.models import (
    DeliveredService,
    IdempotencyRecord,
    Referral,
    ReferralNote,
)
from tests.support import Api, assess_body, referral_body, service_body
from tests.support.pdp import pg_dump, sqlite_bytes

SEALED = re.compile(r"^(?P<kid>[A-Za-z0-9_-]+)\.(?P<body>[A-Za-z0-9_-]+)$")


@dataclass
class Written:
    """What the scenario wrote: the canaries, the NIKs, and the referrals."""

    canaries: list[str]
    niks: list[str]
    referral_ids: list[str]
    references: list[str]


def _canary(kind: str) -> str:
    return f"CANARY{kind}_{secrets.token_hex(6)}"


def _phone() -> str:
    return f"+62 81{secrets.randbelow(10**9):09d}"


def _post(api: Api, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = api.http.post(path, json=body, headers=api.headers(**headers))
    assert response.status_code in (200, 201), response.text
    return response.json()  # type: ignore[no-any-return]


def _act(api: Api, rid: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.act(rid, action, body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _subject(name: str, address: str, phone: str) -> dict[str, Any]:
    subject = referral_body()["subject"]
    return {**subject, "full_name": name, "address": address, "phone": phone}


@pytest.fixture
def written(lpsk: Api, kemensos: Api) -> Written:
    """Two referrals through their whole lives, every personal field a canary."""
    canaries: list[str] = []
    niks: list[str] = []
    ids: list[str] = []

    def c(kind: str) -> str:
        canaries.append(_canary(kind))
        return canaries[-1]

    # 1. An ordinary referral, created with an Idempotency-Key (its response is stored),
    #    assessed, served twice, noted by both sides, completed.
    phone = _phone()
    body = referral_body(
        "KEMENSOS",
        summary=c("SUMMARY"),
        external_ref="EXT-1",
    )
    body["subject"] = _subject(c("NAME"), c("ADDR"), phone)
    canaries.append(phone)
    niks.append(body["subject"]["nik"])
    created = _post(lpsk, "/v1/referrals", body, **{"Idempotency-Key": secrets.token_hex(8)})
    rid = created["id"]
    ids.append(rid)
    _act(kemensos, rid, "assess", assess_body(notes=c("ASSESSNOTES")))
    _act(kemensos, rid, "serve", service_body(notes=c("SERVICENOTES")))
    _act(kemensos, rid, "services", service_body(notes=c("SERVICENOTES")))
    _post(lpsk, f"/v1/referrals/{rid}/notes", {"text": c("NOTE")})
    _post(kemensos, f"/v1/referrals/{rid}/notes", {"text": c("NOTE")})
    _act(kemensos, rid, "close", {"outcome": "completed", "notes": c("CLOSURENOTES")})

    # 2. A protected person: revealed (the reason is kept), then referred onward, which
    #    copies the identity into a child referral.
    phone = _phone()
    body = referral_body("KEMENSOS", summary=c("SUMMARY"), protected_identity=True)
    protected_name = c("NAME")
    body["subject"] = _subject(protected_name, c("ADDR"), phone)
    canaries.append(phone)
    niks.append(body["subject"]["nik"])
    rid = _post(lpsk, "/v1/referrals", body)["id"]
    ids.append(rid)
    revealed = kemensos.http.get(
        f"/v1/referrals/{rid}",
        params={"reveal": "identity"},
        headers=kemensos.headers(**{"X-Reveal-Reason": c("REASON")}),
    )
    assert revealed.status_code == 200, revealed.text
    assert revealed.json()["subject"]["full_name"] == protected_name
    _act(kemensos, rid, "assess", assess_body(notes=c("ASSESSNOTES")))
    closed = _act(
        kemensos, rid, "close",
        {"outcome": "referred_onward", "onward_agency": "KEMENHAM", "notes": c("CLOSURENOTES")},
    )
    ids.append(closed["closure"]["onward_referral_id"])

    references = [kemensos.get(referral_id).json()["reference"] for referral_id in ids]
    return Written(canaries, niks, ids, references)


def _needles(written: Written) -> dict[str, bytes]:
    needles = {c: c.encode() for c in written.canaries}
    for nik in written.niks:
        needles[f"NIK {nik}"] = nik.encode()
    return needles


def _sqlite_bytes(url: str) -> bytes:
    path = Path(make_url(url).database or "")
    wal = path.with_name(path.name + "-wal")
    assert wal.exists(), "the database runs in WAL mode, so recent writes are in the -wal file"
    # Read by another process: opening the file in this one would drop the POSIX locks of
    # this process's open connections, and a server process sharing the file could then
    # take itself for the last user and remove the write-ahead log under them.
    return sqlite_bytes(url)


def test_no_personal_data_in_the_stored_bytes(
    written: Written, ctx: ServiceContext, backend: str
) -> None:
    url = ctx.settings.database_url
    raw = _sqlite_bytes(url) if backend == "sqlite" else pg_dump(url)
    # The control: the scan sees this scenario's rows (references are stored in clear).
    for reference in written.references:
        assert reference.encode() in raw, f"{reference} not found: the scan missed the data"
    found = [label for label, needle in _needles(written).items() if needle in raw]
    assert not found, f"personal data stored in clear: {found}"


def test_the_nik_filter_finds_the_person_through_the_keyed_index(
    written: Written, lpsk: Api, kemenham: Api, ctx: ServiceContext
) -> None:
    nik = written.niks[0]
    page = lpsk.list(nik=nik)
    assert page.status_code == 200, page.text
    assert [item["id"] for item in page.json()["items"]] == [written.referral_ids[0]]
    assert page.json()["items"][0]["subject"]["nik"] == nik
    # Isolation still applies: a third agency finds nothing with the same NIK.
    assert kemenham.list(nik=nik).json()["items"] == []

    with ctx.db.reader() as session:
        row = session.get(Referral, uuid.UUID(written.referral_ids[0]))
        assert row is not None
        assert row.nik_hash == ctx.keyring.nik_index(nik)
        assert re.fullmatch(r"[0-9a-f]{64}", row.nik_hash)


def _assert_sealed(ctx: ServiceContext, value: str | None, context: str | None = None) -> str:
    assert value, "a sealed value is stored"
    match = SEALED.match(value)
    assert match, f"not '<key id>.<base64>': {value[:40]}..."
    assert match["kid"] == ctx.keyring.active
    assert match["kid"] in ctx.keyring.keys
    raw = base64.urlsafe_b64decode(match["body"] + "=" * (-len(match["body"]) % 4))
    assert len(raw) >= 12 + 16, "nonce and GCM tag are carried"
    return ctx.keyring.open(value, context) if context else ""


def test_sealed_values_carry_their_key_id(written: Written, ctx: ServiceContext) -> None:
    rid, protected_id, child_id = (uuid.UUID(i) for i in written.referral_ids)
    with ctx.db.reader() as session:
        first = session.get(Referral, rid)
        protected = session.get(Referral, protected_id)
        child = session.get(Referral, child_id)
        assert first and protected and child
        subject = json.loads(_assert_sealed(ctx, first.subject_sealed, f"referral:{rid}:subject"))
        assert subject["full_name"].startswith("CANARYNAME_")
        assert subject["nik"] == written.niks[0]
        summary = _assert_sealed(ctx, first.summary_sealed, f"referral:{rid}:summary")
        assert summary.startswith("CANARYSUMMARY_")
        assert _assert_sealed(
            ctx, first.assessment_notes_sealed, f"referral:{rid}:assessment_notes"
        ).startswith("CANARYASSESSNOTES_")
        assert _assert_sealed(
            ctx, first.closure_notes_sealed, f"referral:{rid}:closure_notes"
        ).startswith("CANARYCLOSURENOTES_")
        for row in (protected, child):
            _assert_sealed(ctx, row.subject_sealed)
            _assert_sealed(ctx, row.summary_sealed)
        child_subject = json.loads(
            _assert_sealed(ctx, child.subject_sealed, f"referral:{child_id}:subject")
        )
        assert child_subject["nik"] == written.niks[1]

        services = session.execute(
            select(DeliveredService).where(DeliveredService.referral_id == rid)
        ).scalars().all()
        assert len(services) == 2
        for service in services:
            assert _assert_sealed(
                ctx, service.notes_sealed, f"referral:{rid}:service:{service.id}"
            ).startswith("CANARYSERVICENOTES_")
        notes = session.execute(
            select(ReferralNote).where(ReferralNote.referral_id == rid)
        ).scalars().all()
        assert len(notes) == 2
        for note in notes:
            assert _assert_sealed(
                ctx, note.text_sealed, f"referral:{rid}:note:{note.id}"
            ).startswith("CANARYNOTE_")
        record = session.execute(
            select(IdempotencyRecord).where(IdempotencyRecord.referral_id == rid)
        ).scalar_one()
        _assert_sealed(ctx, record.response_sealed)
        reveal = session.execute(
            select(AuditEntry).where(
                AuditEntry.referral_id == protected_id,
                AuditEntry.action == "referral.reveal_identity",
            )
        ).scalar_one()
        assert _assert_sealed(
            ctx, reveal.detail_sealed, f"audit:reveal:{protected_id}"
        ).startswith("CANARYREASON_")
