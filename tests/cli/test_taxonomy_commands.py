"""`rujukan taxonomy list|add|retire`: an operator adds and retires codes without SQL, each
change in the audit trail, every mistake refused in one line that says what would do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlmodel import col

from service.audit.models import AuditEntry
from tests.support.cli import Cli, make_cli, one_line_error


@pytest.fixture(scope="module")
def cli(backend: str, new_database_url, tmp_path_factory: pytest.TempPathFactory) -> Cli:  # type: ignore[no-untyped-def]
    made = make_cli(backend, new_database_url, tmp_path_factory.mktemp("taxonomy"))
    made.ok("migrate")
    return made


def codes(cli: Cli, kind: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(cli.ok("taxonomy", "list", "--kind", kind).stdout)
    assert {row["kind"] for row in rows} == {kind}
    return {row["code"]: row for row in rows}


def audited(cli: Cli, action: str) -> list[dict[str, Any]]:
    engine = create_engine(cli.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(col(AuditEntry.detail)).where(col(AuditEntry.action) == action)
            ).scalars()
            return list(rows)
    finally:
        engine.dispose()


def test_list_shows_every_kind_in_both_languages(cli: Cli) -> None:
    rows = json.loads(cli.ok("taxonomy", "list").stdout)
    assert {r["kind"] for r in rows} >= {"group", "service_type", "service_unit", "outcome"}
    groups = codes(cli, "group")
    assert groups["LANSIA_TERLANTAR"]["name_en"] == "Neglected older persons"
    assert codes(cli, "service_type")["PELATIHAN_VOKASIONAL"]["phase"] == "empowerment"
    assert codes(cli, "service_unit")["LPSK_RUMAH_AMAN"]["agency"] == "LPSK"


def test_add_then_retire_a_case_type(cli: Cli) -> None:
    added = json.loads(
        cli.ok(
            "taxonomy", "add", "case_type", "PERUNDUNGAN_DARING",
            "--name", "Perundungan daring", "--name-en", "Cyberbullying",
            "--description", "Bullying through electronic media.",
            "--description-id", "Perundungan melalui media elektronik.",
        ).stdout
    )  # fmt: skip
    assert added["active"] is True and added["name_en"] == "Cyberbullying"
    assert codes(cli, "case_type")["PERUNDUNGAN_DARING"]["description_id"].startswith("Perund")
    retired = json.loads(cli.ok("taxonomy", "retire", "case_type", "PERUNDUNGAN_DARING").stdout)
    assert retired["active"] is False
    assert codes(cli, "case_type")["PERUNDUNGAN_DARING"]["active"] is False
    assert [d["code"] for d in audited(cli, "taxonomy.add")] == ["PERUNDUNGAN_DARING"]
    assert audited(cli, "taxonomy.retire") == [{"kind": "case_type", "code": "PERUNDUNGAN_DARING"}]
    assert json.loads(cli.ok("audit", "verify").stdout)["valid"]
    one_line_error(
        cli.run("taxonomy", "retire", "case_type", "PERUNDUNGAN_DARING"), "already retired"
    )
    one_line_error(
        cli.run("taxonomy", "add", "case_type", "PERUNDUNGAN_DARING", "--name", "x",
                "--name-en", "y"),
        "already exists", "retired",
    )  # fmt: skip


def test_add_kind_specific_fields(cli: Cli) -> None:
    unit = json.loads(
        cli.ok(
            "taxonomy", "add", "service_unit", "SENTRA_CONTOH", "--name", "Sentra Contoh",
            "--name-en", "Sentra Contoh", "--agency", "KEMENSOS", "--approach", "residential",
            "--region", "Kota Contoh",
        ).stdout
    )  # fmt: skip
    assert (unit["agency"], unit["approach"], unit["region"]) == (
        "KEMENSOS", "residential", "Kota Contoh"
    )
    kind = json.loads(
        cli.ok(
            "taxonomy", "add", "service_type", "TERAPI_SENI", "--name", "Terapi seni",
            "--name-en", "Art therapy", "--phase", "rehabilitation",
        ).stdout
    )  # fmt: skip
    assert kind["phase"] == "rehabilitation"


NAMES = ["--name", "Nama", "--name-en", "Name"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["grup", "KODE_BARU", *NAMES], ["unknown kind", "did you mean group", "case_type"]),
        (["outcome", "KODE_BARU", *NAMES], ["release", "decline_reason"]),
        (["case_type", "kode-baru", *NAMES], ["capital letters"]),
        (["case_type", "KODE_BARU", "--name", "Nama"], ["--name-en"]),
        (["case_type", "KODE_BARU", *NAMES, "--description", "Only English"],
         ["both languages", "--description-id"]),
        (["service_type", "KODE_BARU", *NAMES], ["--phase", "rehabilitation or empowerment"]),
        (["service_type", "KODE_BARU", *NAMES, "--phase", "therapy"], ["--phase"]),
        (["service_unit", "KODE_BARU", *NAMES, "--agency", "NOWHERE", "--approach", "family"],
         ["unknown agency", "KEMENHAM, KEMENSOS, LPSK"]),
        (["service_unit", "KODE_BARU", *NAMES, "--agency", "LPSK"],
         ["--approach", "residential, family, community"]),
        (["group", "KODE_BARU", *NAMES, "--phase", "empowerment"], ["--phase", "does not apply"]),
        (["group", "ANAK_RENTAN", *NAMES], ["already exists", "active"]),
    ],
    ids=[
        "unknown kind", "outcome", "code format", "no English name", "one language",
        "no phase", "bad phase", "unknown agency", "no approach", "stray option", "exists",
    ],
)  # fmt: skip
def test_add_refuses_bad_input(cli: Cli, args: list[str], words: list[str]) -> None:
    before = json.loads(cli.ok("taxonomy", "list").stdout)
    one_line_error(cli.run("taxonomy", "add", *args), *words)
    assert json.loads(cli.ok("taxonomy", "list").stdout) == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["case_type", "TPP"], ["no case_type TPP", "did you mean TPPO"]),
        (["consent_purpose", "REFERRAL"], ["cannot be retired"]),
        (["outcome", "completed"], ["release"]),
    ],
    ids=["unknown code", "implied purpose", "outcome"],
)
def test_retire_refuses_bad_input(cli: Cli, args: list[str], words: list[str]) -> None:
    one_line_error(cli.run("taxonomy", "retire", *args), *words)


def test_list_refuses_an_unknown_kind(cli: Cli) -> None:
    one_line_error(cli.run("taxonomy", "list", "--kind", "groups"), "did you mean group")


def test_help_says_when_running_servers_see_a_change(cli: Cli) -> None:
    for command in ("add", "retire"):
        text = " ".join(cli.ok("taxonomy", command, "--help").stdout.replace("│", " ").split())
        assert "within 30 seconds" in text, text
