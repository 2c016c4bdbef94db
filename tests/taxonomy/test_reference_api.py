"""GET /v1/agencies and /v1/taxonomy: reference data read from the database."""

from __future__ import annotations

from sqlalchemy import delete

from service.context import ServiceContext
from service.taxonomy.models import TaxonomyTerm
from tests.support import CONTRACT_GROUPS, Api, referral_body, writer_session


def test_agencies_are_the_three_seeded_bodies(lpsk: Api) -> None:
    response = lpsk.http.get("/v1/agencies", headers=lpsk.headers())
    assert response.status_code == 200
    assert {a["code"] for a in response.json()} == {"KEMENSOS", "LPSK", "KEMENHAM"}
    assert all(a["name"] for a in response.json())


def test_taxonomy_lists_every_kind_of_code(lpsk: Api) -> None:
    response = lpsk.http.get("/v1/taxonomy", headers=lpsk.headers())
    assert response.status_code == 200
    body = response.json()
    assert {t["code"] for t in body["groups"]} == set(CONTRACT_GROUPS)
    assert body["kemenham_groups"] and body["case_types"] and body["decline_reasons"]
    assert {"TPPO", "PELANGGARAN_HAM_BERAT"} <= {t["code"] for t in body["case_types"]}
    assert {t["phase"] for t in body["service_types"]} == {"rehabilitation", "empowerment"}
    units = body["service_units"]
    assert {u["agency"] for u in units} == {"KEMENSOS", "LPSK", "KEMENHAM"}
    assert {u["approach"] for u in units} <= {"residential", "family", "community"}
    assert {"completed", "declined", "withdrawn", "unreachable", "deceased", "referred_onward"} <= {
        t["code"] for t in body["outcomes"]
    }
    assert "REFERRAL" in {t["code"] for t in body["consent_purposes"]}


def test_an_operator_can_add_a_code_without_a_release(lpsk: Api, ctx: ServiceContext) -> None:
    body = referral_body("KEMENSOS", case_types=["PERUNDUNGAN_DARING"])
    assert lpsk.create(body).status_code == 422  # not a code yet
    with writer_session(ctx.db) as session:
        session.add(
            TaxonomyTerm(kind="case_type", code="PERUNDUNGAN_DARING", name="Perundungan daring")
        )
        session.commit()
    try:
        listed = lpsk.http.get("/v1/taxonomy", headers=lpsk.headers()).json()
        assert "PERUNDUNGAN_DARING" in {t["code"] for t in listed["case_types"]}
        assert lpsk.create(body).status_code == 201
    finally:
        with writer_session(ctx.db) as session:
            session.execute(delete(TaxonomyTerm).where(TaxonomyTerm.code == "PERUNDUNGAN_DARING"))
            session.commit()
