"""Every code in both languages: Indonesian and English names and descriptions (migration
0009), in `GET /v1/taxonomy` and in `GET /v1/agencies`."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text

from service.db import alembic_config, upgrade_to_head
from service.taxonomy import seed_0001, seed_0002, seed_0009
from service.taxonomy.models import TAXONOMY_LISTS
from tests.support import Api

TEXTS = ("name", "name_en", "description", "description_id")


def test_every_code_of_every_list_has_names_and_descriptions_in_both_languages(
    lpsk: Api,
) -> None:
    response = lpsk.http.get("/v1/taxonomy", headers=lpsk.headers())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == set(TAXONOMY_LISTS.values())
    for listed, terms in body.items():
        assert terms, listed
        for term in terms:
            for field in TEXTS:
                value = term.get(field)
                assert isinstance(value, str) and value.strip(), (listed, term["code"], field)
            assert term["active"] is True
            # Two languages, not one text twice (a Sentra keeps its proper name in both).
            assert term["description"] != term["description_id"], (listed, term["code"])


def test_names_are_indonesian_and_english_where_they_should_be(lpsk: Api) -> None:
    body = lpsk.http.get("/v1/taxonomy", headers=lpsk.headers()).json()
    groups = {t["code"]: t for t in body["groups"]}
    assert groups["LANSIA_TERLANTAR"]["name"] == "Lanjut usia terlantar"
    assert groups["LANSIA_TERLANTAR"]["name_en"] == "Neglected older persons"
    types = {t["code"]: t for t in body["service_types"]}
    assert types["REHABILITASI_SOSIAL"]["name_en"] == "Social rehabilitation"
    assert types["REHABILITASI_SOSIAL"]["description_id"].startswith("Pemulihan")


def test_agencies_have_an_english_name(lpsk: Api) -> None:
    agencies = lpsk.http.get("/v1/agencies", headers=lpsk.headers()).json()
    english = {a["code"]: a["name_en"] for a in agencies}
    assert english["KEMENSOS"] == "Ministry of Social Affairs"
    assert english["LPSK"] == "Witness and Victim Protection Agency"
    assert english["KEMENHAM"] == "Ministry of Human Rights"


def test_the_0009_seed_covers_exactly_the_seeded_codes() -> None:
    seeded = {
        (kind, entry["code"])
        for kind, entries in (
            ("group", seed_0001.GROUPS),
            ("kemenham_group", seed_0001.KEMENHAM_GROUPS),
            ("case_type", seed_0001.CASE_TYPES),
            ("service_type", seed_0001.SERVICE_TYPES),
            ("service_unit", seed_0001.SERVICE_UNITS),
            ("outcome", seed_0001.OUTCOMES + seed_0002.OUTCOMES),
            ("decline_reason", seed_0001.DECLINE_REASONS),
            ("consent_purpose", seed_0002.CONSENT_PURPOSES),
        )
        for entry in entries
    }
    translated = {(kind, code) for kind, terms in seed_0009.TERMS.items() for code in terms}
    assert translated == seeded
    assert set(seed_0009.AGENCY_NAMES_EN) == {a["code"] for a in seed_0001.AGENCIES}


def test_downgrade_of_0009_takes_back_what_it_added(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    url = new_database_url(backend)
    upgrade_to_head(url)
    engine = create_engine(url)
    described = "SELECT description FROM taxonomy_term WHERE kind = 'case_type' AND code = 'TPPO'"
    kept = "SELECT description FROM taxonomy_term WHERE kind = 'group' AND code = 'ANAK_RENTAN'"
    try:
        with engine.connect() as conn:
            assert conn.execute(text(described)).scalar_one()
            before = conn.execute(text(kept)).scalar_one()
        command.downgrade(alembic_config(url), "0008")
        engine.dispose()
        columns = {c["name"] for c in inspect(engine).get_columns("taxonomy_term")}
        assert not {"name_en", "description_id"} & columns
        assert "name_en" not in {c["name"] for c in inspect(engine).get_columns("agency")}
        with engine.connect() as conn:
            assert conn.execute(text(described)).scalar_one() is None
            assert conn.execute(text(kept)).scalar_one() == before
    finally:
        engine.dispose()
