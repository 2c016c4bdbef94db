"""GET /v1/audit: an agency reads its own audit entries, and only those."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from service.audit import trail
from service.audit.models import AuditEntry
from service.context import ServiceContext
from tests.support import Api, assess_body, make_nik, referral_body

ITEM_FIELDS = {
    "id", "occurred_at", "client_id", "action", "referral_id", "request_id", "detail", "hash",
    "prev_hash",
}


def _body(to_agency: str = "KEMENSOS", **overrides: Any) -> dict[str, Any]:
    """A create body for an adult (who consents for themselves)."""
    body = referral_body(to_agency, **overrides)
    birth = dt.date(1970, 1, 1) + dt.timedelta(days=secrets.randbelow(9000))
    body["subject"] = {**body["subject"], "birth_date": birth.isoformat(),
                       "nik": make_nik(birth, "female")}
    return body


def _create(api: Api, to_agency: str = "KEMENSOS", **overrides: Any) -> dict[str, Any]:
    response = api.create(_body(to_agency, **overrides))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _audit(api: Api, **params: Any) -> Any:
    return api.http.get("/v1/audit", params=params, headers=api.headers())


def _page(api: Api, **params: Any) -> dict[str, Any]:
    response = _audit(api, **params)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


def _walk(api: Api, limit: int, **params: Any) -> list[dict[str, Any]]:
    """Every item, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = _page(api, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert len(page["items"]) == limit


def _own_ids(ctx: ServiceContext, agency: str, referral_id: str | None = None) -> list[int]:
    stmt = select(AuditEntry.id).where(AuditEntry.agency == agency)
    if referral_id:
        stmt = stmt.where(AuditEntry.referral_id == uuid.UUID(referral_id))
    with ctx.db.reader() as session:
        return sorted(session.execute(stmt).scalars(), reverse=True)  # type: ignore[arg-type]


def test_each_agency_sees_exactly_its_own_entries_newest_first(
    lpsk: Api, kemensos: Api, kemenham: Api, ctx: ServiceContext
) -> None:
    rid = _create(lpsk)["id"]
    assert kemensos.act(rid, "assess", assess_body()).status_code == 200
    for api in (lpsk, kemensos):
        note = api.http.post(f"/v1/referrals/{rid}/notes", json={"text": "catatan"},
                             headers=api.headers())
        assert note.status_code == 201, note.text
    _create(kemenham, "LPSK")

    for api in (lpsk, kemensos, kemenham):
        items = _walk(api, limit=7)
        ids = [item["id"] for item in items]
        assert ids == _own_ids(ctx, api.agency)  # all of its own, newest first, no repeats
        assert ids
    # On the shared referral each party sees only what it did itself.
    lpsk_items = _page(lpsk, referral_id=rid)["items"]
    kemensos_items = _page(kemensos, referral_id=rid)["items"]
    assert [i["action"] for i in lpsk_items] == ["referral.add_note", "referral.create"]
    assert [i["action"] for i in kemensos_items] == ["referral.add_note", "referral.assess"]
    assert {i["client_id"] for i in lpsk_items} == {lpsk.party.client_id}
    assert {i["client_id"] for i in kemensos_items} == {kemensos.party.client_id}
    # Another agency: nothing, not even for a referral id it names.
    assert _page(kemenham, referral_id=rid) == {"items": [], "next_cursor": None}
    kemenham_clients = {i["client_id"] for i in _walk(kemenham, limit=200)}
    assert lpsk.party.client_id not in kemenham_clients
    assert kemensos.party.client_id not in kemenham_clients


def test_items_carry_the_chain_fields_and_never_sealed_detail(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    rid = _create(lpsk, protected_identity=True)["id"]
    reason = f"CANARY-reveal-reason-{secrets.token_hex(6)}"
    request_id = f"audit-api-{secrets.token_hex(6)}"
    revealed = kemensos.http.get(
        f"/v1/referrals/{rid}", params={"reveal": "identity"},
        headers=kemensos.headers(**{"X-Reveal-Reason": reason, "X-Request-ID": request_id}),
    )
    assert revealed.status_code == 200, revealed.text

    response = _audit(kemensos, referral_id=rid)
    assert response.status_code == 200
    assert reason not in response.text
    assert "detail_sealed" not in response.text
    [item] = response.json()["items"]
    assert set(item) == ITEM_FIELDS
    assert item["action"] == "referral.reveal_identity"
    assert item["referral_id"] == rid
    assert item["request_id"] == request_id
    assert item["client_id"] == kemensos.party.client_id
    with ctx.db.reader() as session:
        entry = session.get(AuditEntry, item["id"])
    assert entry is not None and entry.detail_sealed  # the reason is kept, sealed
    assert item["hash"] == entry.hash == trail.entry_hash(entry)
    assert item["prev_hash"] == entry.prev_hash
    assert item["detail"] == entry.detail
    assert dt.datetime.fromisoformat(item["occurred_at"]) == entry.occurred_at


def test_the_cursor_is_stable_while_new_entries_arrive(lpsk: Api, ctx: ServiceContext) -> None:
    for _ in range(3):
        _create(lpsk)
    before = _own_ids(ctx, "LPSK")
    first = _page(lpsk, limit=2)
    assert [i["id"] for i in first["items"]] == before[:2]
    newer = _create(lpsk)["id"]
    second = _page(lpsk, limit=2, cursor=first["next_cursor"])
    assert [i["id"] for i in second["items"]] == before[2:4]
    latest = _page(lpsk, limit=1)["items"][0]
    assert latest["referral_id"] == newer and latest["id"] > before[0]


def test_limit_default_and_bounds(lpsk: Api, ctx: ServiceContext) -> None:
    while len(_own_ids(ctx, "LPSK")) < 51:
        _create(lpsk)
    page = _page(lpsk)
    assert len(page["items"]) == 50 and page["next_cursor"]
    assert len(_page(lpsk, limit=200)["items"]) == min(200, len(_own_ids(ctx, "LPSK")))
    for bad in (0, 201, -1, "x"):
        response = _audit(lpsk, limit=bad)
        assert response.status_code == 422, response.text
        assert response.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    "params",
    [{"cursor": "not-a-cursor"}, {"cursor": "YXVkaXQ6MA"}, {"cursor": "x" * 600},
     {"referral_id": "not-a-uuid"}],
    ids=["garbage cursor", "cursor out of range", "oversized cursor", "bad referral id"],
)
def test_bad_parameters_are_422_problems(lpsk: Api, params: dict[str, str]) -> None:
    response = _audit(lpsk, **params)
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_the_scope_is_required(lpsk: Api) -> None:
    reader = lpsk.with_scope("referrals:read referrals:write")
    response = _audit(reader)
    assert response.status_code == 403, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "audit:read" in response.json()["detail"]
    assert _audit(lpsk.with_scope("audit:read")).status_code == 200


def test_a_token_is_required(lpsk: Api) -> None:
    response = lpsk.http.get("/v1/audit")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
