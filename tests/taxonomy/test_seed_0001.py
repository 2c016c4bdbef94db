"""Tests for service.taxonomy.seed_0001 (frozen reference data of migration 0001)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from service.taxonomy import seed_0001 as seed
from tests.support import CONTRACT_CASE_TYPES, CONTRACT_GROUPS, CONTRACT_OUTCOMES

CODE_RE = re.compile(r"^[A-Z0-9_]+$")
OUTCOME_CODE_RE = re.compile(r"^[a-z_]+$")


UPPER_TABLES = {
    "AGENCIES": seed.AGENCIES,
    "GROUPS": seed.GROUPS,
    "KEMENHAM_GROUPS": seed.KEMENHAM_GROUPS,
    "CASE_TYPES": seed.CASE_TYPES,
    "SERVICE_TYPES": seed.SERVICE_TYPES,
    "SERVICE_UNITS": seed.SERVICE_UNITS,
    "DECLINE_REASONS": seed.DECLINE_REASONS,
}
ALL_TABLES = {**UPPER_TABLES, "OUTCOMES": seed.OUTCOMES}

REQUIRED_KEYS = {
    "AGENCIES": {"code", "name"},
    "GROUPS": {"code", "name", "description"},
    "KEMENHAM_GROUPS": {"code", "name", "description"},
    "CASE_TYPES": {"code", "name"},
    "SERVICE_TYPES": {"code", "name", "phase"},
    "SERVICE_UNITS": {"code", "name", "agency", "approach", "region"},
    "OUTCOMES": {"code", "name"},
    "DECLINE_REASONS": {"code", "name"},
}
OPTIONAL_KEYS = {"description"}


def _codes(table: tuple[dict, ...]) -> list[str]:
    return [row["code"] for row in table]


# ------------------------------------------------------------------ shape


@pytest.mark.parametrize("table_name", sorted(ALL_TABLES))
def test_table_is_non_empty_tuple_of_dicts(table_name: str) -> None:
    table = ALL_TABLES[table_name]
    assert isinstance(table, tuple)
    assert table
    assert all(isinstance(row, dict) for row in table)


@pytest.mark.parametrize("table_name", sorted(ALL_TABLES))
def test_rows_have_exactly_the_expected_keys(table_name: str) -> None:
    required = REQUIRED_KEYS[table_name]
    for row in ALL_TABLES[table_name]:
        assert required <= row.keys(), (table_name, row)
        assert row.keys() <= required | OPTIONAL_KEYS, (table_name, row)


@pytest.mark.parametrize("table_name", sorted(ALL_TABLES))
def test_every_entry_has_a_non_empty_name(table_name: str) -> None:
    for row in ALL_TABLES[table_name]:
        assert isinstance(row["name"], str)
        assert row["name"].strip(), row
        assert row["name"] == row["name"].strip(), row
        if "description" in row:
            assert isinstance(row["description"], str) and row["description"].strip(), row


@pytest.mark.parametrize("table_name", sorted(ALL_TABLES))
def test_no_duplicate_codes_within_a_table(table_name: str) -> None:
    codes = _codes(ALL_TABLES[table_name])
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)


@pytest.mark.parametrize("table_name", sorted(UPPER_TABLES))
def test_codes_are_upper_snake_ascii(table_name: str) -> None:
    for code in _codes(UPPER_TABLES[table_name]):
        assert CODE_RE.fullmatch(code), (table_name, code)


def test_outcome_codes_are_lower_snake() -> None:
    for code in _codes(seed.OUTCOMES):
        assert OUTCOME_CODE_RE.fullmatch(code), code


# --------------------------------------------------------------- contract


def test_agencies_are_exactly_the_three() -> None:
    assert _codes(seed.AGENCIES) == ["KEMENSOS", "LPSK", "KEMENHAM"]
    names = {row["code"]: row["name"] for row in seed.AGENCIES}
    assert names["KEMENSOS"] == "Kementerian Sosial"
    assert names["LPSK"] == "Lembaga Perlindungan Saksi dan Korban"
    assert names["KEMENHAM"] == "Kementerian Hak Asasi Manusia"


def test_the_12_group_codes_are_exactly_the_contract() -> None:
    assert len(seed.GROUPS) == 12
    assert set(_codes(seed.GROUPS)) == set(CONTRACT_GROUPS)


def test_kemenham_groups_include_required_codes() -> None:
    required = {
        "SAKSI_KORBAN_PELANGGARAN_HAM",
        "KORBAN_PELANGGARAN_HAM_BERAT_MASA_LALU",
        "MASYARAKAT_DAERAH_KONFLIK",
        "PENGUNGSI",
        "PEKERJA_MIGRAN",
        "MASYARAKAT_ADAT",
        "PEKERJA_RUMAH_TANGGA",
        "PEKERJA_ANAK",
        "PEMBELA_HAM",
        "KELOMPOK_MINORITAS_AGAMA",
    }
    assert required <= set(_codes(seed.KEMENHAM_GROUPS))


def test_no_code_shared_between_groups_and_kemenham_groups() -> None:
    combined = _codes(seed.GROUPS) + _codes(seed.KEMENHAM_GROUPS)
    assert len(combined) == len(set(combined))


def test_case_types_include_required_codes() -> None:
    assert set(_codes(seed.CASE_TYPES)) >= CONTRACT_CASE_TYPES
    names = {row["code"]: row["name"] for row in seed.CASE_TYPES}
    assert names["TPPO"] == "Tindak Pidana Perdagangan Orang"


def test_service_type_phases() -> None:
    phases = [row["phase"] for row in seed.SERVICE_TYPES]
    assert set(phases) == {"rehabilitation", "empowerment"}


@pytest.mark.parametrize(
    ("code", "phase"),
    [
        ("REHABILITASI_MEDIS", "rehabilitation"),
        ("REHABILITASI_SOSIAL", "rehabilitation"),
        ("DUKUNGAN_PSIKOSOSIAL", "rehabilitation"),
        ("TERAPI", "rehabilitation"),
        ("PERAWATAN_SOSIAL", "rehabilitation"),
        ("DUKUNGAN_KELUARGA", "rehabilitation"),
        ("PEMENUHAN_HIDUP_LAYAK", "rehabilitation"),
        ("PERLINDUNGAN_FISIK", "rehabilitation"),
        ("BANTUAN_MEDIS", "rehabilitation"),
        ("BANTUAN_PSIKOLOGIS", "rehabilitation"),
        ("FASILITASI_RESTITUSI", "rehabilitation"),
        ("PEMULIHAN_HAK_KORBAN", "rehabilitation"),
        ("PENDIDIKAN", "empowerment"),
        ("PELATIHAN_VOKASIONAL", "empowerment"),
        ("PEMBERDAYAAN_EKONOMI", "empowerment"),
        ("AKSESIBILITAS", "empowerment"),
    ],
)
def test_service_type_classification(code: str, phase: str) -> None:
    phases = {row["code"]: row["phase"] for row in seed.SERVICE_TYPES}
    assert phases[code] == phase


def test_service_units_reference_known_agencies_and_approaches() -> None:
    agencies = set(_codes(seed.AGENCIES))
    for unit in seed.SERVICE_UNITS:
        assert unit["agency"] in agencies, unit
        assert unit["approach"] in {"residential", "family", "community"}, unit
        assert isinstance(unit["region"], str) and unit["region"].strip(), unit


def test_every_agency_has_at_least_one_unit() -> None:
    assert {u["agency"] for u in seed.SERVICE_UNITS} == set(_codes(seed.AGENCIES))


def test_kemensos_has_sentra_and_family_and_community_units() -> None:
    kemensos = [u for u in seed.SERVICE_UNITS if u["agency"] == "KEMENSOS"]
    sentra = [u for u in kemensos if u["code"].startswith("SENTRA_")]
    assert len(sentra) >= 12
    assert all(u["approach"] == "residential" for u in sentra)
    assert all(u["name"].startswith("Sentra ") for u in sentra)
    assert {u["approach"] for u in kemensos} == {"residential", "family", "community"}


def test_unit_codes_are_prefixed_by_their_agency() -> None:
    for unit in seed.SERVICE_UNITS:
        if unit["agency"] == "KEMENSOS":
            assert unit["code"].startswith(("SENTRA_", "ATENSI_")), unit
        else:
            assert unit["code"].startswith(unit["agency"] + "_"), unit


def test_the_six_outcome_codes_are_exact() -> None:
    assert _codes(seed.OUTCOMES) == list(CONTRACT_OUTCOMES)


def test_decline_reasons_include_the_expected_codes() -> None:
    expected = {
        "OUTSIDE_MANDATE",
        "NOT_ELIGIBLE",
        "CAPACITY_FULL",
        "DUPLICATE",
        "INSUFFICIENT_INFORMATION",
        "CONSENT_ISSUE",
        "SERVED_ELSEWHERE",
    }
    assert expected <= set(_codes(seed.DECLINE_REASONS))


@pytest.mark.parametrize("table_name", sorted(ALL_TABLES))
def test_values_fit_the_migration_columns(table_name: str) -> None:
    # Column sizes of migration 0001 (agency / taxonomy_term).
    limits = {"code": 32 if table_name == "AGENCIES" else 64, "name": 200}
    limits |= {"description": 1000, "region": 100, "phase": 16, "approach": 16, "agency": 32}
    for row in ALL_TABLES[table_name]:
        for key, value in row.items():
            assert len(value) <= limits[key], (table_name, key, value)


# ----------------------------------------------------------------- frozen


def test_module_contains_only_literal_assignments() -> None:
    """The migration imports this module; it must stay plain data with no logic."""
    source = Path(seed.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        assert isinstance(node, ast.Assign), ast.dump(node)[:120]
        ast.literal_eval(node.value)  # raises ValueError if not a pure literal
