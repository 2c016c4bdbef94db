"""Codes in requests: an unknown code gets a 422 naming the list of `GET /v1/taxonomy` to
consult and the closest codes in use; a retired code is refused on new records by name, still
shown on the referrals that carry it, and listed with `active: false`."""

from __future__ import annotations

from typing import Any

import pytest

from service.context import ServiceContext
from tests.support import Api, assert_problem, assess_body, ok, referral_body, service_body
from tests.support.taxonomy import added_code, retire


def field_errors(response: Any, status: int = 422) -> list[dict[str, Any]]:
    return assert_problem(response, status)["errors"]  # type: ignore[no-any-return]


def listed(api: Api, name: str) -> dict[str, dict[str, Any]]:
    body = ok(api.http.get("/v1/taxonomy", headers=api.headers()))
    return {term["code"]: term for term in body[name]}


@pytest.mark.parametrize(
    ("field", "value", "taxonomy", "suggested"),
    [
        ("groups", ["LANSIA"], "groups", "LANSIA_TERLANTAR"),
        ("groups", ["KORBAN_KEKERASN"], "groups", "KORBAN_KEKERASAN"),
        ("case_types", ["tppo"], "case_types", "TPPO"),
        ("kemenham_groups", ["PENGUNGSI_"], "kemenham_groups", "PENGUNGSI"),
    ],
)
def test_an_unknown_code_names_its_list_and_the_closest_codes(
    lpsk: Api, field: str, value: list[str], taxonomy: str, suggested: str
) -> None:
    (error,) = field_errors(lpsk.create(referral_body(**{field: value})))
    assert error["loc"] == ["body", field, 0]
    assert error["taxonomy"] == taxonomy
    assert error["suggestions"][0] == suggested
    assert f"`{taxonomy}`" in error["msg"] and "GET /v1/taxonomy" in error["msg"]
    assert suggested in error["msg"]


def test_a_code_like_none_gets_no_suggestion_but_still_its_list(lpsk: Api) -> None:
    (error,) = field_errors(lpsk.create(referral_body(case_types=["QQQQQQQ"])))
    assert error["taxonomy"] == "case_types" and error["suggestions"] == []
    assert "did you mean" not in error["msg"]


def test_codes_in_actions_name_their_list(lpsk: Api, kemensos: Api) -> None:
    rid = lpsk.create_ok()["id"]
    errors = field_errors(
        kemensos.act(rid, "assess", assess_body(needs=["REHABILITASI"], service_unit="HANDAYANI"))
    )
    by_field = {tuple(e["loc"][1:2]): e for e in errors}
    assert by_field[("needs",)]["taxonomy"] == "service_types"
    assert "REHABILITASI_SOSIAL" in by_field[("needs",)]["suggestions"]
    assert by_field[("service_unit",)]["taxonomy"] == "service_units"
    assert by_field[("service_unit",)]["suggestions"][0] == "SENTRA_HANDAYANI"
    (error,) = field_errors(
        kemensos.act(rid, "close", {"outcome": "declined", "reason": "CAPACITY"})
    )
    assert error["loc"] == ["body", "reason"] and error["taxonomy"] == "decline_reasons"
    assert error["suggestions"] == ["CAPACITY_FULL"]


def test_a_retired_code_is_refused_on_new_referrals_and_shown_on_old_ones(
    lpsk: Api, ctx: ServiceContext
) -> None:
    with added_code(ctx, "case_type", "PERUNDUNGAN_DARING") as code:
        old = lpsk.create_ok(case_types=[code])
        assert listed(lpsk, "case_types")[code]["active"] is True
        retire(ctx, "case_type", code)

        (error,) = field_errors(lpsk.create(referral_body(case_types=[code])))
        assert error["loc"] == ["body", "case_types", 0]
        assert error["msg"].startswith("retired case type code")
        assert error["taxonomy"] == "case_types"
        # The referral made before keeps it, and the list still names it for clients to show.
        assert ok(lpsk.get(old["id"]))["case_types"] == [code]
        term = listed(lpsk, "case_types")[code]
        assert term["active"] is False and term["name_en"] == f"Test code {code}"


def test_a_retired_code_is_never_suggested(lpsk: Api, ctx: ServiceContext) -> None:
    with added_code(ctx, "group", "LANSIA_RENTAN") as code:
        (before,) = field_errors(lpsk.create(referral_body(groups=["LANSIA"])))
        assert code in before["suggestions"]
        retire(ctx, "group", code)
        (after,) = field_errors(lpsk.create(referral_body(groups=["LANSIA"])))
        assert code not in after["suggestions"] and code not in after["msg"]
        assert after["suggestions"] == ["LANSIA_TERLANTAR"]


def test_retired_service_codes_are_refused_on_assessments_and_services(
    lpsk: Api, kemensos: Api, ctx: ServiceContext
) -> None:
    unit = {"agency": "KEMENSOS", "approach": "residential", "region": "Kota Uji"}
    with (
        added_code(ctx, "service_type", "TERAPI_SENI", phase="rehabilitation") as kind_code,
        added_code(ctx, "service_unit", "SENTRA_UJI", **unit) as unit_code,
        added_code(ctx, "decline_reason", "ALASAN_UJI") as reason,
    ):
        served = lpsk.create_ok()["id"]
        ok(kemensos.act(served, "assess", assess_body(needs=[kind_code], service_unit=unit_code)))
        ok(kemensos.act(served, "serve", service_body(service_type=kind_code,
                                                      service_unit=unit_code)))
        fresh = lpsk.create_ok()["id"]
        for kind, code in (
            ("service_type", kind_code), ("service_unit", unit_code), ("decline_reason", reason)
        ):
            retire(ctx, kind, code)
        errors = field_errors(
            kemensos.act(fresh, "assess", assess_body(needs=[kind_code], service_unit=unit_code))
        )
        assert {e["taxonomy"] for e in errors} == {"service_types", "service_units"}
        assert all("retired" in e["msg"] for e in errors)
        errors = field_errors(
            kemensos.act(served, "services", service_body(service_type=kind_code))
        )
        assert [e["loc"] for e in errors] == [["body", "service_type"]]
        (error,) = field_errors(
            kemensos.act(fresh, "close", {"outcome": "declined", "reason": reason})
        )
        assert error["taxonomy"] == "decline_reasons" and "retired" in error["msg"]
        # The referral served before still shows its assessment and service.
        shown = ok(kemensos.get(served))
        assert shown["assessment"]["needs"] == [kind_code]
        assert shown["services"][0]["service_unit"] == unit_code


def test_the_code_errors_speak_indonesian_and_keep_their_codes(lpsk: Api) -> None:
    body = referral_body(groups=["LANSIA"])
    english = field_errors(lpsk.create(body))[0]
    response = lpsk.create(referral_body(groups=["LANSIA"]), **{"Accept-Language": "id"})
    (indonesian,) = field_errors(response)
    assert response.headers["Content-Language"] == "id"
    assert indonesian["msg"] == (
        "kode kelompok tidak dikenal; daftar kodenya ada di `groups` pada GET /v1/taxonomy; "
        "apakah maksud Anda LANSIA_TERLANTAR?"
    )
    for same in ("loc", "type", "taxonomy", "suggestions"):
        assert indonesian[same] == english[same]
