"""Signed heads written by the worker outside the database, and `rujukan audit verify --heads`.

Deleting the newest entries leaves a valid, shorter chain; the heads the worker keeps writing
(every RUJUKAN_AUDIT_HEAD_INTERVAL_SECONDS and when it stops) show what was cut, so a
truncation goes unnoticed for at most one interval.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.audit.head import HeadWriter
from service.db import upgrade_to_head
from service.events.dispatcher import BackgroundDispatcher
from tests.support.cli import RUJUKAN
from tests.support.operator import Operator, truncate


def heads_in(directory: Path) -> list[dict[str, Any]]:
    """Every head line in the directory's head files, in the order written."""
    lines: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl")):
        lines.extend(json.loads(line) for line in path.read_text().splitlines() if line)
    return lines


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def operator(backend: str, new_database_url, tmp_path: Path) -> Operator:  # type: ignore[no-untyped-def]
    op = Operator(new_database_url(backend), tmp_path)
    upgrade_to_head(op.url)
    return op


def test_the_worker_writes_a_head_when_it_starts_on_schedule_and_when_it_stops(
    operator: Operator, tmp_path: Path
) -> None:
    directory = tmp_path / "heads"
    now = [0.0]
    with operator.service() as ctx:
        writer = HeadWriter(ctx, directory, interval=300, clock=lambda: now[0])
        worker = BackgroundDispatcher(ctx, heads=writer).start()
        try:
            wait_for(lambda: len(heads_in(directory)) == 1)
            operator.write(2)
            now[0] = 299.0
            time.sleep(0.6)  # a few turns of the worker's loop: nothing is due yet
            assert len(heads_in(directory)) == 1
            now[0] = 300.0
            wait_for(lambda: len(heads_in(directory)) == 2)
            operator.write(3)
        finally:
            worker.stop()
    started, scheduled, stopped = heads_in(directory)
    assert (started["count"], scheduled["count"], stopped["count"]) == (0, 2, 5)
    assert stopped["last_id"] == 5 and stopped["key_id"] and stopped["mac"]
    # Append-only files of the worker's own, readable by it alone.
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in directory.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert operator.verify("--heads", str(directory))["heads"] == 3


def test_rujukan_worker_writes_heads_and_a_last_one_on_sigterm(
    operator: Operator, tmp_path: Path
) -> None:
    directory = tmp_path / "heads"
    operator.env.update(
        RUJUKAN_AUDIT_HEAD_DIR=str(directory), RUJUKAN_AUDIT_HEAD_INTERVAL_SECONDS="0.2"
    )
    operator.write(2)
    worker = subprocess.Popen(
        [str(RUJUKAN), "worker"], env=operator.environment(), cwd=operator.key_dir,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: len(heads_in(directory)) >= 2)
        operator.write(1)
        wait_for(lambda: heads_in(directory)[-1]["count"] == 3)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    written = len(heads_in(directory))
    operator.write(1)
    assert heads_in(directory)[-1]["count"] == 3  # the last, written as it stopped
    assert operator.verify("--heads", str(directory))["heads"] == written


def test_a_truncation_after_a_head_is_detected(operator: Operator, tmp_path: Path) -> None:
    directory = tmp_path / "heads"
    operator.write(4)
    with operator.service() as ctx:
        HeadWriter(ctx, directory, interval=300).write()
        operator.write(3)
        HeadWriter(ctx, directory, interval=300).write()
    operator.write(2)  # after the last head: a truncation of these is not detectable
    truncate(operator.url, 8)
    assert operator.verify("--heads", str(directory))["entries"] == 7
    truncate(operator.url, 6)
    # The chain alone still verifies; the second head (7 entries) names what is missing.
    assert operator.verify()["entries"] == 5
    [head_file] = directory.glob("*.jsonl")
    operator.fails(
        "audit", "verify", "--heads", str(directory),
        naming=["audit entry 7", "truncated", f"{head_file.name}:2"],
    )  # fmt: skip


def test_a_heads_directory_without_heads_is_refused(operator: Operator, tmp_path: Path) -> None:
    operator.write(1)
    (tmp_path / "empty").mkdir()
    operator.fails("audit", "verify", "--heads", str(tmp_path / "empty"), naming=["no audit heads"])
    operator.fails("audit", "verify", "--heads", str(tmp_path / "absent"), naming=["directory"])


def test_without_a_head_directory_no_heads_are_written_and_prod_warns(
    operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    with operator.service() as ctx:
        assert HeadWriter.from_settings(ctx) is None
        assert "RUJUKAN_AUDIT_HEAD_DIR" not in caplog.text  # dev: nothing to warn about
        prod = dataclasses.replace(ctx, settings=ctx.settings.model_copy(update={"env": "prod"}))
        assert HeadWriter.from_settings(prod) is None
    assert "RUJUKAN_AUDIT_HEAD_DIR is not set" in caplog.text
