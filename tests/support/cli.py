"""The `rujukan` command in tests: one runner, in this process or as the installed script.

In this process, a command goes through `service.cli.main`, the function the console script
calls, so parsing, error handling, exit codes and the separate stdout and stderr are the
script's own, without a second or two of interpreter start per command. It sees exactly the
environment it is given (this process's RUJUKAN_ variables are hidden), the settings cache is
cleared before and after it, and every service context it builds is disposed of when it ends.

A test whose point is the process boundary (the console script itself, serving, a worker that
runs until stopped, signals) runs the installed command: `Cli(..., process=True)`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from service.config import get_settings
from service.context import ServiceContext

# The installed `rujukan` command, beside the interpreter running the tests.
RUJUKAN = Path(sys.executable).parent / "rujukan"


def cli_environment(url: str, key_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `rujukan` command on one database and key directory: this
    process's own without its RUJUKAN_ settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUJUKAN_")}
    env.update(
        RUJUKAN_DATABASE_URL=url,
        RUJUKAN_SIGNING_KEY_FILE=str(key_dir / "signing-keys.pem"),
        RUJUKAN_DATA_KEY_FILE=str(key_dir / "data-keys.json"),
        **extra,
    )
    return env


def _runs_until_stopped(args: Sequence[str]) -> bool:
    if "--help" in args:
        return False
    return bool(args) and (args[0] == "serve" or (args[0] == "worker" and "--once" not in args))


def run_command(
    args: Sequence[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`rujukan ARGS` as the installed console script, in a process of its own."""
    return subprocess.run(
        [str(RUJUKAN), *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


@contextmanager
def _as_the_console_script(args: Sequence[str], cwd: Path | None) -> Iterator[None]:
    """This process as the console script would be: its argv, a __main__ without a package
    (click names the program after argv[0] then), the working directory, fresh settings; the
    service contexts built meanwhile are disposed of at the end."""
    saved_argv, saved_main, saved_cwd = sys.argv, sys.modules["__main__"], os.getcwd()
    build = ServiceContext.__dict__["build"]
    built: list[ServiceContext] = []

    def recording_build(cls: type[ServiceContext], *a: object, **kw: object) -> ServiceContext:
        context = build.__func__(cls, *a, **kw)
        built.append(context)
        return context  # type: ignore[no-any-return]

    sys.argv = [str(RUJUKAN), *args]
    sys.modules["__main__"] = types.ModuleType("__main__")
    ServiceContext.build = classmethod(recording_build)  # type: ignore[method-assign,assignment]
    get_settings.cache_clear()
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        ServiceContext.build = build  # type: ignore[method-assign]
        sys.modules["__main__"] = saved_main
        sys.argv = saved_argv
        get_settings.cache_clear()
        for context in built:
            context.db.dispose()


def run_in_process(
    args: Sequence[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`rujukan ARGS` through the console script's entry point, in this process."""
    from service.cli import main

    assert not _runs_until_stopped(args), f"`rujukan {' '.join(args)}` needs a process of its own"
    # Exactly `env`: what this process has beyond it is hidden for the command's duration.
    overrides: dict[str, str | None] = {k: None for k in os.environ if k not in env}
    overrides.update(env)
    code: int = 0
    with (
        _as_the_console_script(args, cwd),
        CliRunner().isolation(env=overrides) as (stdout, stderr, _),
    ):
        try:
            main()
        except SystemExit as exit_:
            if isinstance(exit_.code, str):
                sys.stderr.write(exit_.code + "\n")
                code = 1
            else:
                code = exit_.code or 0
        sys.stdout.flush()
        sys.stderr.flush()
        out, err = stdout.getvalue(), stderr.getvalue()
    return subprocess.CompletedProcess(
        [str(RUJUKAN), *args], code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    )


def run(
    args: Sequence[str], env: dict[str, str], cwd: Path | None = None, *, process: bool = False
) -> subprocess.CompletedProcess[str]:
    """`rujukan ARGS` in this process, or as the installed script when `process` is set."""
    if process:
        return run_command(args, env, cwd)
    return run_in_process(args, env, cwd)


@dataclass
class Cli:
    """The CLI bound to one database and key directory."""

    url: str
    key_dir: Path
    workdir: Path
    # Run as the installed console script, in a process of its own, instead of in this one.
    process: bool = False

    @property
    def env(self) -> dict[str, str]:
        return cli_environment(self.url, self.key_dir)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(args, self.env, self.workdir, process=self.process)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def create_client(self, scope: str = "referrals:read", agency: str = "LPSK") -> dict[str, str]:
        result = self.ok("client", "create", "--agency", agency, "--name", "X", "--scope", scope)
        return json.loads(result.stdout)  # type: ignore[no-any-return]


def make_cli(backend: str, new_database_url, tmp_path: Path) -> Cli:  # type: ignore[no-untyped-def]
    """The CLI on a fresh, empty database of `backend` and a key directory under `tmp_path`."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Cli(new_database_url(backend), tmp_path / "keys", workdir)


def command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of a click command, as the words that name it."""
    paths = [prefix]
    for name, child in sorted(getattr(command, "commands", {}).items()):
        if not getattr(child, "hidden", False):
            paths.extend(command_paths(child, (*prefix, name)))
    return paths


def assert_clean_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """A failed command that names `words` and shows no traceback."""
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    for word in words:
        assert word.lower() in output.lower(), output


def one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """A failed command whose stderr is one `error: ` line naming `words`; that line."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    return lines[0]
