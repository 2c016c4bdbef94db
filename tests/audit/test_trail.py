"""The audit trail: one hash-chained entry per write, naming who, what, which and which request.

Tampering needs the append-only trigger out of the way first (only an operator with DDL
rights can do that); `verify_chain` must then name the first entry that no longer fits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete, select, text, update
from sqlmodel import Session

from service.audit import trail
from service.audit.keys import SESSION_KEY, AuditKeyring
from service.audit.models import AuditEntry
from service.context import ServiceContext
from service.db import Database, upgrade_to_head
from tests.support import Api, assess_body, referral_body, service_body
from tests.support.operator import unprotected


def _rid() -> str:
    return f"test-{uuid.uuid4().hex}"


def _entries(ctx: ServiceContext, request_id: str) -> list[AuditEntry]:
    with ctx.db.reader() as session:
        stmt = select(AuditEntry).where(AuditEntry.request_id == request_id).order_by(AuditEntry.id)
        return list(session.execute(stmt).scalars())


class Audited:
    """Sends each write with its own X-Request-ID and fetches the entries it made."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def post(
        self, api: Api, path: str, body: dict[str, Any], etag: str | None = None
    ) -> tuple[Any, list[AuditEntry]]:
        request_id = _rid()
        headers = api.headers(**{"X-Request-ID": request_id})
        if etag:
            headers["If-Match"] = etag
        response = api.http.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
        assert response.headers["X-Request-ID"] == request_id
        return response, _entries(self.ctx, request_id)

    def act(
        self, api: Api, rid: str, action: str, body: dict[str, Any]
    ) -> tuple[Any, list[AuditEntry]]:
        etag = api.get(rid).headers["ETag"]
        return self.post(api, f"/v1/referrals/{rid}/{action}", body, etag)


def _assert_entry(
    entry: AuditEntry, api: Api, action: str, referral_id: str
) -> None:
    assert entry.action == action
    assert entry.agency == api.agency
    assert entry.client_id == api.party.client_id
    assert entry.referral_id == uuid.UUID(referral_id)
    assert entry.occurred_at is not None and entry.occurred_at.tzinfo is not None
    keys = api.http.app.state.ctx.audit_keys  # type: ignore[attr-defined]
    assert entry.key_id == keys.active
    assert entry.hash == trail.entry_hash(entry, keys)


def _assert_chain_ok(ctx: ServiceContext) -> int:
    with ctx.db.reader() as session:
        checked, bad, reason = trail.verify_chain(session)
    assert bad is None, f"audit entry {bad}: {reason}"
    return checked


def test_every_write_is_audited_with_its_request_id(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    audited = Audited(ctx)
    before = _assert_chain_ok(ctx)

    response, entries = audited.post(lpsk, "/v1/referrals", referral_body("KEMENSOS"))
    rid = response.json()["id"]
    assert len(entries) == 1
    _assert_entry(entries[0], lpsk, "referral.create", rid)
    assert entries[0].detail.get("reference") == response.json()["reference"]

    _, entries = audited.act(kemensos, rid, "assess", assess_body())
    assert len(entries) == 1
    _assert_entry(entries[0], kemensos, "referral.assess", rid)

    _, entries = audited.act(kemensos, rid, "serve", service_body())
    assert len(entries) == 1
    _assert_entry(entries[0], kemensos, "referral.serve", rid)

    _, entries = audited.act(kemensos, rid, "services", service_body())
    assert len(entries) == 1
    _assert_entry(entries[0], kemensos, "referral.record_service", rid)

    _, entries = audited.post(lpsk, f"/v1/referrals/{rid}/notes", {"text": "Called the family."})
    assert len(entries) == 1
    _assert_entry(entries[0], lpsk, "referral.add_note", rid)

    _, entries = audited.post(kemensos, f"/v1/referrals/{rid}/notes", {"text": "Visited."})
    assert len(entries) == 1
    _assert_entry(entries[0], kemensos, "referral.add_note", rid)

    _, entries = audited.act(kemensos, rid, "close", {"outcome": "completed"})
    assert len(entries) == 1
    _assert_entry(entries[0], kemensos, "referral.close.completed", rid)
    assert entries[0].detail.get("to_status") == "closed"

    # Seven writes (create, assess, serve, services, two notes, close): seven new entries.
    assert _assert_chain_ok(ctx) == before + 7


def test_reveal_of_a_protected_identity_is_audited(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    rid = lpsk.create_ok("KEMENSOS", protected_identity=True)["id"]
    request_id = _rid()
    response = kemensos.http.get(
        f"/v1/referrals/{rid}",
        params={"reveal": "identity"},
        headers=kemensos.headers(
            **{"X-Request-ID": request_id, "X-Reveal-Reason": "Placement needs the name"}
        ),
    )
    assert response.status_code == 200, response.text
    assert response.json()["subject"]["full_name"] == "Dewi Lestari"
    entries = _entries(ctx, request_id)
    assert len(entries) == 1
    _assert_entry(entries[0], kemensos, "referral.reveal_identity", rid)
    assert entries[0].detail_sealed, "the reason is kept, sealed"
    assert "Placement" not in (entries[0].detail_sealed or "")
    _assert_chain_ok(ctx)


def test_other_closes_and_onward_referral_are_audited(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    audited = Audited(ctx)

    withdrawn = lpsk.create_ok("KEMENSOS")["id"]
    _, entries = audited.act(lpsk, withdrawn, "close", {"outcome": "withdrawn"})
    assert len(entries) == 1
    _assert_entry(entries[0], lpsk, "referral.close.withdrawn", withdrawn)

    onward = lpsk.create_ok("KEMENSOS")["id"]
    audited.act(kemensos, onward, "assess", assess_body())
    response, entries = audited.act(
        kemensos, onward, "close", {"outcome": "referred_onward", "onward_agency": "KEMENHAM"}
    )
    child = response.json()["closure"]["onward_referral_id"]
    # One request, two audited facts: the child's creation and the parent's closure.
    assert sorted(e.action for e in entries) == [
        "referral.close.referred_onward",
        "referral.create",
    ]
    by_action = {e.action: e for e in entries}
    _assert_entry(by_action["referral.create"], kemensos, "referral.create", child)
    _assert_entry(
        by_action["referral.close.referred_onward"], kemensos,
        "referral.close.referred_onward", onward,
    )
    _assert_chain_ok(ctx)


def test_a_request_without_x_request_id_is_audited_under_the_generated_one(
    lpsk: Api, ctx: ServiceContext
) -> None:
    response = lpsk.create(referral_body("KEMENSOS"))
    assert response.status_code == 201, response.text
    generated = response.headers["X-Request-ID"]
    entries = _entries(ctx, generated)
    assert len(entries) == 1
    _assert_entry(entries[0], lpsk, "referral.create", response.json()["id"])


def test_failed_writes_leave_no_entry(lpsk: Api, kemensos: Api, ctx: ServiceContext) -> None:
    audited_before = _assert_chain_ok(ctx)
    rid = lpsk.create_ok("KEMENSOS")["id"]
    request_id = _rid()
    stale = kemensos.http.post(
        f"/v1/referrals/{rid}/assess",
        json=assess_body(),
        headers=kemensos.headers(**{"X-Request-ID": request_id, "If-Match": '"7"'}),
    )
    assert stale.status_code == 412
    assert _entries(ctx, request_id) == []
    assert _assert_chain_ok(ctx) == audited_before + 1


# ---- tampering, on a database of its own ----------------------------------------------------


def _without_protection(db: Database, change: Callable[[Session], Any]) -> None:
    with unprotected(db.url) as session:
        change(session)


@pytest.fixture(scope="module")
def chain_db(  # type: ignore[no-untyped-def]
    backend: str, new_database_url, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A database of its own for tampering (never the shared test database)."""
    url = new_database_url(backend)
    upgrade_to_head(url)
    key_file = tmp_path_factory.mktemp("audit-keys") / "audit-keys.json"
    keys = AuditKeyring.load_or_create(key_file, allow_generate=True)
    db = Database(url, session_info={SESSION_KEY: lambda: keys})
    yield db
    db.dispose()


@pytest.fixture
def chain(chain_db: Database) -> Database:
    """A chain of exactly 5 valid entries, protected by the trigger."""
    _without_protection(chain_db, lambda s: s.execute(delete(AuditEntry)))
    for n in range(1, 6):
        chain_db.write(
            lambda w, n=n: w.append_audit(
                action=f"test.entry{n}",
                agency="LPSK",
                client_id="client-1",
                referral_id=uuid.uuid4(),
                detail={"n": n},
            )
        )
    assert _verify(chain_db) == (5, None, None)
    return chain_db


def _verify(db: Database) -> tuple[int, int | None, str | None]:
    with db.reader() as session:
        return trail.verify_chain(session)


def test_an_altered_entry_is_named(chain: Database) -> None:
    _without_protection(
        chain,
        lambda s: s.execute(update(AuditEntry).where(AuditEntry.id == 3).values(detail={"n": 99})),
    )
    checked, bad, reason = _verify(chain)
    assert (checked, bad) == (2, 3)
    assert reason and "hash" in reason


def test_an_altered_actor_is_named(chain: Database) -> None:
    _without_protection(
        chain,
        lambda s: s.execute(update(AuditEntry).where(AuditEntry.id == 5).values(agency="KEMENHAM")),
    )
    assert _verify(chain)[:2] == (4, 5)


def test_a_rehashed_forgery_is_caught_at_the_next_entry(chain: Database) -> None:
    """Recomputing the altered entry's own hash only moves the break to its successor."""

    def forge(session: Session) -> None:
        entry = session.get(AuditEntry, 2)
        assert entry is not None
        entry.action = "test.forged"
        with chain.reader() as keyed:  # the real key: this forger holds it
            forged_hash = trail.entry_hash(entry, trail.session_keys(keyed))
        session.expunge(entry)
        session.execute(
            update(AuditEntry)
            .where(AuditEntry.id == 2)
            .values(action="test.forged", hash=forged_hash)
        )

    _without_protection(chain, forge)
    checked, bad, reason = _verify(chain)
    assert (checked, bad) == (2, 3)
    assert reason and "prev_hash" in reason


def test_a_deleted_entry_is_named(chain: Database) -> None:
    _without_protection(
        chain, lambda s: s.execute(delete(AuditEntry).where(AuditEntry.id == 3))
    )
    checked, bad, reason = _verify(chain)
    assert (checked, bad) == (2, 4)
    assert reason == "entry 3 is missing"


def test_a_truncated_tail_is_not_detectable_by_the_chain_alone(chain: Database) -> None:
    """Documents the limit: removing the newest entries leaves a valid, shorter chain.

    (Detecting it needs the last hash kept elsewhere, e.g. exported or logged.)
    """
    _without_protection(
        chain, lambda s: s.execute(delete(AuditEntry).where(AuditEntry.id >= 4))
    )
    assert _verify(chain) == (3, None, None)


@pytest.mark.parametrize("attempt", ["update", "delete"])
def test_the_trigger_stops_tampering_first(chain: Database, attempt: str) -> None:
    """Run last: also proves each tampering test's reset put the trigger back."""
    stmt = (
        update(AuditEntry).where(AuditEntry.id == 3).values(detail={"n": 99})
        if attempt == "update"
        else delete(AuditEntry).where(AuditEntry.id == 3)
    )
    with pytest.raises(Exception, match="append-only"):
        chain.write(lambda w: w.session.execute(stmt))
    assert _verify(chain) == (5, None, None)


def test_a_failure_at_commit_stores_nothing_and_ends_cleanly(
    chain: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL: the entries are numbered and keyed at commit, after the statements the
    transaction deferred; when one of those fails, the commit fails, nothing is stored, the
    connection goes back to the pool in a clean state, and the next write goes through."""
    if chain.sqlite:
        pytest.skip("SQLite runs each statement at once: there is nothing deferred")

    def fails_at_commit(w: Any) -> None:
        w.append_audit(action="test.lost", agency="LPSK", client_id=None)
        w.defer(text("SELECT 1 / 0"), {})
        w.append_audit(action="test.lost", agency=None, client_id=None)

    with pytest.raises(Exception, match="division by zero"):
        chain.write(fails_at_commit)
    assert "error ignored" not in caplog.text
    assert _verify(chain) == (5, None, None)
    chain.write(lambda w: w.append_audit(action="test.kept", agency="LPSK", client_id=None))
    assert _verify(chain) == (6, None, None)
