"""`rujukan keys rotate-data`: personal data re-encrypted under a new key, with no downtime.

A server (its ServiceContext built before the rotation, so it starts with only the old key)
keeps reading and writing while the command runs in a subprocess; afterwards every mutable
sealed value names the new key and still reads the same through the API.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update

import service.context
from service.audit import trail
from service.audit.models import AuditEntry
from service.context import ServiceContext
from service.crypto import DataKeyring, activate_data_key, add_data_key
from service.datakeys import (
    SEALED_COLUMNS,
    RotationError,
    reencrypt_pass,
    remaining_under_old_keys,
    rotate_data_key,
)
from service.db import upgrade_to_head
from service.referrals.models import Referral
from tests.support import (
    ALL_SCOPES,
    Api,
    Party,
    assess_body,
    make_nik,
    referral_body,
    service_body,
    writer_session,
)
from tests.support.cli import run as run_rujukan
from tests.support.databases import make_settings

RUJUKAN = Path(sys.executable).parent / "rujukan"
SEALED = re.compile(r"^(?P<kid>[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+$")
SERVER_RELOAD_SECONDS = 0.2
CLI_WAIT_SECONDS = 0.8


@dataclass
class Deployment:
    """A database of its own, its key files, and one running server on them."""

    url: str
    key_dir: Path
    ctx: ServiceContext
    http: TestClient
    lpsk: Api
    kemensos: Api
    contexts: list[ServiceContext] = field(default_factory=list)

    @property
    def key_file(self) -> Path:
        return self.key_dir / "data-keys.json"

    def key_doc(self) -> dict[str, Any]:
        return json.loads(self.key_file.read_text(encoding="utf-8"))  # type: ignore[no-any-return]

    def cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUJUKAN_")}
        env.update(
            RUJUKAN_DATABASE_URL=self.url,
            RUJUKAN_SIGNING_KEY_FILE=str(self.key_dir / "signing-keys.pem"),
            RUJUKAN_DATA_KEY_FILE=str(self.key_file),
        )
        return env

    def fresh_server(self) -> TestClient:
        """Another server process, started now (after the rotation)."""
        ctx = ServiceContext.build(make_settings(self.url, self.key_dir))
        self.contexts.append(ctx)
        return TestClient(create_app_for(ctx), raise_server_exceptions=False)


def create_app_for(ctx: ServiceContext):  # type: ignore[no-untyped-def]
    from service.app import create_app

    return create_app(ctx=ctx)


def adult_body(to_agency: str = "KEMENSOS", **overrides: Any) -> dict[str, Any]:
    """A create body for an adult, who consents for themselves."""
    body = referral_body(to_agency, **overrides)
    birth = dt.date(1970, 1, 1) + dt.timedelta(days=secrets.randbelow(9000))
    body["subject"] = {**body["subject"], "birth_date": birth.isoformat(),
                       "nik": make_nik(birth, "female")}
    return body


def child_body(to_agency: str = "KEMENSOS") -> dict[str, Any]:
    """A create body for a child: a guardian consents (and is stored sealed)."""
    body = referral_body(to_agency)
    birth = dt.date(2016, 3, 3)
    body["subject"] = {**body["subject"], "birth_date": birth.isoformat(),
                       "nik": make_nik(birth, "female")}
    body["consent"] = {**body["consent"], "given_by": "guardian",
                       "guardian": {"full_name": "Ibu Sari", "relationship": "parent"}}
    return body


@pytest.fixture
def deployment(
    backend: str, new_database_url, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> Iterator[Deployment]:
    # Servers re-read key files quickly here, so the command's waits can be short too.
    monkeypatch.setattr(service.context, "KEY_RELOAD_SECONDS", SERVER_RELOAD_SECONDS)
    url = new_database_url(backend)
    upgrade_to_head(url)
    key_dir = tmp_path / "keys"
    ctx = ServiceContext.build(make_settings(url, key_dir))
    try:
        with TestClient(create_app_for(ctx), raise_server_exceptions=False) as http:
            lpsk = Api(http, Party.register(ctx, http, "LPSK", ALL_SCOPES))
            kemensos = Api(http, Party.register(ctx, http, "KEMENSOS", ALL_SCOPES))
            deployment = Deployment(url, key_dir, ctx, http, lpsk, kemensos)
            yield deployment
            for other in deployment.contexts:
                other.db.dispose()
    finally:
        ctx.db.dispose()


def _ok(response: Any, *codes: int) -> dict[str, Any]:
    assert response.status_code in (codes or (200,)), response.text
    return response.json()  # type: ignore[no-any-return]


@dataclass
class Before:
    """What the API answered before the rotation, to compare with after it."""

    referrals: dict[str, dict[str, Any]]
    notes: dict[str, list[dict[str, Any]]]
    idempotent: tuple[str, dict[str, Any], dict[str, Any]]
    nik: str
    reveal_reason: str


def _write_everything(d: Deployment) -> Before:
    """Every kind of sealed value: subject, summary, assessment, service, note, closure,
    an idempotent create's stored response, and a reveal reason in the audit trail."""
    lpsk, kemensos = d.lpsk, d.kemensos
    key = secrets.token_hex(8)
    body = adult_body("KEMENSOS", summary="Rotasi: ringkasan pertama")
    first = _ok(lpsk.create(body, **{"Idempotency-Key": key}), 201)
    rid = first["id"]
    _ok(kemensos.act(rid, "assess", assess_body(notes="Catatan asesmen")))
    _ok(kemensos.act(rid, "serve", service_body(notes="Catatan layanan")))
    _ok(lpsk.http.post(f"/v1/referrals/{rid}/notes", json={"text": "Catatan LPSK"},
                       headers=lpsk.headers()), 201, 200)
    _ok(kemensos.act(rid, "close", {"outcome": "completed", "notes": "Catatan penutupan"}))

    protected = _ok(lpsk.create(adult_body("KEMENSOS", protected_identity=True)), 201)
    reason = f"court order {secrets.token_hex(4)}"
    _ok(kemensos.http.get(
        f"/v1/referrals/{protected['id']}", params={"reveal": "identity"},
        headers=kemensos.headers(**{"X-Reveal-Reason": reason}),
    ))
    open_one = _ok(lpsk.create(adult_body("KEMENSOS")), 201)
    child = _ok(lpsk.create(child_body("KEMENSOS")), 201)

    ids = [rid, protected["id"], open_one["id"], child["id"]]
    referrals = {i: _ok(lpsk.get(i)) for i in ids}
    notes = {i: _ok(lpsk.http.get(f"/v1/referrals/{i}/notes", headers=lpsk.headers()))
             for i in ids}
    return Before(referrals, notes, (key, body, first), body["subject"]["nik"], reason)


def _stored_kids(d: Deployment) -> dict[str, set[str]]:
    """The key ids named by every stored value of every mutable sealed column."""
    kids: dict[str, set[str]] = {}
    with d.ctx.db.reader() as session:
        for spec in SEALED_COLUMNS:
            column = spec.table.c[spec.column]
            values = session.execute(select(column).where(column.is_not(None))).scalars()
            for value in values:
                match = SEALED.match(value)
                assert match, f"{spec.name} holds a value that is not sealed"
                kids.setdefault(spec.name, set()).add(match["kid"])
    return kids


@dataclass
class Traffic:
    """Requests made while the command ran, and what the key file said at each."""

    failures: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    actives_seen: list[str] = field(default_factory=list)

    def step(self, d: Deployment, before: Before, n: int) -> None:
        self.actives_seen.append(d.key_doc()["active"])
        calls = [
            d.lpsk.create(adult_body("KEMENSOS", summary=f"created during rotation {n}")),
            d.lpsk.http.post(
                f"/v1/referrals/{next(iter(before.referrals))}/notes",
                json={"text": f"note during rotation {n}"}, headers=d.lpsk.headers(),
            ),
            *(d.kemensos.get(i) for i in [*before.referrals, *self.created[-3:]]),
        ]
        for call in calls:
            if call.status_code not in (200, 201):
                self.failures.append(f"{call.request.method} {call.request.url.path}: "
                                     f"{call.status_code} {call.text[:200]}")
        if calls[0].status_code == 201:
            self.created.append(calls[0].json()["id"])


def test_rotate_data_reencrypts_while_a_running_server_reads_and_writes(
    deployment: Deployment,
) -> None:
    d = deployment
    before = _write_everything(d)
    old_kid = d.key_doc()["active"]
    assert all(kids == {old_kid} for kids in _stored_kids(d).values())
    with d.ctx.db.reader() as session:
        audit_before = session.execute(
            select(AuditEntry.detail_sealed).where(AuditEntry.detail_sealed.is_not(None))  # type: ignore[union-attr]
        ).scalars().all()
    assert len(audit_before) == 1 and audit_before[0].startswith(old_kid + ".")

    # Small batches, so re-encryption is spread over many short transactions while
    # the server keeps working.
    process = subprocess.Popen(
        [str(RUJUKAN), "keys", "rotate-data", "--wait-seconds", str(CLI_WAIT_SECONDS),
         "--batch-size", "1"],
        env=d.cli_env(), cwd=d.key_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    traffic = Traffic()
    n = 0
    while process.poll() is None:
        traffic.step(d, before, n)
        n += 1
        time.sleep(0.02)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert not traffic.failures, traffic.failures
    # The server was busy before the new key became active and after.
    assert old_kid in traffic.actives_seen
    report = json.loads(stdout)
    new_kid = report["added"]
    assert new_kid in traffic.actives_seen
    assert report["previous"] == old_kid and report["active"] == new_kid
    traffic.step(d, before, n)  # and keeps working once it is over
    assert not traffic.failures, traffic.failures

    # The key file: the new key seals, the old one stays for the append-only audit values.
    doc = d.key_doc()
    assert doc["active"] == new_kid
    assert set(doc["keys"]) == {old_kid, new_kid}
    assert oct(d.key_file.stat().st_mode & 0o777) == oct(0o600)

    # Counts per table: at least everything written before (and whatever the server
    # sealed under the old key while the rotation ran).
    counts = report["reencrypted"]
    # subjects and summaries of 4, one assessment, one closure, one guardian's consent
    assert counts["referral"] >= 4 + 4 + 1 + 1 + 1
    assert counts["referral_service"] >= 1
    assert counts["referral_note"] >= 1
    assert counts["idempotency_record"] >= 1
    assert report["audit_values_by_key"] == {old_kid: 1}

    # Raw stored values now all name the new key; the audit value keeps the old one.
    stored = _stored_kids(d)
    assert all(kids == {new_kid} for kids in stored.values()), stored
    assert set(stored) == {
        "referral.subject_sealed", "referral.summary_sealed",
        "referral.assessment_notes_sealed", "referral.closure_notes_sealed",
        "referral.consent_sealed",
        "referral_service.notes_sealed", "referral_note.text_sealed",
        "idempotency_record.response_sealed",
    }
    assert remaining_under_old_keys(d.ctx.db, new_kid) == {s.name: 0 for s in SEALED_COLUMNS}

    # The data reads exactly as before, unchanged in version, on the server that ran
    # through the rotation and on one started after it.
    fresh = d.fresh_server()
    for http in (d.http, fresh):
        for referral_id, was in before.referrals.items():
            response = http.get(f"/v1/referrals/{referral_id}", headers=d.lpsk.headers())
            assert _ok(response) == was
            notes = _ok(http.get(f"/v1/referrals/{referral_id}/notes",
                                 headers=d.lpsk.headers()))
            assert notes[: len(before.notes[referral_id])] == before.notes[referral_id]
        key, body, first = before.idempotent
        replay = http.post("/v1/referrals", json=body,
                           headers=d.lpsk.headers(**{"Idempotency-Key": key}))
        assert _ok(replay, 201) == first
        # The NIK index key is not rotated: search by NIK still finds the person.
        page = _ok(http.get("/v1/referrals", params={"nik": before.nik},
                            headers=d.lpsk.headers()))
        assert [item["id"] for item in page["items"]] == [first["id"]]
    for referral_id in traffic.created:
        assert _ok(fresh.get(f"/v1/referrals/{referral_id}", headers=d.lpsk.headers()))

    # The rotation is in the audit trail, and the trail still verifies.
    with d.ctx.db.reader() as session:
        assert trail.verify_chain(session)[1] is None
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "keys.rotate_data")
        ).scalars().one()
    assert entry.detail["added"] == new_kid and entry.detail["previous"] == old_kid
    assert entry.detail["completed"] is True
    assert entry.detail["reencrypted"] == counts


def test_the_new_key_is_known_everywhere_before_it_seals_anything(
    deployment: Deployment,
) -> None:
    """Between the steps the command waits, and what the key file says at each wait."""
    d = deployment
    old_kid = d.key_doc()["active"]
    _ok(d.lpsk.create(adult_body()), 201)
    seen: list[tuple[float, str, set[str], str, set[str]]] = []

    def sleep(seconds: float) -> None:
        doc = d.key_doc()
        # Once the wait is over, the running server has re-read the file.
        time.sleep(SERVER_RELOAD_SECONDS + 0.05)
        server = d.ctx.keyring
        seen.append((seconds, doc["active"], set(doc["keys"]), server.active, set(server.keys)))

    report = rotate_data_key(d.ctx, wait_seconds=3.5, batch_size=10, sleep=sleep)
    new_kid = report.added
    both = {old_kid, new_kid}
    assert seen == [
        # 1. known everywhere, sealing nothing yet
        (3.5, old_kid, both, old_kid, both),
        # 2. then active, and only afterwards is anything re-encrypted
        (3.5, new_kid, both, new_kid, both),
    ]
    assert report.reencrypted["referral"] == 2


def test_a_concurrent_write_is_never_overwritten(deployment: Deployment) -> None:
    d = deployment
    ids = [_ok(d.lpsk.create(adult_body()), 201)["id"] for _ in range(3)]
    old_ring = d.ctx.keyring
    new_kid = add_data_key(d.key_file)
    activate_data_key(d.key_file, new_kid)
    new_ring = DataKeyring.load(d.key_file)
    raced_id = uuid.UUID(ids[1])
    raced_context = f"referral:{raced_id}:summary"
    # Written by a server that had not re-read the key file yet: still the old key.
    concurrent_value = old_ring.seal("changed while the rotation ran", raced_context)

    class RacingKeyring:
        """Lets another writer change one row between the rotation's read and its update."""

        active, keys = new_ring.active, new_ring.keys
        seal = staticmethod(new_ring.seal)
        raced = False

        def open(self, sealed: str, context: str) -> str:
            if context == raced_context and not RacingKeyring.raced:
                RacingKeyring.raced = True
                with writer_session(d.ctx.db) as session:
                    session.execute(
                        update(Referral)
                        .where(Referral.id == raced_id)  # type: ignore[arg-type]
                        .values(summary_sealed=concurrent_value)
                    )
                    session.commit()
            return new_ring.open(sealed, context)

    summary = next(s for s in SEALED_COLUMNS if s.name == "referral.summary_sealed")
    done, conflicts = reencrypt_pass(d.ctx.db, RacingKeyring(), summary, 2)  # type: ignore[arg-type]
    assert (done, conflicts) == (2, 1)
    with d.ctx.db.reader() as session:
        stored = session.get(Referral, raced_id)
        assert stored is not None
        assert stored.summary_sealed == concurrent_value  # not overwritten
    # The next pass picks the row up again, with its new content.
    assert reencrypt_pass(d.ctx.db, new_ring, summary, 2) == (1, 0)
    with d.ctx.db.reader() as session:
        stored = session.get(Referral, raced_id)
        assert stored is not None and stored.summary_sealed.startswith(new_kid + ".")
        assert new_ring.open(stored.summary_sealed, raced_context) == (
            "changed while the rotation ran"
        )


def test_a_value_no_key_can_open_stops_the_rotation_and_is_audited(
    deployment: Deployment,
) -> None:
    d = deployment
    rid = _ok(d.lpsk.create(adult_body()), 201)["id"]
    with writer_session(d.ctx.db) as session:
        session.execute(
            text("UPDATE referral SET summary_sealed = :v"), {"v": "dgone0000.AAAAAAAAAAAAAAAA"}
        )
        session.commit()
    with pytest.raises(RotationError, match=rf"referral.summary_sealed of row id={rid}"):
        rotate_data_key(d.ctx, wait_seconds=0, sleep=lambda _: None)
    with d.ctx.db.reader() as session:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "keys.rotate_data")
        ).scalars().one()
    assert entry.detail["completed"] is False
    assert "cannot be opened" in entry.detail["error"]


def test_the_command_fails_cleanly_and_can_be_run_again(deployment: Deployment) -> None:
    d = deployment
    good = _ok(d.lpsk.create(adult_body()), 201)["id"]
    bad = uuid.UUID(_ok(d.lpsk.create(adult_body()), 201)["id"])
    with writer_session(d.ctx.db) as session:
        saved = session.get(Referral, bad)
        assert saved is not None
        original = saved.summary_sealed
        session.execute(
            update(Referral).where(Referral.id == bad).values(  # type: ignore[arg-type]
                summary_sealed="dgone0000.AAAAAAAAAAAAAAAA"
            )
        )
        session.commit()

    def run() -> subprocess.CompletedProcess[str]:
        return run_rujukan(["keys", "rotate-data", "--wait-seconds", "0"], d.cli_env(), d.key_dir)

    failed = run()
    assert failed.returncode != 0
    assert "Traceback" not in failed.stdout + failed.stderr
    assert "safe to run it again" in failed.stderr and "referral.summary_sealed" in failed.stderr

    with writer_session(d.ctx.db) as session:
        session.execute(
            update(Referral).where(Referral.id == bad).values(summary_sealed=original)  # type: ignore[arg-type]
        )
        session.commit()
    report = json.loads(run().stdout)
    assert remaining_under_old_keys(d.ctx.db, report["active"]) == {
        s.name: 0 for s in SEALED_COLUMNS
    }
    fresh = d.fresh_server()
    for rid in (good, bad):
        assert _ok(fresh.get(f"/v1/referrals/{rid}", headers=d.lpsk.headers()))["summary"]
