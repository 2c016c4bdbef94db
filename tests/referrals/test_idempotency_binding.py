"""A stored Idempotency-Key answer replays only to the agency it was sealed for: the sealed
response's associated data names the agency, so a record moved to another agency in the
database never replays there (CONTRACT §4: a key is scoped to the calling agency)."""

from __future__ import annotations

import copy
import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select, text, update

from service.context import ServiceContext
from service.crypto import DataKeyring
from service.datakeys import SEALED_COLUMNS, reencrypt_pass
from service.referrals.models import IdempotencyRecord
from tests.support import Api, assert_problem, ok, referral_body, writer_session


def _record(ctx: ServiceContext, key: str) -> Any:
    with ctx.db.reader() as session:
        return session.execute(
            select(IdempotencyRecord).where(IdempotencyRecord.key == key)
        ).scalar_one()


def _move(ctx: ServiceContext, key: str, agency: str) -> None:
    """What someone who can write the database, but not read the data key, could do."""
    with writer_session(ctx.db) as session:
        session.execute(
            update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(agency=agency)
        )
        session.commit()


def _seal_as_before(ctx: ServiceContext, key: str) -> None:
    """Re-seal a stored answer the way releases before the agency binding did."""
    record = _record(ctx, key)
    plain = ctx.keyring.open(record.response_sealed, f"idempotency:{record.agency}:{key}")
    with writer_session(ctx.db) as session:
        session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == key)
            .values(response_sealed=ctx.keyring.seal(plain, f"idempotency:{key}"))
        )
        session.commit()


@pytest.fixture
def first(lpsk: Api) -> tuple[str, dict[str, Any], dict[str, Any]]:
    key = f"bind-{secrets.token_hex(6)}"
    body = referral_body("KEMENHAM")
    return key, body, ok(lpsk.create(body, **{"Idempotency-Key": key}), 201)


def test_the_stored_answer_is_sealed_for_the_agency(
    ctx: ServiceContext, first: tuple[str, dict[str, Any], dict[str, Any]]
) -> None:
    key, _, created = first
    record = _record(ctx, key)
    stored = json.loads(ctx.keyring.open(record.response_sealed, f"idempotency:LPSK:{key}"))
    assert stored["id"] == created["id"]


def test_a_record_moved_to_another_agency_does_not_replay_there(
    ctx: ServiceContext, kemensos: Api, lpsk: Api,
    first: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    key, body, created = first
    _move(ctx, key, "KEMENSOS")

    response = kemensos.create(copy.deepcopy(body), **{"Idempotency-Key": key})

    problem = assert_problem(response, 422)
    assert "Idempotent-Replayed" not in response.headers
    assert created["id"] not in response.text
    assert created["subject"]["full_name"] not in response.text
    assert "key" in problem["detail"].lower()
    # Nor did the sender's own retry become a replay of someone else's record.
    assert "Idempotent-Replayed" not in lpsk.create(
        referral_body("KEMENHAM"), **{"Idempotency-Key": key}
    ).headers


def test_a_record_sealed_before_the_binding_replays_to_its_sender(
    ctx: ServiceContext, lpsk: Api, first: tuple[str, dict[str, Any], dict[str, Any]]
) -> None:
    key, body, created = first
    _seal_as_before(ctx, key)
    response = lpsk.create(copy.deepcopy(body), **{"Idempotency-Key": key})
    assert ok(response, 201) == created
    assert response.headers["Idempotent-Replayed"] == "true"


def test_a_record_sealed_before_the_binding_and_moved_does_not_replay(
    ctx: ServiceContext, kemensos: Api, first: tuple[str, dict[str, Any], dict[str, Any]]
) -> None:
    key, body, created = first
    _seal_as_before(ctx, key)
    _move(ctx, key, "KEMENSOS")
    response = kemensos.create(copy.deepcopy(body), **{"Idempotency-Key": key})
    assert_problem(response, 422)
    assert created["id"] not in response.text


@pytest.fixture
def rotated_ring(ctx: ServiceContext) -> Iterator[DataKeyring]:
    """The session's keys plus a new active one; the records re-sealed with it are removed
    afterwards (the session's own keyring cannot open them)."""
    ring = DataKeyring(
        active="drotated",
        keys={**ctx.keyring.keys, "drotated": AESGCM.generate_key(bit_length=256)},
        index_key=ctx.keyring.index_key,
    )
    yield ring
    with writer_session(ctx.db) as session:
        session.execute(text("DELETE FROM idempotency_record"))
        session.commit()


def test_rotation_reencrypts_records_of_both_kinds_without_failing(
    ctx: ServiceContext, lpsk: Api, rotated_ring: DataKeyring
) -> None:
    keys = []
    for n in range(3):
        key = f"rot-{n}-{secrets.token_hex(4)}"
        ok(lpsk.create(referral_body("KEMENSOS"), **{"Idempotency-Key": key}), 201)
        keys.append(key)
    _seal_as_before(ctx, keys[0])
    before = {key: ctx.keyring.open(_record(ctx, key).response_sealed,
                                    f"idempotency:{'' if key == keys[0] else 'LPSK:'}{key}")
              for key in keys}
    (spec,) = [s for s in SEALED_COLUMNS if s.name == "idempotency_record.response_sealed"]

    done, conflicts = reencrypt_pass(ctx.db, rotated_ring, spec, batch_size=2)

    assert (done, conflicts) == (3, 0)
    for key in keys:
        sealed = _record(ctx, key).response_sealed
        assert sealed.startswith("drotated.")
        # Each stays bound as it was: the older one to its key, the others to the agency.
        context = f"idempotency:{key}" if key == keys[0] else f"idempotency:LPSK:{key}"
        assert rotated_ring.open(sealed, context) == before[key]
