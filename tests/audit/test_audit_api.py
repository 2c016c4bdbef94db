"""GET /v1/audit: an agency reads its own audit entries, and only those."""

from __future__ import annotations

import base64
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
    """The numbers of the agency's own entries in its own sequence, newest first."""
    stmt = select(AuditEntry.agency_seq).where(AuditEntry.agency == agency)
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
        entry = session.execute(
            select(AuditEntry).where(
                AuditEntry.agency == "KEMENSOS", AuditEntry.agency_seq == item["id"]
            )
        ).scalar_one()
        previous = session.execute(
            select(AuditEntry.hash).where(
                AuditEntry.agency == "KEMENSOS", AuditEntry.agency_seq == item["id"] - 1
            )
        ).scalar_one_or_none()
    assert entry.detail_sealed  # the reason is kept, sealed
    assert item["hash"] == entry.hash == trail.entry_hash(entry, ctx.audit_keys)
    # Linked to the agency's own previous entry, not to its neighbour in the chain.
    assert item["prev_hash"] == (previous or trail.GENESIS)
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


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "params",
    [{"cursor": "not-a-cursor"}, {"cursor": "YXVkaXQ6MA"}, {"cursor": "x" * 600},
     {"cursor": _cursor("audit:9999999999999999999")}, {"cursor": _cursor("audit:2147483648")},
     {"cursor": _cursor("audit:-5")}, {"referral_id": "not-a-uuid"}],
    ids=["garbage cursor", "cursor out of range", "oversized cursor", "huge cursor",
         "cursor past 32 bits", "negative cursor", "bad referral id"],
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


def _agency_trail(api: Api) -> list[dict[str, Any]]:
    """Every entry the agency sees, oldest first."""
    return list(reversed(_walk(api, limit=3)))


def _assert_links_up(items: list[dict[str, Any]]) -> None:
    """Numbered 1..n without a gap, each linked to the agency's own previous entry."""
    assert [item["id"] for item in items] == list(range(1, len(items) + 1))
    assert items[0]["prev_hash"] == trail.GENESIS
    for previous, item in zip(items, items[1:], strict=False):
        assert item["prev_hash"] == previous["hash"]


def test_what_an_agency_sees_counts_only_its_own_activity(lpsk: Api, kemensos: Api) -> None:
    """Two agencies write in turns; each sees its own entries numbered 1..n and linked to one
    another, and the numbers it gets do not depend on how much the other one wrote."""
    lpsk_before, kemensos_before = _agency_trail(lpsk), _agency_trail(kemensos)
    for others in (0, 3, 1, 0, 5):
        _create(lpsk, "KEMENHAM")
        for _ in range(others):
            _create(kemensos, "KEMENHAM")
    lpsk_after, kemensos_after = _agency_trail(lpsk), _agency_trail(kemensos)
    assert len(lpsk_after) == len(lpsk_before) + 5
    assert len(kemensos_after) == len(kemensos_before) + 9
    _assert_links_up(lpsk_after)
    _assert_links_up(kemensos_after)
    # What it saw before is unchanged; its new entries follow on, one number each.
    assert lpsk_after[: len(lpsk_before)] == lpsk_before
    new = lpsk_after[len(lpsk_before):]
    assert [item["id"] for item in new] == [len(lpsk_before) + n for n in range(1, 6)]
    # The same with a filter: the links still point at the agency's own previous entries.
    for item in new:
        [filtered] = _page(lpsk, referral_id=item["referral_id"])["items"]
        assert filtered == item
    assert {i["hash"] for i in lpsk_after}.isdisjoint(i["hash"] for i in kemensos_after)
    assert {i["prev_hash"] for i in lpsk_after} - {trail.GENESIS} <= {i["hash"] for i in lpsk_after}
