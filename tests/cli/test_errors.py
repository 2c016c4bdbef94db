"""Every `rujukan` command has --help, and bad input ends in one clear line, never a traceback.

The commands are read from the CLI itself, so a command added later is covered too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import typer

from service.cli import app
from tests.support.cli import cli_environment, command_paths, one_line_error
from tests.support.cli import run as run_rujukan

COMMANDS = command_paths(typer.main.get_command(app))


def run(
    args: list[str], tmp_path: Path, *, process: bool = False, **env: str
) -> subprocess.CompletedProcess[str]:
    """`rujukan ARGS` on a database that does not exist and keys under `tmp_path/keys`."""
    environment = cli_environment(f"sqlite:///{tmp_path / 'never-created.db'}", tmp_path / "keys")
    environment.update(env)
    return run_rujukan(args, environment, tmp_path, process=process)


def test_the_walk_finds_the_known_commands() -> None:
    found = {" ".join(path) for path in COMMANDS}
    assert {"serve", "migrate", "client create", "keys init", "audit verify"} <= found


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "rujukan")
def test_every_command_answers_help(command: tuple[str, ...], tmp_path: Path) -> None:
    result = run([*command, "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    # Help touches neither the database nor the keys.
    assert not (tmp_path / "never-created.db").exists()
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["no-such-command"], ["no-such-command", "rujukan --help"]),
        (["serve", "--workers", "0"], ["--workers", "rujukan serve --help"]),
        (["client", "create", "--agency", "LPSK", "--name", "X"], ["--scope"]),
        (["purge", "--closed-before", "last-week"], ["--closed-before"]),
        (["client", "list", "--colour"], ["--colour"]),
    ],
    ids=["unknown command", "bad value", "missing option", "bad date", "unknown option"],
)
def test_bad_command_lines_get_one_clear_line(
    args: list[str], words: list[str], tmp_path: Path
) -> None:
    # The unknown command as the installed console script; `serve` never runs in this process.
    result = run(args, tmp_path, process=args[0] in ("no-such-command", "serve"))
    one_line_error(result, *words)
    assert result.returncode == 2


def test_a_malformed_database_url_is_named_not_echoed(tmp_path: Path) -> None:
    result = run(
        ["client", "list"], tmp_path, process=True, RUJUKAN_DATABASE_URL="postgres//admin:s3cret@db"
    )
    line = one_line_error(result, "RUJUKAN_DATABASE_URL")
    assert "s3cret" not in result.stdout + result.stderr, line


@pytest.mark.parametrize("command", [["migrate"], ["client", "list"]])
def test_an_unreachable_database_is_one_line(command: list[str], tmp_path: Path) -> None:
    # Port 1 on loopback refuses at once.
    url = "postgresql+psycopg://rujukan:pw-not-shown@127.0.0.1:1/rujukan"
    result = run(command, tmp_path, RUJUKAN_DATABASE_URL=url)
    one_line_error(result, "database", "reachable")
    assert "pw-not-shown" not in result.stdout + result.stderr


def test_prod_with_a_missing_key_file_is_one_line(tmp_path: Path) -> None:
    result = run(["client", "list"], tmp_path, RUJUKAN_ENV="prod")
    one_line_error(result, "signing key file", "does not exist")
    assert not (tmp_path / "keys").exists(), "prod must not generate keys"


def test_keys_init_writes_prod_keys_once(tmp_path: Path) -> None:
    first = run(["keys", "init"], tmp_path, RUJUKAN_ENV="prod")
    assert first.returncode == 0, first.stderr
    signing = tmp_path / "keys" / "signing-keys.pem"
    data = tmp_path / "keys" / "data-keys.json"
    assert signing.stat().st_mode & 0o077 == 0 and data.stat().st_mode & 0o077 == 0
    before = (signing.read_bytes(), data.read_bytes())
    again = run(["keys", "init"], tmp_path, RUJUKAN_ENV="prod")
    one_line_error(again, "refusing to overwrite")
    assert (signing.read_bytes(), data.read_bytes()) == before
    # prod accepts these keys: the command gets as far as the (absent) schema.
    listed = run(["client", "list"], tmp_path, RUJUKAN_ENV="prod")
    one_line_error(listed, "rujukan migrate")
