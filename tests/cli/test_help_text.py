"""Every command's --help as an operator reads it in an 80-column terminal: nothing cut off
with an ellipsis, no line broken before the words that would have fitted on it."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from service.cli import app
from tests.support.cli import cli_environment, command_paths, run

pytestmark = pytest.mark.one_database

COMMANDS = command_paths(typer.main.get_command(app))
WIDTH = 80


def help_at_80_columns(command: tuple[str, ...], tmp_path: Path) -> str:
    env = cli_environment(f"sqlite:///{tmp_path / 'never.db'}", tmp_path / "keys")
    env.update(COLUMNS=str(WIDTH), TERMINAL_WIDTH=str(WIDTH))
    result = run([*command, "--help"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout


def early_breaks(text: str, width: int = WIDTH) -> list[str]:
    """Pairs of lines where a line of help ends before the next line's first word, which
    would have fitted on it: a line break in the middle of a sentence, not a wrap."""
    found = []
    lines = text.splitlines()
    for above, below in zip(lines, lines[1:], strict=False):
        if above.startswith("│") and below.startswith("│"):
            # Inside a panel: one space of padding before the right border.
            inner_above, inner_below, right = above[1:-1], below[1:-1], len(above) - 3
        elif any(c in above + below for c in "│─╭╰"):
            continue
        else:
            inner_above, inner_below, right = above, below, width - 1
        if not inner_above.strip() or not inner_below.strip():
            continue
        start = len(inner_below) - len(inner_below.lstrip())
        tail = inner_above[start:].rstrip()
        # `below` goes on with the last column of `above` (it starts where that column does);
        # a metadata item (`[required]`, `[default: …]`) has a line of its own.
        continues = (
            start > 0
            and inner_above[start - 1] == " "
            and tail
            and tail[0] != " "
            and "  " not in tail
            and not inner_below.lstrip().startswith("[")
        )
        word = inner_below.split()[0]
        if continues and len(inner_above.rstrip()) + 1 + len(word) <= right:
            found.append(f"{above.rstrip()}\n{below.rstrip()}")
    return found


def test_the_check_finds_an_early_break() -> None:
    wrapped = " A sentence that goes on\n and on to the end.\n"
    assert early_breaks(wrapped)
    assert not early_breaks(" " + "word " * 15 + "\n longword after a full line.\n")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "rujukan")
def test_help_fits_80_columns_without_cuts_or_early_breaks(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    text = help_at_80_columns(command, tmp_path)
    assert "…" not in text, text
    assert all(len(line) <= WIDTH for line in text.splitlines()), text
    assert early_breaks(text) == [], text


def test_report_help_names_the_report_extra(tmp_path: Path) -> None:
    text = " ".join(help_at_80_columns(("report",), tmp_path).replace("│", " ").split())
    assert "pip install 'rujukan[report]'" in text, text
