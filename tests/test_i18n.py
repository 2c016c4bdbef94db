"""Problem documents in the caller's language: the Indonesian catalogue and the negotiation."""

from __future__ import annotations

import io
import string
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from httpx import Response

from service import i18n
from service.app import create_app
from service.bodies import MAX_BODY_BYTES
from service.config import Settings
from service.context import ServiceContext
from service.i18n import msg, negotiate
from tests.support import Api

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"msg": None, "N_": None}


def _catalogue() -> Catalog:
    with i18n.po_path("id").open("rb") as po:
        return read_po(po, locale="id", domain=i18n.DOMAIN)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _extracted() -> set[str]:
    """Every message id a fresh extraction over service/ finds (as `make messages` does)."""
    found = extract_from_dir(
        str(ROOT / "service"), method_map=[("**.py", "python")], keywords=KEYWORDS
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str) and message}


# ---- the catalogue --------------------------------------------------------------------------


def test_every_message_has_an_indonesian_translation_with_the_same_placeholders() -> None:
    catalogue = _catalogue()
    entries = [m for m in catalogue if m.id]
    assert len(entries) > 100
    for message in entries:
        assert isinstance(message.id, str), message.id
        assert isinstance(message.string, str) and message.string.strip(), message.id
        assert not message.fuzzy, message.id
        assert _placeholders(message.string) == _placeholders(message.id), message.id
        # The template must fill in as str.format does at response time.
        message.string.format(**dict.fromkeys(_placeholders(message.id), "x"))


def test_the_catalogue_compiles_and_the_service_reads_what_it_compiled() -> None:
    catalogue = _catalogue()
    assert not list(catalogue.check()), list(catalogue.check())
    compiled = i18n.compile_po(i18n.po_path("id"))
    back = read_mo(io.BytesIO(compiled))
    assert {m.id for m in back if m.id} == {m.id for m in catalogue if m.id}
    assert i18n.catalogue("id").gettext("Not found") == "Tidak ditemukan"


def test_a_fresh_extraction_finds_no_message_missing_from_the_catalogue() -> None:
    extracted = _extracted()
    assert "No referral with this id is visible to your agency." in extracted
    translated = {m.id for m in _catalogue() if m.id}
    missing = sorted(extracted - translated)
    assert not missing, f"run `make messages` and translate: {missing}"


def test_the_catalogue_and_its_template_ship_with_the_package() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"locale/*/LC_MESSAGES/*.po"' in pyproject
    assert (ROOT / "service/locale/messages.pot").is_file()


# ---- messages and negotiation ---------------------------------------------------------------


def test_a_message_is_english_as_text_and_translated_with_its_values() -> None:
    message = msg("The referral is now at version {version}; read it again and retry.", version=3)
    assert str(message) == "The referral is now at version 3; read it again and retry."
    assert message.render("id") == "Rujukan kini berada pada versi 3; baca ulang lalu coba lagi."


@pytest.mark.parametrize(
    ("header", "default", "expected"),
    [
        (None, "en", "en"),
        (None, "id", "id"),
        ("id", "en", "id"),
        ("id-ID", "en", "id"),
        ("ID-id", "en", "id"),
        ("en", "id", "en"),
        ("en-US", "id", "en"),
        ("en;q=0.5, id", "en", "id"),
        ("en, id;q=0.5", "id", "en"),
        ("id-ID,id;q=0.9,en-US;q=0.8,en;q=0.7", "en", "id"),
        ("fr, id;q=0.3", "en", "id"),
        ("fr", "id", "id"),
        ("*", "id", "id"),
        ("id;q=0, en", "id", "en"),
        ("fr, *;q=0.1, id;q=0.05", "en", "en"),
        # Malformed headers are not an error: the default answers.
        (";;;", "id", "id"),
        ("id;q=abc", "en", "en"),
        ("x" * 5000, "en", "en"),
    ],
)
def test_accept_language_negotiation(header: str | None, default: str, expected: str) -> None:
    assert negotiate(header, default) == expected


# ---- over HTTP ------------------------------------------------------------------------------


def _in(api: Api, language: str | None) -> Response:
    headers = api.headers(**({"Accept-Language": language} if language else {}))
    return api.http.get(f"/v1/referrals/{uuid.uuid4()}", headers=headers)


def test_a_problem_in_indonesian_with_its_type_unchanged(lpsk: Api) -> None:
    english, indonesian = _in(lpsk, "en"), _in(lpsk, "id")
    assert english.status_code == indonesian.status_code == 404
    assert english.json()["title"] == "Not found"
    assert english.json()["detail"] == "No referral with this id is visible to your agency."
    assert english.headers["Content-Language"] == "en"
    assert indonesian.json()["title"] == "Tidak ditemukan"
    assert indonesian.json()["detail"] == (
        "Rujukan dengan id ini tidak ditemukan untuk instansi Anda."
    )
    assert indonesian.headers["Content-Language"] == "id"
    assert "Accept-Language" in indonesian.headers["Vary"]
    assert english.json()["type"] == indonesian.json()["type"] == "urn:rujukan:problem:not-found"


def test_no_header_answers_in_english(lpsk: Api) -> None:
    response = _in(lpsk, None)
    assert response.json()["title"] == "Not found"
    assert response.headers["Content-Language"] == "en"


def test_q_values_choose_the_language(lpsk: Api) -> None:
    response = _in(lpsk, "en;q=0.5, id")
    assert response.json()["title"] == "Tidak ditemukan"
    assert response.headers["Content-Language"] == "id"


def test_problems_outside_the_routes_are_translated(http: TestClient, lpsk: Api) -> None:
    """Starlette's own 404 and 405, and authentication, speak the caller's language too."""
    unknown = http.get("/no/such/path", headers={"Accept-Language": "id"})
    assert unknown.json()["title"] == "Tidak Ditemukan"
    assert unknown.json()["type"] == "about:blank"
    wrong = http.delete("/v1/agencies", headers=lpsk.headers(**{"Accept-Language": "id"}))
    assert wrong.json()["title"] == "Metode Tidak Diizinkan"
    anonymous = http.get("/v1/referrals", headers={"Accept-Language": "id-ID"})
    assert anonymous.status_code == 401
    assert anonymous.json()["title"] == "Autentikasi diperlukan"
    assert anonymous.json()["detail"] == "Token akses bearer wajib disertakan."
    assert anonymous.headers["Content-Language"] == "id"


def test_the_frameworks_own_and_the_middlewares_problems_are_translated(lpsk: Api) -> None:
    headers = lpsk.headers(**{"Accept-Language": "id", "Content-Type": "application/json"})
    unreadable = lpsk.http.post("/v1/referrals", content=b"\xff{3\xfe", headers=headers)
    assert unreadable.status_code == 400
    assert unreadable.json()["title"] == "Permintaan Tidak Sah"
    assert unreadable.json()["detail"] == "Terjadi kesalahan saat membaca isi permintaan"
    too_large = lpsk.http.post(
        "/v1/referrals", content=b"x" * (MAX_BODY_BYTES + 1), headers=headers
    )
    assert too_large.status_code == 413
    assert too_large.headers["Content-Language"] == "id"
    assert too_large.json()["title"] == "Isi Permintaan Terlalu Besar"
    assert too_large.json()["detail"] == (
        f"Isi permintaan dibatasi paling banyak {MAX_BODY_BYTES} bita."
    )


def test_oauth_error_codes_stay_and_the_description_is_translated(http: TestClient) -> None:
    response = http.post(
        "/oauth/token",
        data={"grant_type": "password", "client_id": "x", "client_secret": "y"},
        headers={"Accept-Language": "id"},
    )
    body = response.json()
    assert response.status_code == 400
    assert body["error"] == body["title"] == "unsupported_grant_type"
    assert body["error_description"] == body["detail"]
    assert body["detail"] == "Hanya `client_credentials` yang didukung."


def test_field_errors_of_a_refused_action_are_translated_with_their_codes(lpsk: Api) -> None:
    referral = lpsk.create_ok("KEMENSOS")
    response = lpsk.http.post(
        f"/v1/referrals/{referral['id']}/close",
        json={"outcome": "withdrawn", "reason": "OTHER"},
        headers=lpsk.headers(**{"If-Match": f'"{referral["version"]}"', "Accept-Language": "id"}),
    )
    body = response.json()
    assert response.status_code == 422, body
    assert body["title"] == "Permintaan tidak sah"
    assert body["errors"] == [
        {
            "loc": ["body", "reason"],
            "msg": "kode alasan hanya diterima dengan hasil `declined`",
            "type": "value_error",
        }
    ]
    assert body["detail"] == "reason: kode alasan hanya diterima dengan hasil `declined`"


@pytest.fixture(scope="module")
def indonesian_by_default(ctx: ServiceContext) -> Iterator[TestClient]:
    settings = ctx.settings.model_copy(update={"default_language": "id"})
    with TestClient(create_app(settings=settings, ctx=ctx)) as client:
        yield client


def test_the_configured_default_language_answers_when_none_is_asked(
    indonesian_by_default: TestClient,
) -> None:
    unasked = indonesian_by_default.get("/v1/referrals")
    assert unasked.json()["title"] == "Autentikasi diperlukan"
    assert unasked.headers["Content-Language"] == "id"
    english = indonesian_by_default.get("/v1/referrals", headers={"Accept-Language": "en"})
    assert english.json()["title"] == "Authentication required"
    assert english.headers["Content-Language"] == "en"


def test_only_english_and_indonesian_are_accepted_as_the_default() -> None:
    assert Settings().default_language == "en"
    assert Settings(default_language="id").default_language == "id"
    with pytest.raises(ValueError, match="default_language"):
        Settings(default_language="fr")  # type: ignore[arg-type]
