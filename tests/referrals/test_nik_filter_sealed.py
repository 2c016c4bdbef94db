"""A `nik` filter never confirms an identity sealed to the caller (CONTRACT §4): a protected
person's referral matches only with `X-Reveal-Reason`, and that match is audited as a reveal;
after consent withdrawal the receiver never finds it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import select

from service.audit.models import AuditEntry
from service.context import ServiceContext
from tests.support import Api, assert_problem, ok, person, referral_body

REASON = "Verifikasi identitas untuk perlindungan saksi"
SECRETS = ("Dewi Lestari", "Jl. Kenanga", "+62 811")


def search(api: Api, nik: str, reason: str | None = None, **params: Any) -> Response:
    headers = api.headers(**({"X-Reveal-Reason": reason} if reason else {}))
    return api.http.get("/v1/referrals", params={"nik": nik, **params}, headers=headers)


def ids(response: Response) -> list[str]:
    return [item["id"] for item in ok(response)["items"]]


def same_person(to_agency: str, subject: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return referral_body(to_agency, subject=dict(subject), **overrides)


def last_audit_id(ctx: ServiceContext) -> int:
    with ctx.db.reader() as session:
        found = session.execute(
            select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)  # type: ignore[union-attr]
        ).scalar_one_or_none()
    return found or 0


def audit_since(ctx: ServiceContext, after: int) -> list[AuditEntry]:
    with ctx.db.reader() as session:
        return list(
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.id > after)  # type: ignore[operator]
                .order_by(AuditEntry.id)  # type: ignore[arg-type]
            ).scalars()
        )


@pytest.fixture
def subject() -> dict[str, Any]:
    return person(dt.date(1988, 4, 9))


def test_a_nik_guess_does_not_find_a_protected_person(
    lpsk: Api, kemensos: Api, subject: dict[str, Any], ctx: ServiceContext
) -> None:
    rid = lpsk.create_ok("KEMENSOS", subject=subject, protected_identity=True)["id"]
    before = last_audit_id(ctx)

    # Neither party confirms the identity by guessing the NIK: the answer is an empty page,
    # as for a NIK nobody referred.
    for api in (kemensos, lpsk):
        response = search(api, subject["nik"])
        assert ok(response) == {"items": [], "next_cursor": None}
        assert rid not in response.text
    assert audit_since(ctx, before) == []
    # The referral itself is still listed, sealed, without a NIK filter.
    assert rid in ids(kemensos.list())


def test_with_a_reason_the_match_is_audited_as_a_reveal_and_stays_sealed(
    lpsk: Api, kemensos: Api, subject: dict[str, Any], ctx: ServiceContext
) -> None:
    rid = lpsk.create_ok("KEMENSOS", subject=subject, protected_identity=True)["id"]
    before = last_audit_id(ctx)

    response = search(kemensos, subject["nik"], REASON)

    assert ids(response) == [rid]
    (item,) = ok(response)["items"]
    assert item["subject"]["sealed"] is True and item["subject"]["nik"] is None
    for secret in (*SECRETS, subject["nik"]):
        assert secret not in response.text
    (entry,) = audit_since(ctx, before)
    assert (entry.action, entry.agency, entry.client_id, entry.referral_id) == (
        "referral.reveal_identity", "KEMENSOS", kemensos.party.client_id, uuid.UUID(rid)
    )
    assert entry.detail == {"reference": item["reference"], "matched_by": "nik"}
    assert REASON not in (entry.detail_sealed or "")
    assert ctx.keyring.open(entry.detail_sealed or "", f"audit:reveal:{rid}") == REASON


def test_each_matched_protected_referral_gets_its_own_entry_and_plain_ones_none(
    lpsk: Api, kemensos: Api, kemenham: Api, subject: dict[str, Any], ctx: ServiceContext
) -> None:
    first = lpsk.create_ok("KEMENSOS", subject=subject, protected_identity=True)["id"]
    second = ok(kemenham.create(same_person("KEMENSOS", subject, protected_identity=True)), 201)
    plain = ok(lpsk.create(same_person("KEMENHAM", subject)), 201)["id"]

    # Without a reason LPSK finds only its plain referral of the person.
    assert ids(search(lpsk, subject["nik"])) == [plain]
    before = last_audit_id(ctx)
    assert set(ids(search(kemensos, subject["nik"], REASON))) == {first, second["id"]}
    assert ids(search(lpsk, subject["nik"], REASON)) == [plain, first]
    entries = audit_since(ctx, before)
    assert sorted((e.agency, str(e.referral_id)) for e in entries) == sorted(
        [("KEMENSOS", first), ("KEMENSOS", second["id"]), ("LPSK", first)]
    )
    assert {e.action for e in entries} == {"referral.reveal_identity"}


def test_only_the_page_returned_is_audited(
    lpsk: Api, kemensos: Api, kemenham: Api, subject: dict[str, Any], ctx: ServiceContext
) -> None:
    older = lpsk.create_ok("KEMENSOS", subject=subject, protected_identity=True)["id"]
    newer = ok(kemenham.create(same_person("KEMENSOS", subject, protected_identity=True)), 201)
    before = last_audit_id(ctx)
    page = ok(search(kemensos, subject["nik"], REASON, limit=1))
    assert [i["id"] for i in page["items"]] == [newer["id"]]
    assert [str(e.referral_id) for e in audit_since(ctx, before)] == [newer["id"]]
    before = last_audit_id(ctx)
    rest = search(kemensos, subject["nik"], REASON, limit=1, cursor=page["next_cursor"])
    assert ids(rest) == [older]
    assert [str(e.referral_id) for e in audit_since(ctx, before)] == [older]


def test_after_consent_withdrawal_the_receiver_finds_nothing_even_with_a_reason(
    lpsk: Api, kemensos: Api, subject: dict[str, Any], ctx: ServiceContext
) -> None:
    for protected in (False, True):
        body = referral_body("KEMENSOS", subject=person(dt.date(1979, 2, 3)),
                             protected_identity=protected)
        rid = ok(lpsk.create(body), 201)["id"]
        ok(kemensos.act(rid, "consent-withdrawal",
                        {"withdrawn_at": dt.datetime.now(dt.UTC).isoformat()}))
        before = last_audit_id(ctx)
        nik = body["subject"]["nik"]
        assert ids(search(kemensos, nik)) == []
        assert ids(search(kemensos, nik, REASON)) == []
        assert audit_since(ctx, before) == []
        # The sender keeps finding what it sent.
        assert ids(search(lpsk, nik, REASON)) == [rid]


def test_a_search_that_matches_no_protected_referral_opens_no_write(
    lpsk: Api, kemensos: Api, subject: dict[str, Any], ctx: ServiceContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The list stays a pure read unless a reason made a protected referral match: no write
    transaction (on SQLite, no wait for the write lock) and no audit entry."""
    plain = lpsk.create_ok("KEMENSOS", subject=subject)["id"]
    lpsk.create_ok("KEMENHAM", protected_identity=True)
    writes: list[str] = []
    real = ctx.db.write

    def counted(work):  # type: ignore[no-untyped-def]
        writes.append("write")
        return real(work)

    monkeypatch.setattr(ctx.db, "write", counted)
    assert ids(search(kemensos, subject["nik"], REASON)) == [plain]
    assert ids(search(kemensos, subject["nik"])) == [plain]
    assert len(ok(lpsk.http.get("/v1/referrals", headers=lpsk.headers(
        **{"X-Reveal-Reason": REASON})))["items"]) == 2  # no nik: the header changes nothing
    assert writes == []


def test_a_reason_too_short_is_422(kemensos: Api, subject: dict[str, Any]) -> None:
    found = assert_problem(search(kemensos, subject["nik"], "ok"), 422)
    assert found["errors"][0]["loc"] == ["header", "X-Reveal-Reason"]


def test_the_header_and_the_rule_are_documented() -> None:
    from service.app import openapi_spec

    operation = openapi_spec()["paths"]["/v1/referrals"]["get"]
    (header,) = [p for p in operation["parameters"] if p["name"] == "X-Reveal-Reason"]
    assert header["in"] == "header" and header.get("required") is not True
    assert "audit" in header["description"]
    assert "X-Reveal-Reason" in operation["description"]
    assert "withheld" in operation["description"]
