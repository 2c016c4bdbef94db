"""The SQLite group commit: the writes of a process's concurrent requests, committed together."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from contextlib import nullcontext, suppress
from typing import Any, Generic, TypeVar

from sqlmodel import Session

T = TypeVar("T")


class _Write(Generic[T]):
    """One caller's part of a group commit: its work, its context, and how it ended."""

    __slots__ = ("work", "context", "woken", "done", "result", "error", "handle")

    result: T  # set once the work has run, unless it raised (then `error` is set)

    def __init__(self, work: Callable[[Any], T]) -> None:
        self.work = work
        self.handle: Any = None  # the write object the work was given
        # The caller's context variables (its request id, read by the audit trail), so the
        # work runs as the caller's even when another thread commits it.
        self.context = contextvars.copy_context()
        self.woken = threading.Event()
        self.done = False
        self.error: BaseException | None = None


class GroupCommit:
    """Commits the writes of a worker's concurrent requests together, on SQLite.

    On SQLite every commit waits for the disk (synchronous=FULL: the WAL is synced before
    COMMIT returns), and that wait happens under the database's one write lock, which every
    writer of every worker process queues for. So when several of a process's threads wait
    to write, the first to get the lock (the leader) runs the waiting writes in one
    transaction, each in a savepoint of its own, and commits them with one sync. A write
    that fails is rolled back to its savepoint and its error goes to its own caller, the
    others commit; if the commit fails, every caller of the group gets that error. Nothing
    is answered before its commit: a caller returns once the transaction holding its write
    has committed.

    Leadership passes on: a leader commits one group and then wakes the oldest waiting
    caller to lead the next, so no request waits behind more than the group before its own.
    """

    def __init__(self, sessions: Callable[[], Any], begin: Callable[[Session], Any]) -> None:
        self._sessions = sessions
        # The write object a work is given (see `service.db.writes`), one per work.
        self._begin = begin
        self._lock = threading.Lock()
        self._waiting: list[_Write[Any]] = []
        self._leading = False
        self._leader: int | None = None  # the thread running a group's writes

    def run(self, work: Callable[[Any], T]) -> T:
        """Run `work` with a write object in the next group; its result, once committed."""
        if self._leader == threading.get_ident():
            # Its own group could not commit before this returned: it would wait forever.
            raise RuntimeError("Database.write called inside a write")
        write = _Write(work)
        with self._lock:
            self._waiting.append(write)
            lead = not self._leading
            self._leading = True
        if not lead:
            write.woken.wait()
        if not write.done:  # woken to lead, or leading from the start
            self._lead(write)
        if write.error is not None:
            raise write.error
        return write.result

    def _lead(self, own: _Write[Any]) -> None:
        try:
            with self._sessions() as session:
                try:
                    # The write lock first (BEGIN IMMEDIATE, after the gate): every write
                    # that arrives while this waits for it joins the group.
                    session.connection()
                except BaseException as error:
                    # No lock, no group: this caller gets the error, the next one leads.
                    with self._lock:
                        self._waiting.remove(own)
                    own.error, own.done = error, True
                    return
                with self._lock:
                    group, self._waiting = self._waiting, []
                self._leader = threading.get_ident()
                try:
                    self._commit_group(session, group)
                finally:
                    self._leader = None
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].woken.set()
                else:
                    self._leading = False

    def _commit_group(self, session: Session, group: list[_Write[Any]]) -> None:
        try:
            transaction = session.get_transaction()
            ran: list[_Write[Any]] = []  # the writes of the transaction open now
            for write in group:
                try:
                    # A write alone needs no savepoint: if it fails, the transaction is its own.
                    with session.begin_nested() if len(group) > 1 else nullcontext():
                        write.handle = self._begin(session)
                        write.result = write.context.run(write.work, write.handle)
                except BaseException as error:  # noqa: BLE001 - handed to its own caller
                    write.error = error
                if session.get_transaction() is not transaction:
                    # The work ended the group's transaction itself (a rollback or commit,
                    # which a work must not do): what ran in it is in doubt, so each of its
                    # writes fails, and the rest run in a transaction of their own.
                    for earlier in (*ran, write):
                        if earlier.error is None:
                            earlier.error = RuntimeError("a write ended its group's transaction")
                    with suppress(Exception):
                        session.rollback()
                    session.connection()
                    transaction, ran = session.get_transaction(), []
                    continue
                ran.append(write)
            if any(write.error is None for write in ran):
                session.commit()
                for write in ran:
                    if write.error is None:
                        write.handle.committed()
            else:
                session.rollback()
        except BaseException as error:  # noqa: BLE001 - the commit failed: every caller of
            # the group gets its error, even one whose own write failed first (that failure
            # may have been decided by what another write of the group did, never committed).
            for write in group:
                write.error = error
            with suppress(Exception):
                session.rollback()
        finally:
            for write in group:
                write.done = True
                write.woken.set()
