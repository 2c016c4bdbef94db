"""The operator commands: agency, agreement, report and demo."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import json
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select, text

from service.app import create_app
from service.config import Settings
from service.context import ServiceContext
from service.demo.loader import DemoError, load_demo
from service.referrals.models import Referral, ReferralHistory
from tests.support import OUTCOMES
from tests.support.cli import Cli, assert_clean_failure, make_cli, run
from tests.support.databases import POSTGRES_URL, make_settings
from tests.support.operator import owner_session
from tests.support.roles import owner_and_service_roles
from tests.support.tokens import form_token, token_status


@pytest.fixture(scope="module")
def cli(backend: str, new_database_url, tmp_path_factory: pytest.TempPathFactory) -> Cli:  # type: ignore[no-untyped-def]
    made = make_cli(backend, new_database_url, tmp_path_factory.mktemp("ops"))
    made.ok("migrate")
    return made


@pytest.fixture(scope="module")
def demo_cli(backend: str, new_database_url, tmp_path_factory: pytest.TempPathFactory) -> Cli:  # type: ignore[no-untyped-def]
    """A database filled by `rujukan demo`."""
    made = make_cli(backend, new_database_url, tmp_path_factory.mktemp("demo"))
    made.ok("migrate")
    result = made.ok("demo")
    assert json.loads(result.stdout)["referrals"] >= 120
    return made


@pytest.fixture(scope="module")
def demo_ctx(demo_cli: Cli) -> Iterator[ServiceContext]:
    ctx = ServiceContext.build(make_settings(demo_cli.url, demo_cli.key_dir))
    yield ctx
    ctx.db.dispose()


def agreements(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli.ok("agreement", "list").stdout)  # type: ignore[no-any-return]


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["agency"],
        ["agency", "add"],
        ["agency", "list"],
        ["agreement"],
        ["agreement", "add"],
        ["agreement", "list"],
        ["agreement", "end"],
        ["report"],
        ["demo"],
    ],
    ids=" ".join,
)
def test_help(command: list[str], tmp_path: Path) -> None:
    cli = Cli(f"sqlite:///{tmp_path / 'never.db'}", tmp_path / "keys", tmp_path)
    result = cli.run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert not (tmp_path / "never.db").exists()


# --- agreements and agencies -------------------------------------------------------------------


def test_dev_migrate_registers_the_three_agreements_once(cli: Cli) -> None:
    cli.ok("migrate")
    dev = [a for a in agreements(cli) if a["number"].startswith("DEV/MOU/")]
    assert sorted(a["number"] for a in dev) == [
        "DEV/MOU/KEMENHAM-KEMENSOS",
        "DEV/MOU/KEMENHAM-LPSK",
        "DEV/MOU/KEMENSOS-LPSK",
    ]
    assert all(a["in_force"] and a["kind"] == "MoU" for a in dev)


def test_prod_migrate_registers_no_agreement(
    backend: str,
    new_database_url,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    cli = make_cli(backend, new_database_url, tmp_path)
    env = {**cli.env, "RUJUKAN_ENV": "prod"}
    with contextlib.ExitStack() as stack:
        if backend == "postgresql":
            # prod migrates as the owner, for another role to serve (docs/deploying.md, step 3)
            roles = stack.enter_context(owner_and_service_roles(POSTGRES_URL or ""))
            env.update(
                RUJUKAN_DATABASE_URL=roles.service_url,
                RUJUKAN_MIGRATION_DATABASE_URL=roles.owner_url,
            )
        result = run(["migrate"], env, cli.workdir)
        assert result.returncode == 0, result.stderr
        engine = create_engine(env["RUJUKAN_DATABASE_URL"])
        try:
            with engine.connect() as conn:
                assert conn.execute(text("SELECT COUNT(*) FROM agreement")).scalar_one() == 0
        finally:
            engine.dispose()


def test_agreement_add_list_end(cli: Cli) -> None:
    added = json.loads(
        cli.ok(
            "agreement",
            "add",
            "PKS/07/LPSK-KEMENSOS/2026",
            "--kind",
            "pks",
            "--agency",
            "LPSK",
            "--agency",
            "KEMENSOS",
            "--valid-from",
            "2026-01-01",
            "--valid-until",
            "2028-12-31",
            "--group",
            "KORBAN_KEKERASAN",
            "--case-type",
            "TPPO",
        ).stdout
    )
    assert added == {
        "number": "PKS/07/LPSK-KEMENSOS/2026",
        "kind": "PKS",
        "agencies": ["KEMENSOS", "LPSK"],
        "valid_from": "2026-01-01",
        "valid_until": "2028-12-31",
        "groups": ["KORBAN_KEKERASAN"],
        "case_types": ["TPPO"],
        "ended_at": None,
        "in_force": True,
        "in_force_for": {"KEMENSOS": True, "LPSK": True},
    }
    assert added in agreements(cli)
    ended = json.loads(cli.ok("agreement", "end", "PKS/07/LPSK-KEMENSOS/2026").stdout)
    assert ended["in_force"] is False and ended["ended_at"] is not None
    assert_clean_failure(cli.run("agreement", "end", "PKS/07/LPSK-KEMENSOS/2026"), "already ended")
    verified = json.loads(cli.ok("audit", "verify").stdout)
    assert verified["valid"] is True


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--agency", "LPSK"], ["exactly two agencies"]),
        (["--agency", "LPSK", "--agency", "NOWHERE"], ["unknown agency", "agency add"]),
        (["--agency", "LPSK", "--agency", "KEMENSOS", "--kind", "LOI"], ["kind must be"]),
        (["--agency", "LPSK", "--agency", "KEMENSOS", "--valid-from", "soon"], ["YYYY-MM-DD"]),
        (["--agency", "LPSK", "--agency", "KEMENSOS", "--group", "NOPE"], ["unknown code"]),
    ],
)
def test_agreement_add_refuses_bad_input(cli: Cli, args: list[str], words: list[str]) -> None:
    base = {"--kind": "MoU", "--valid-from": "2026-01-01"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag in base:
            base[flag] = value
    rest = [a for pair in base.items() for a in pair]
    extra = [a for i in range(0, len(args), 2) if args[i] not in base for a in args[i : i + 2]]
    assert_clean_failure(cli.run("agreement", "add", "MOU/BAD", *rest, *extra), *words)


def test_an_agency_has_a_time_zone_that_can_change(cli: Cli, backend: str) -> None:
    code = f"DINSOS_SULSEL_{backend[:2].upper()}"
    name = "Dinas Sosial Sulawesi Selatan"
    added = cli.ok("agency", "add", code, "--name", name, "--time-zone", "Asia/Makassar")
    assert json.loads(added.stdout)["time_zone"] == "Asia/Makassar"
    changed = json.loads(cli.ok("agency", "set-time-zone", code, "Asia/Jayapura").stdout)
    assert changed == {"code": code, "name": name, "time_zone": "Asia/Jayapura"}
    assert changed in json.loads(cli.ok("agency", "list").stdout)
    for bad in ("Asia/Jkarta", "WITA", "+08:00"):
        assert_clean_failure(cli.run("agency", "set-time-zone", code, bad), "unknown time zone")
        other = f"{code}_X"
        assert_clean_failure(
            cli.run("agency", "add", other, "--name", "x", "--time-zone", bad), "unknown time zone"
        )
    assert_clean_failure(cli.run("agency", "set-time-zone", "NOWHERE", "Asia/Jakarta"), "unknown")
    with owner_session(cli.url) as session:
        audited = session.execute(
            text("SELECT action FROM audit_entry WHERE action LIKE 'agency.%' ORDER BY id")
        ).scalars().all()
    assert audited[-2:] == ["agency.add", "agency.set_time_zone"]


def test_agency_add_then_a_client_of_it_gets_tokens(cli: Cli, backend: str) -> None:
    code = f"DINSOS_JATIM_{backend[:2].upper()}"
    added = json.loads(cli.ok("agency", "add", code, "--name", "Dinas Sosial Jawa Timur").stdout)
    shown = {"code": code, "name": "Dinas Sosial Jawa Timur", "time_zone": "Asia/Jakarta"}
    assert added == shown
    listed = json.loads(cli.ok("agency", "list").stdout)
    assert shown in listed
    assert_clean_failure(cli.run("agency", "add", code, "--name", "Again"), "already exists")
    assert_clean_failure(cli.run("agency", "add", "dinsos", "--name", "x"), "capital letters")
    client = cli.create_client("referrals:read referrals:write", agency=code)
    ctx = ServiceContext.build(make_settings(cli.url, cli.key_dir))
    try:
        with TestClient(create_app(ctx=ctx), raise_server_exceptions=False) as http:
            assert token_status(http, client["client_id"], client["client_secret"]) == 200
    finally:
        ctx.db.dispose()


# --- demo -------------------------------------------------------------------------------------


def test_demo_covers_every_state_outcome_and_agency(demo_ctx: ServiceContext) -> None:
    with demo_ctx.db.reader() as session:
        rows = list(session.execute(select(Referral)).scalars())
        histories: dict[Any, list[ReferralHistory]] = {}
        for entry in session.execute(
            select(ReferralHistory).order_by(ReferralHistory.id)
        ).scalars():
            histories.setdefault(entry.referral_id, []).append(entry)
    assert {r.status for r in rows} == {"referred", "assessed", "served", "closed"}
    assert {r.closure_outcome for r in rows if r.closure_outcome} == OUTCOMES
    assert {r.from_agency for r in rows} == {"KEMENSOS", "LPSK", "KEMENHAM"}
    assert {r.to_agency for r in rows} == {"KEMENSOS", "LPSK", "KEMENHAM"}
    assert any(r.protected_identity for r in rows) and not all(r.protected_identity for r in rows)
    assert any(r.parent_id for r in rows)
    now = dt.datetime.now(dt.UTC)
    created = sorted(r.created_at for r in rows)
    assert created[-1] < now and now - created[0] > dt.timedelta(days=120)
    weeks = {c.isocalendar()[:2] for c in created}
    assert len(weeks) >= 20
    for row in rows:
        steps = histories[row.id]
        assert steps[0].occurred_at == row.created_at
        times = [h.occurred_at for h in steps]
        assert times == sorted(times) and times[-1] < now
        assert (row.status == "closed") == (row.due_at is None)
        if row.closed_at:
            assert row.closed_at == times[-1]


def test_demo_data_is_real_service_data(demo_cli: Cli, demo_ctx: ServiceContext) -> None:
    # Personal data is sealed and readable through the API only to the parties.
    with demo_ctx.db.reader() as session:
        raw = session.execute(select(Referral.subject_sealed)).scalars().first()
    assert raw is not None and "fiktif" not in raw
    client = demo_cli.create_client("referrals:read", agency="KEMENSOS")
    with TestClient(create_app(ctx=demo_ctx), raise_server_exceptions=False) as http:
        token = form_token(http, client["client_id"], client["client_secret"]).json()[
            "access_token"
        ]
        page = http.get(
            "/v1/referrals", params={"limit": 200}, headers={"Authorization": f"Bearer {token}"}
        ).json()
    open_names = [i["subject"]["full_name"] for i in page["items"] if not i["subject"]["sealed"]]
    assert open_names and all(name.endswith("(fiktif)") for name in open_names)
    assert all(i["summary"].startswith("[DEMO]") for i in page["items"] if i["summary"])
    verified = json.loads(demo_cli.ok("audit", "verify").stdout)
    assert verified["valid"] and verified["entries"] > 300


def test_demo_refuses_a_database_with_referrals(demo_cli: Cli) -> None:
    assert_clean_failure(demo_cli.run("demo"), "already holds", "empty database")


def test_demo_refuses_prod(tmp_path: Path) -> None:
    keys = {"signing_key_file": tmp_path / "s.pem", "data_key_file": tmp_path / "d.json"}
    prod = types.SimpleNamespace(settings=Settings(env="prod", **keys))
    with pytest.raises(DemoError, match="prod"):
        load_demo(prod)  # type: ignore[arg-type]


# --- report -----------------------------------------------------------------------------------


def test_report_json_is_the_api_figures(demo_cli: Cli, demo_ctx: ServiceContext) -> None:
    everyone = json.loads(demo_cli.ok("report").stdout)
    with demo_ctx.db.reader() as session:
        total = session.execute(select(func.count()).select_from(Referral)).scalar_one()
    assert everyone["agency"] is None and everyone["total"] == total
    assert sum(everyone["by_status"].values()) == total
    client = demo_cli.create_client("referrals:read", agency="LPSK")
    period = ["--from", "2026-01-01", "--to", dt.date.today().isoformat()]
    mine = json.loads(demo_cli.ok("report", "--agency", "LPSK", *period).stdout)
    with TestClient(create_app(ctx=demo_ctx), raise_server_exceptions=False) as http:
        token = form_token(http, client["client_id"], client["client_secret"]).json()[
            "access_token"
        ]
        api = http.get(
            "/v1/stats",
            params={"from": period[1], "to": period[3]},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
    for body in (mine, api):
        body.pop("generated_at")
    assert mine == api
    assert 0 < mine["total"] < total


def test_report_csv_has_one_row_per_figure(demo_cli: Cli) -> None:
    figures = json.loads(demo_cli.ok("report", "--agency", "KEMENSOS").stdout)
    rows = list(
        csv.DictReader(
            io.StringIO(demo_cli.ok("report", "--agency", "KEMENSOS", "--format", "csv").stdout)
        )
    )
    table = {(r["section"], r["key"]): r["value"] for r in rows}
    assert table[("total", "referrals")] == str(figures["total"])
    for status, n in figures["by_status"].items():
        assert table[("by_status", status)] == str(n)
    for step in figures["step_times"]:
        assert float(table[("step_times", f"{step['step']}.median_hours")]) == step["median_hours"]
    rate = figures["successful_referral_rate"]
    assert float(table[("successful_referral_rate", "rate")]) == rate["rate"]
    assert table[("overdue", "total")] == str(figures["overdue"]["total"])


def test_report_chart_is_a_png(demo_cli: Cli, tmp_path: Path) -> None:
    chart = tmp_path / "charts" / "monthly.png"
    result = demo_cli.ok("report", "--chart", str(chart))
    drawn = json.loads(result.stderr.strip().splitlines()[-1])
    assert drawn["weeks"] >= 20
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--format", "xml"], ["json or csv"]),
        (["--from", "2026-13-01"], ["YYYY-MM-DD"]),
        (["--from", "2026-03-01", "--to", "2026-02-01"], ["before"]),
        (["--agency", "NOWHERE"], ["unknown agency"]),
        (["--direction", "incoming"], ["needs an agency"]),
    ],
)
def test_report_refuses_bad_input(cli: Cli, args: list[str], words: list[str]) -> None:
    assert_clean_failure(cli.run("report", *args), *words)
