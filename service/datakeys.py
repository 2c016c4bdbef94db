"""Rotating the data key: re-encrypting personal data at rest without stopping the service.

`rotate_data_key` is what `rujukan keys rotate-data` runs:

1. a new key is added to the data key file as known but not active, and the command waits
   until every running process has re-read the file (`KEY_RELOAD_SECONDS`), so that each
   of them can open what any other seals with the new key;
2. the new key becomes the active one, and the command waits again, so that no process
   seals with the old key any more;
3. every mutable sealed column is re-encrypted in batches. Each value is written back with
   a conditional UPDATE (only where the column still holds the ciphertext that was read),
   so a concurrent write is never overwritten; passes repeat until no value under an old
   key is left in those tables.

What is not rotated, and why:

- `audit_entry.detail_sealed` is append-only (a database trigger refuses UPDATE, and the
  entry's hash covers the sealed text), so it cannot be re-encrypted. Old keys therefore
  stay in the key file; the report counts how many audit values still need each one.
- The NIK index key (`index_key`) is not a data key: it is the HMAC key of the search index
  `referral.nik_hash`. Rotating it means re-hashing every NIK, which needs each plain NIK
  back from its sealed subject, and, while that runs, searches by NIK and the
  one-open-referral-per-person constraint would silently miss rows hashed under the other
  key. (It also keys the fingerprints of stored Idempotency-Key requests and the event feed's
  cursors.) It is left alone on purpose.

Stored Idempotency-Key answers are sealed naming their agency. Those sealed before (bound
to the key only) are re-encrypted under that same earlier context: they keep replaying only
to their referral's sender (see `service.referrals.create`), and rotation never fails on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import RowMapping, Table, and_, func, select, true, tuple_, update
from sqlmodel import col

from service.audit.models import AuditEntry
from service.context import KEY_RELOAD_SECONDS, ServiceContext
from service.crypto import (
    DataKeyring,
    KeyFileError,
    activate_data_key,
    add_data_key,
    switch_key,
)
from service.db import Database
from service.events.models import WebhookSubscription
from service.events.service import secret_context
from service.referrals.models import DeliveredService, IdempotencyRecord, Referral, ReferralNote
from service.referrals.sealing import idempotency_context
from service.tables import table_of

if TYPE_CHECKING:
    from service.db.writes import Writes

DEFAULT_WAIT_SECONDS = KEY_RELOAD_SECONDS + 1.0
DEFAULT_BATCH_SIZE = 200
MAX_PASSES = 20


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed values that may be rewritten, and how to rebuild each one's AAD."""

    table: Table
    column: str
    context: Callable[[RowMapping], str]
    needs: tuple[str, ...] = ()
    # The context values were sealed under before `context` bound them to more of their row;
    # such a value is re-sealed under the context it was found under, never moved to the
    # new one (the rotation cannot tell whether the row was changed to fit it).
    earlier_context: Callable[[RowMapping], str] | None = None

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"


# Every mutable sealed column with the context its value was sealed under. A new sealed
# column must be added here, or rotation would leave it under an old key.
SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(table_of(Referral), "subject_sealed", lambda r: f"referral:{r['id']}:subject"),
    SealedColumn(table_of(Referral), "summary_sealed", lambda r: f"referral:{r['id']}:summary"),
    SealedColumn(
        table_of(Referral),
        "assessment_notes_sealed",
        lambda r: f"referral:{r['id']}:assessment_notes",
    ),
    SealedColumn(
        table_of(Referral), "closure_notes_sealed", lambda r: f"referral:{r['id']}:closure_notes"
    ),
    SealedColumn(table_of(Referral), "consent_sealed", lambda r: f"referral:{r['id']}:consent"),
    SealedColumn(
        table_of(DeliveredService),
        "notes_sealed",
        lambda r: f"referral:{r['referral_id']}:service:{r['id']}",
        needs=("referral_id",),
    ),
    SealedColumn(
        table_of(ReferralNote),
        "text_sealed",
        lambda r: f"referral:{r['referral_id']}:note:{r['id']}",
        needs=("referral_id",),
    ),
    SealedColumn(
        table_of(IdempotencyRecord),
        "response_sealed",
        lambda r: idempotency_context(r["agency"], r["key"]),
        earlier_context=lambda r: idempotency_context(None, r["key"]),
    ),
    SealedColumn(table_of(WebhookSubscription), "secret_sealed", lambda r: secret_context(r["id"])),
    SealedColumn(
        table_of(WebhookSubscription),
        "previous_secret_sealed",
        lambda r: secret_context(r["id"], "previous"),
    ),
)


# The reveal reason is the only value an audit entry seals. Append-only, so never re-encrypted
# (see above), but `rujukan check` opens it like the others.
AUDIT_SEALED = SealedColumn(
    table_of(AuditEntry),
    "detail_sealed",
    lambda r: f"audit:reveal:{r['referral_id']}",
    needs=("referral_id",),
)


class RotationError(RuntimeError):
    """Re-encryption could not finish; the message names what is left."""


@dataclass
class RotationReport:
    """What a rotation did, printed as JSON by the command."""

    added: str
    previous: str
    reencrypted: dict[str, int] = field(default_factory=dict)
    changed_concurrently: int = 0
    passes: int = 0
    audit_values_by_key: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "previous": self.previous,
            "active": self.added,
            "reencrypted": self.reencrypted,
            "changed_concurrently": self.changed_concurrently,
            "passes": self.passes,
            # Old keys must stay in the key file while any audit value needs them.
            "audit_values_by_key": self.audit_values_by_key,
        }


def _under_old_key(spec: SealedColumn, active: str) -> Any:
    column = spec.table.c[spec.column]
    # An empty text seals nothing and names no key: there is nothing to re-encrypt.
    return and_(
        column.is_not(None),
        column != "",
        ~column.startswith(f"{active}.", autoescape=True),
    )


def _after(pk: list[Any], last: tuple[Any, ...] | None) -> Any:
    if last is None:
        return true()
    if len(pk) == 1:
        return pk[0] > last[0]
    return tuple_(*pk) > tuple_(*last)


def remaining_under_old_keys(db: Database, active: str) -> dict[str, int]:
    """How many values of each mutable sealed column are not sealed with `active`."""
    counts: dict[str, int] = {}
    with db.reader() as session:
        for spec in SEALED_COLUMNS:
            stmt = select(func.count()).select_from(spec.table).where(_under_old_key(spec, active))
            counts[spec.name] = int(session.execute(stmt).scalar_one())
    return counts


def _open_sealed(
    keyring: DataKeyring, spec: SealedColumn, values: RowMapping, sealed: str
) -> tuple[str, str]:
    """The plain text of a stored value and the context it was sealed under."""
    context = spec.context(values)
    try:
        return keyring.open(sealed, context), context
    except KeyFileError:
        if spec.earlier_context is None:
            raise
        context = spec.earlier_context(values)
        return keyring.open(sealed, context), context


@dataclass(frozen=True)
class Unreadable:
    """A sealed value that the keys in the data key file cannot open."""

    column: str
    row: dict[str, Any]
    reason: str


def check_sealed_values(
    db: Database, keyring: DataKeyring, batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[dict[str, int], list[Unreadable]]:
    """Open every sealed value: (values opened or not per column, those that cannot be)."""
    checked: dict[str, int] = {}
    unreadable: list[Unreadable] = []
    for spec in (*SEALED_COLUMNS, AUDIT_SEALED):
        column = spec.table.c[spec.column]
        pk = list(spec.table.primary_key.columns)
        checked[spec.name] = 0
        for rows in _batches(db, spec, and_(column.is_not(None), column != ""), batch_size):
            for values in rows:
                checked[spec.name] += 1
                try:
                    _open_sealed(keyring, spec, values, values[spec.column])
                except KeyFileError as exc:
                    key = {c.name: str(values[c.name]) for c in pk}
                    unreadable.append(Unreadable(spec.name, key, str(exc)))
    return checked, unreadable


def _batches(
    db: Database, spec: SealedColumn, where: Any, batch_size: int
) -> Iterator[list[RowMapping]]:
    """The rows of `spec`'s table matching `where` (its key, what its context needs and the
    sealed value), in key order, a batch at a time, each read without holding any lock."""
    pk = list(spec.table.primary_key.columns)
    extra = [spec.table.c[name] for name in spec.needs]
    last: tuple[Any, ...] | None = None
    while True:
        with db.reader() as session:
            rows = session.execute(
                select(*pk, *extra, spec.table.c[spec.column])
                .where(where, _after(pk, last))
                .order_by(*pk)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        last = tuple(rows[-1][: len(pk)])
        yield [row._mapping for row in rows]


def reencrypt_pass(
    db: Database, keyring: DataKeyring, spec: SealedColumn, batch_size: int
) -> tuple[int, int]:
    """One pass over a column: (values re-encrypted, values changed by someone else meanwhile)."""
    pk = list(spec.table.primary_key.columns)
    column = spec.table.c[spec.column]
    done = conflicts = 0
    # Decrypt and re-seal outside any transaction; only the conditional updates take the lock.
    for rows in _batches(db, spec, _under_old_key(spec, keyring.active), batch_size):
        rewritten = []
        for values in rows:
            old = values[spec.column]
            try:
                plain, context = _open_sealed(keyring, spec, values, old)
            except KeyFileError as exc:
                where = ", ".join(f"{c.name}={values[c.name]}" for c in pk)
                raise RotationError(f"{spec.name} of row {where} cannot be opened: {exc}") from exc
            new = keyring.seal(plain, context)
            rewritten.append(({c.name: values[c.name] for c in pk}, old, new))

        def rewrite(w: Writes, rewritten: list[tuple[dict[str, Any], Any, str]] = rewritten) -> int:
            """The number of values rewritten (the others changed meanwhile)."""
            changed = 0
            for key, old, new in rewritten:
                result = w.session.exec(
                    update(spec.table)
                    .where(*(c == key[c.name] for c in pk), column == old)
                    .values({spec.column: new})
                )
                changed += result.rowcount
            return changed

        # One write per batch: the database's write lock is held for one batch at a time.
        changed = db.write(rewrite)
        done += changed
        conflicts += len(rewritten) - changed
    return done, conflicts


def audit_values_by_key(db: Database, keyring: DataKeyring) -> dict[str, int]:
    """Sealed audit values (append-only, never re-encrypted) per key id; '?' for unknown ids."""
    counts: dict[str, int] = {}
    column = col(AuditEntry.detail_sealed)
    with db.reader() as session:
        total = int(
            session.execute(
                select(func.count()).where(column.is_not(None), column != "")
            ).scalar_one()
        )
        for kid in keyring.keys:
            n = int(
                session.execute(
                    select(func.count()).where(column.startswith(f"{kid}.", autoescape=True))
                ).scalar_one()
            )
            if n:
                counts[kid] = n
    unknown = total - sum(counts.values())
    if unknown:
        counts["?"] = unknown
    return counts


def rotate_data_key(
    ctx: ServiceContext,
    *,
    wait_seconds: float = DEFAULT_WAIT_SECONDS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = lambda _: None,
) -> RotationReport:
    """Add a data key, make it active once every process knows it, re-encrypt under it."""
    path = ctx.settings.data_key_path
    added, previous = switch_key(
        "data",
        lambda: add_data_key(path),
        lambda kid: activate_data_key(path, kid),
        wait_seconds=wait_seconds,
        sleep=sleep,
        say=say,
    )
    keyring = DataKeyring.load(path)
    report = RotationReport(added=added, previous=previous)
    report.reencrypted = {spec.table.name: 0 for spec in SEALED_COLUMNS}
    failure: str | None = None
    try:
        if keyring.active != added:
            raise RotationError(
                f"the key file changed during rotation: {keyring.active} is active, not {added}"
            )
        while True:
            report.passes += 1
            for spec in SEALED_COLUMNS:
                done, conflicts = reencrypt_pass(ctx.db, keyring, spec, batch_size)
                report.reencrypted[spec.table.name] += done
                report.changed_concurrently += conflicts
            left = {k: v for k, v in remaining_under_old_keys(ctx.db, added).items() if v}
            if not left:
                break
            if report.passes >= MAX_PASSES:
                raise RotationError(
                    f"values under old keys remain after {report.passes} passes: {left}"
                )
            say(f"pass {report.passes}: still under old keys {left}; another pass")
        report.audit_values_by_key = audit_values_by_key(ctx.db, keyring)
    except Exception as exc:
        failure = str(exc) if isinstance(exc, RotationError) else type(exc).__name__
        raise
    finally:
        detail: dict[str, Any] = {
            "added": added,
            "previous": previous,
            "reencrypted": report.reencrypted,
            "changed_concurrently": report.changed_concurrently,
            "completed": failure is None,
        }
        if failure is not None:
            detail["error"] = failure[:500]
        ctx.db.write(
            lambda w: w.append_audit(
                action="keys.rotate_data", agency=None, client_id=None, detail=detail
            )
        )
    return report
