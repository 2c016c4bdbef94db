"""Signed heads of the audit trail, kept outside the database.

The chain alone cannot show that its newest entries were cut off. A head pins the count and
the last entry's hash at a moment; kept outside the database, it shows later that the trail
still holds that entry, unchanged. The webhook worker writes one every
`RUJUKAN_AUDIT_HEAD_INTERVAL_SECONDS` and when it stops (`HeadWriter`), so a truncation goes
unnoticed for at most one interval; `rujukan audit head` prints one on demand.

A head is one JSON line, authenticated with an HMAC under the active audit key: that key is
kept for as long as the entries it keyed, so a head stays verifiable for years (the token
signing key, which signed heads before, is retired by `rujukan keys rotate`). Heads signed
that way (compact JWS) are still read while their signing key is in the signing key file.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from service.audit.keys import AuditKeyring
from service.audit.models import AuditEntry
from service.audit.trail import verify_chain
from service.auth import tokens
from service.crypto import KeyFileError, private_directory
from service.db.types import utcnow
from service.times import wire

if TYPE_CHECKING:
    from service.context import ServiceContext

HEAD_TYPE = "rujukan-audit-head+jws"  # heads printed as JWS by earlier versions
LINE_TYPE = "rujukan-audit-head"
HEAD_FIELDS = ("count", "last_id", "last_hash", "signed_at")
_CHUNK = 500
log = logging.getLogger("rujukan.audit")


class HeadError(Exception):
    """The trail does not match the head, or the head cannot be trusted; the message says why."""


def head_as_read(session: Session) -> dict[str, Any]:
    """Count, id and hash of the newest entry, as the database holds them now.

    Not verified: checking the chain is the verifier's job (`rujukan audit verify` checks
    every entry and every head). A head only pins what was there; signing one over an
    altered chain vouches for nothing, since each entry's HMAC still fails to verify. So a
    head costs one indexed read, however long the trail (the count is the last id: ids are
    contiguous from 1 in a valid chain).
    """
    last = session.execute(
        select(col(AuditEntry.id), col(AuditEntry.hash))
        .order_by(col(AuditEntry.id).desc())
        .limit(1)
    ).first()
    return {
        "count": last[0] if last else 0,
        "last_id": last[0] if last else None,
        "last_hash": last[1] if last else None,
        "signed_at": wire(utcnow()),
    }


def current_head(session: Session, keys: AuditKeyring | None = None) -> dict[str, Any]:
    """The head as the trail stood when called, once the whole chain (up to there, and
    whatever was appended while it was checked) verifies; HeadError if it does not."""
    head = head_as_read(session)
    count, bad_id, reason = verify_chain(session, keys)
    if bad_id is not None:
        raise HeadError(f"audit entry {bad_id} is bad: {reason}; refusing to sign this chain")
    if head["last_id"] is not None:
        now = session.execute(
            select(col(AuditEntry.hash)).where(col(AuditEntry.id) == head["last_id"])
        ).scalar_one_or_none()
        if count < head["count"] or now != head["last_hash"]:
            raise HeadError("the trail changed while it was checked; refusing to sign it")
    return head


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


def seal_head(head: dict[str, Any], keys: AuditKeyring) -> str:
    """The head as one JSON line with an HMAC under the active audit key."""
    body = {"type": LINE_TYPE, **{k: head[k] for k in HEAD_FIELDS}, "key_id": keys.active}
    return json.dumps(
        {**body, "mac": keys.mac(keys.active, _canonical(body))},
        sort_keys=True,
        separators=(",", ":"),
    )


def _well_formed(head: dict[str, Any]) -> dict[str, Any]:
    count, last_id, last_hash = head.get("count"), head.get("last_id"), head.get("last_hash")
    well_formed = (
        isinstance(count, int)
        and count >= 0
        and (
            (count == 0 and last_id is None and last_hash is None)
            or (isinstance(last_id, int) and isinstance(last_hash, str))
        )
    )
    if not well_formed:
        raise HeadError("the audit head is signed but does not name a count and a last entry")
    return head


def open_head(line: str, keys: AuditKeyring) -> dict[str, Any]:
    """The head in a line written by `seal_head`, once its HMAC checks out."""
    try:
        doc = json.loads(line)
    except ValueError as exc:
        raise HeadError("the audit head is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("type") != LINE_TYPE:
        raise HeadError("this is not an audit head (wrong type)")
    mac, kid = doc.pop("mac", None), doc.get("key_id")
    if not isinstance(mac, str) or not isinstance(kid, str):
        raise HeadError("the audit head carries no MAC")
    try:
        expected = keys.mac(kid, _canonical(doc))
    except KeyFileError as exc:
        raise HeadError(f"the audit head cannot be trusted: {exc}") from exc
    if not hmac.compare_digest(expected, mac):
        raise HeadError("the audit head cannot be trusted: its MAC does not match its content")
    return _well_formed(doc)


def read_head(token: str, keys: dict[str, tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """The head inside a JWS head of an earlier version, once its signature checks out
    against the signing keys `keys`."""
    try:
        head = tokens.verify_document(token, keys, typ=HEAD_TYPE)
    except tokens.TokenInvalid as exc:
        raise HeadError(f"the audit head cannot be trusted: {exc}") from exc
    return _well_formed(head)


def load_heads(
    path: Path, keys: AuditKeyring, signing_keys: dict[str, tuple[dict[str, Any], str]]
) -> list[tuple[str, dict[str, Any]]]:
    """Every head in a file (JSON lines, or one JWS), each with where it was found."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HeadError(f"cannot read the audit head file {path}: {type(exc).__name__}") from exc
    if not text.lstrip().startswith("{"):
        try:
            return [(path.name, read_head(text.strip(), signing_keys))]
        except HeadError as exc:
            raise HeadError(f"head {path.name}: {exc}") from exc
    heads = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            where = f"{path.name}:{number}"
            try:
                heads.append((where, open_head(line, keys)))
            except HeadError as exc:
                raise HeadError(f"head {where}: {exc}") from exc
    return heads


def load_head_dir(
    directory: Path, keys: AuditKeyring, signing_keys: dict[str, tuple[dict[str, Any], str]]
) -> list[tuple[str, dict[str, Any]]]:
    """Every head in the head files (`*.jsonl`) of a directory."""
    if not directory.is_dir():
        raise HeadError(f"{directory} is not a directory of audit heads")
    heads = []
    for path in sorted(directory.glob("*.jsonl")):
        heads.extend(load_heads(path, keys, signing_keys))
    if not heads:
        raise HeadError(f"no audit heads in {directory}")
    return heads


def check_heads(session: Session, heads: list[tuple[str, dict[str, Any]]]) -> None:
    """Raise HeadError, naming the first head that fails, unless the trail still holds each
    head's last entry with that hash and at least as many entries as the head counted."""
    count = int(session.execute(select(func.count()).select_from(AuditEntry)).scalar_one())
    wanted = sorted({head["last_id"] for _, head in heads if head["last_id"] is not None})
    hashes: dict[int, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        hashes.update(
            session.execute(
                select(col(AuditEntry.id), col(AuditEntry.hash)).where(
                    col(AuditEntry.id).in_(chunk)
                )
            )
            .tuples()
            .all()
        )
    for where, head in heads:
        last_id, signed_at = head["last_id"], head.get("signed_at", "?")
        if last_id is None:
            continue
        if last_id not in hashes or count < head["count"]:
            raise HeadError(
                f"audit entry {last_id} named by head {where} signed at {signed_at} is missing "
                f"({count} entries now, {head['count']} then): the trail was truncated"
            )
        if hashes[last_id] != head["last_hash"]:
            raise HeadError(
                f"audit entry {last_id} does not have the hash in head {where} signed at "
                f"{signed_at}: the tail was rewritten"
            )


def append_head(directory: Path, line: str) -> Path:
    """Append a head line to the day's head file (O_APPEND, 0600, in a 0700 directory) and
    sync it to disk; the file."""
    private_directory(directory)
    path = directory / f"audit-heads-{utcnow().date().isoformat()}.jsonl"
    new = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        # One write of a short line: appends of several workers do not interleave.
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        directory_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)  # the new file's name is durable too
        finally:
            os.close(directory_fd)
    return path


class HeadWriter:
    """Writes a signed head of the trail to a directory when it starts, then every
    `interval` seconds (on `tick`), and when it stops (`write`).

    Runs in the webhook worker (and the dispatcher embedded in dev). Several workers write
    heads of their own: harmless, each one is checked.
    """

    def __init__(
        self,
        ctx: ServiceContext,
        directory: Path,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ctx = ctx
        self.directory = directory
        self._interval = interval
        self._clock = clock
        self._due: float | None = None  # None: at the first tick

    @classmethod
    def from_settings(cls, ctx: ServiceContext) -> HeadWriter | None:
        """The writer the settings ask for; None (with a warning in prod) without a directory."""
        directory = ctx.settings.audit_head_dir
        if directory is None:
            if not ctx.settings.is_dev:
                log.warning(
                    "RUJUKAN_AUDIT_HEAD_DIR is not set: no signed heads of the audit trail are "
                    "written, and a truncation of its newest entries would go unnoticed"
                )
            return None
        return cls(ctx, directory, ctx.settings.audit_head_interval_seconds)

    def tick(self) -> None:
        """Write a head if one is due."""
        now = self._clock()
        if self._due is not None and now < self._due:
            return
        self._due = now + self._interval
        self.write()

    def write(self) -> Path | None:
        """Write a head now; the file, or None if it could not be written (logged)."""
        try:
            with self._ctx.db.reader() as session:
                head = head_as_read(session)
            return append_head(self.directory, seal_head(head, self._ctx.audit_keys))
        except Exception as exc:  # noqa: BLE001 - a missed head must not stop the worker
            log.error("audit head not written", extra={"error_type": type(exc).__name__})
            return None
