"""Invalid fields (422 `errors`) in the caller's language, rebuilt without the submitted input."""

from __future__ import annotations

import string
from typing import Any

import pytest
from pydantic_core._pydantic_core import list_all_errors

from service.i18n import Message, localize
from service.validation_messages import COUNTED_MESSAGES, FRAMEWORK_MESSAGES, field_message
from tests.support import Api, referral_body

# Nothing under test here differs between the dialects: SQLite only (tests/conftest.py).
pytestmark = pytest.mark.one_database

ALL_ERRORS = {error["type"]: error for error in list_all_errors()}
# Worded differently from pydantic on purpose: its message quotes the submitted tag.
REWORDED = {"union_tag_invalid"}


def _ctx(error: dict[str, Any]) -> dict[str, Any]:
    return dict(error.get("example_context") or {})


@pytest.mark.parametrize("error_type", sorted(ALL_ERRORS))
def test_every_framework_error_type_is_rebuilt_and_translated(error_type: str) -> None:
    error = ALL_ERRORS[error_type]
    context = _ctx(error)
    english = error["example_message_python"]
    rebuilt = field_message({"type": error_type, "ctx": context, "msg": english})
    assert error_type in FRAMEWORK_MESSAGES or error_type in COUNTED_MESSAGES
    if error_type == "value_error":
        assert localize(rebuilt, "en") == str(context["error"])
        return
    assert isinstance(rebuilt, Message)
    if error_type not in REWORDED:
        assert localize(rebuilt, "en") == english
    indonesian = localize(rebuilt, "id")
    assert indonesian != localize(rebuilt, "en")
    # Every value filled in: no placeholder left over.
    assert not [n for _, n, _, _ in string.Formatter().parse(indonesian) if n is not None]


def test_plural_forms_follow_the_count() -> None:
    one = field_message({"type": "string_too_short", "ctx": {"min_length": 1}, "msg": ""})
    two = field_message({"type": "string_too_short", "ctx": {"min_length": 2}, "msg": ""})
    assert localize(one, "en") == "String should have at least 1 character"
    assert localize(two, "en") == "String should have at least 2 characters"
    assert localize(two, "id") == "Teks harus paling sedikit 2 karakter"


def test_the_allowed_values_are_listed_with_a_translated_or() -> None:
    rebuilt = field_message(
        {"type": "literal_error", "ctx": {"expected": "'a', 'b' or 'c'"}, "msg": ""}
    )
    assert localize(rebuilt, "en") == "Input should be 'a', 'b' or 'c'"
    assert localize(rebuilt, "id") == "Masukan harus 'a', 'b' atau 'c'"


def _errors(api: Api, body: dict[str, Any], language: str = "id") -> dict[str, Any]:
    response = api.http.post(
        "/v1/referrals", json=body, headers=api.headers(**{"Accept-Language": language})
    )
    assert response.status_code == 422, response.text
    assert response.headers["Content-Language"] == language
    problem = response.json()
    return {".".join(map(str, e["loc"][1:])): e for e in problem["errors"]} | {"": problem}


def test_framework_messages_of_a_request_in_indonesian(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    del body["summary"]
    body["urgency"] = "whenever"
    body["subject"]["full_name"] = ""
    body["consent"]["obtained_at"] = "2026-13-01T09:00:00+07:00"
    body["protected_identity"] = "perhaps"
    body["unknown_field"] = 1
    errors = _errors(lpsk, body)
    assert errors[""]["title"] == "Permintaan tidak sah"
    assert errors[""]["detail"] == "Satu atau beberapa isian tidak sah."
    assert errors["summary"]["msg"] == "Isian wajib diisi"
    assert errors["summary"]["type"] == "missing"
    assert errors["urgency"]["msg"] == "Masukan harus 'emergency', 'urgent' atau 'routine'"
    assert errors["urgency"]["type"] == "literal_error"
    assert errors["subject.full_name"]["msg"] == "Teks harus paling sedikit 1 karakter"
    assert errors["subject.full_name"]["type"] == "string_too_short"
    assert errors["consent.obtained_at"]["msg"] == (
        "Masukan harus berupa tanggal-waktu atau tanggal yang sah, nilai bulan di luar rentang "
        "1-12"
    )
    assert errors["protected_identity"]["type"] == "bool_parsing"
    assert errors["protected_identity"]["msg"].startswith("Masukan harus berupa boolean")
    assert errors["unknown_field"]["msg"] == "Isian tambahan tidak diizinkan"
    assert errors["unknown_field"]["type"] == "extra_forbidden"


def test_the_same_request_in_english_is_unchanged(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    del body["summary"]
    body["urgency"] = "whenever"
    errors = _errors(lpsk, body, "en")
    assert errors["summary"]["msg"] == "Field required"
    assert errors["urgency"]["msg"] == "Input should be 'emergency', 'urgent' or 'routine'"


def test_our_validators_messages_in_indonesian_without_the_nik(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    body["subject"]["nik"] = "3201011203850000"
    body["groups"] = ["KORBAN_KEKERASAN", "KORBAN_KEKERASAN"]
    response = lpsk.http.post(
        "/v1/referrals", json=body, headers=lpsk.headers(**{"Accept-Language": "id"})
    )
    assert response.status_code == 422
    assert "3201011203850000" not in response.text
    messages = {e["msg"] for e in response.json()["errors"]}
    assert any("Nomor urut pada NIK tidak boleh seluruhnya nol" in m for m in messages), messages
    body["subject"] = referral_body()["subject"]
    errors = _errors(lpsk, body)
    assert errors[""]["errors"][0]["msg"] == "groups memuat kode yang berulang"
    assert errors[""]["errors"][0]["type"] == "value_error"


def test_an_offset_less_time_is_refused_in_indonesian(lpsk: Api) -> None:
    body = referral_body("KEMENSOS")
    body["consent"]["obtained_at"] = "0"
    errors = _errors(lpsk, body)
    assert errors["consent.obtained_at"]["msg"] == (
        "harus berupa tanggal-waktu RFC 3339 dengan selisih zona waktu, misalnya "
        "2026-11-20T09:00:00+07:00"
    )


def test_too_many_unknown_fields_are_counted_in_indonesian(lpsk: Api) -> None:
    body = referral_body("KEMENSOS") | {f"extra_{i}": i for i in range(60)}
    errors = _errors(lpsk, body)
    assert errors[""]["errors"][0]["type"] == "extra_forbidden"
    assert errors[""]["errors"][0]["msg"] == (
        "60 isian tidak diizinkan di sini; hapus isian yang tidak dikenal"
    )


def test_invalid_json_in_indonesian(lpsk: Api) -> None:
    response = lpsk.http.post(
        "/v1/referrals",
        content=b'{"to_agency": "KEMENSOS", "subject": ',
        headers=lpsk.headers(**{"Content-Type": "application/json", "Accept-Language": "id"}),
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["type"] == "json_invalid"
    assert error["msg"].startswith("JSON tidak sah: ")


def test_a_query_parameter_in_indonesian(lpsk: Api) -> None:
    response = lpsk.http.get(
        "/v1/referrals",
        params={"limit": "many"},
        headers=lpsk.headers(**{"Accept-Language": "id"}),
    )
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["type"] == "int_parsing"
    assert error["msg"] == (
        "Masukan harus berupa bilangan bulat yang sah; teks tidak dapat dibaca sebagai bilangan "
        "bulat"
    )
