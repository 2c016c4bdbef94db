"""Writes of concurrent requests committed together on SQLite (`Database.write`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from service.db import Database, upgrade_to_head
from service.db.writes import Writes
from service.requestctx import request_id
from tests.support import writer_session


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'group.db'}"
    upgrade_to_head(url)
    database = Database(url)
    yield database
    database.dispose()


def _insert(year: int) -> Callable[[Writes], int]:
    def work(w: Writes) -> int:
        w.session.execute(
            text("INSERT INTO reference_counter (year, last) VALUES (:y, 1)"), {"y": year}
        )
        return year

    return work


def _years(db: Database) -> list[int]:
    with db.reader() as session:
        return list(
            session.execute(text("SELECT year FROM reference_counter ORDER BY year")).scalars()
        )


def _commits(db: Database) -> list[int]:
    seen: list[int] = []

    @event.listens_for(db.engine, "commit")
    def _count(conn: Any) -> None:
        seen.append(1)

    return seen


def _while_the_lock_is_held(db: Database, works: list[Callable[[Writes], Any]]) -> list[Any]:
    """Start one thread per work while this thread holds the write lock, let them all queue
    for it, then let go; what each thread got back (its result or its exception)."""
    outcomes: list[Any] = [None] * len(works)

    def call(i: int) -> None:
        request_id.set(f"request-{i}")
        try:
            outcomes[i] = db.write(works[i])
        except Exception as error:  # noqa: BLE001 - the outcome under test
            outcomes[i] = error

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(works))]
    with writer_session(db) as holder:
        holder.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: the lock is held
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(db._group._waiting) < len(works) and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.01)
        holder.rollback()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_writes_waiting_for_the_lock_together_share_one_commit(db: Database) -> None:
    commits = _commits(db)
    outcomes = _while_the_lock_is_held(db, [_insert(2001 + i) for i in range(4)])
    assert outcomes == [2001, 2002, 2003, 2004]  # each caller gets its own result
    assert _years(db) == [2001, 2002, 2003, 2004]
    assert len(commits) == 1


def test_a_failing_write_is_rolled_back_alone_and_its_caller_gets_its_error(
    db: Database,
) -> None:
    def half_then_fail(w: Writes) -> None:
        _insert(2099)(w)
        raise ValueError("refused")

    outcomes = _while_the_lock_is_held(db, [_insert(2001), half_then_fail, _insert(2003)])
    assert outcomes[0] == 2001 and outcomes[2] == 2003
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "refused"
    assert _years(db) == [2001, 2003]


def test_a_duplicate_in_the_group_fails_alone(db: Database) -> None:
    """Two writes of one unique key in one group: the second fails on the index (as it
    would in a transaction of its own), the first commits."""
    outcomes = _while_the_lock_is_held(db, [_insert(2001), _insert(2001), _insert(2002)])
    assert outcomes[0] == 2001 and outcomes[2] == 2002
    assert isinstance(outcomes[1], IntegrityError)
    assert _years(db) == [2001, 2002]


def test_a_failed_commit_reaches_every_caller_of_the_group_and_keeps_nothing(
    db: Database,
) -> None:
    @event.listens_for(db.engine, "commit")
    def _fail(conn: Any) -> None:
        raise RuntimeError("disk full")

    outcomes = _while_the_lock_is_held(db, [_insert(2001), _insert(2002)])
    event.remove(db.engine, "commit", _fail)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert _years(db) == []
    # The lock was given back: the next write goes through.
    assert db.write(_insert(2005)) == 2005
    assert _years(db) == [2005]


def test_each_write_runs_with_its_own_callers_request_id(db: Database) -> None:
    """The audit trail records the request id of the request that wrote the entry, even when
    another request's thread commits it."""
    outcomes = _while_the_lock_is_held(db, [lambda _s: request_id.get() for _ in range(3)])
    assert outcomes == ["request-0", "request-1", "request-2"]


def test_a_caller_alone_commits_at_once(db: Database) -> None:
    commits = _commits(db)
    assert db.write(_insert(2001)) == 2001
    assert db.write(_insert(2002)) == 2002
    assert len(commits) == 2
    assert _years(db) == [2001, 2002]


def test_a_write_that_rolls_back_the_group_cannot_take_the_others_with_it(
    db: Database,
) -> None:
    """A work must not end the transaction it is given; if one does, the writes it undid are
    answered with an error (never as committed), and the writes after it still commit."""

    def rolls_back(w: Writes) -> None:
        w.session.rollback()

    outcomes = _while_the_lock_is_held(db, [_insert(2001), rolls_back, _insert(2003)])
    assert isinstance(outcomes[0], RuntimeError)
    assert isinstance(outcomes[1], Exception)
    assert outcomes[2] == 2003
    assert _years(db) == [2003]


def test_a_write_inside_a_write_is_refused_rather_than_waiting_forever(db: Database) -> None:
    def nested(w: Writes) -> int:
        return db.write(_insert(2002))

    outcomes = _while_the_lock_is_held(db, [_insert(2001), nested])
    assert outcomes[0] == 2001
    assert isinstance(outcomes[1], RuntimeError)
    assert _years(db) == [2001]
