"""Rotating the audit key while the service keeps running (`rujukan keys rotate-audit`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from service.audit.keys import activate_audit_key, add_audit_key
from service.context import ServiceContext
from service.crypto import switch_key


def rotate_audit_key(
    ctx: ServiceContext,
    *,
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    say: Callable[[str], None] = lambda _: None,
) -> tuple[str, str]:
    """Add an audit key, make it active once every process knows it, and audit the change;
    (the new key's id, the previous one's).

    The old key stays in the file: the entries and heads it keyed are verified with it.
    """
    path = ctx.settings.audit_key_path
    added, previous = switch_key(
        "audit",
        lambda: add_audit_key(path),
        lambda kid: activate_audit_key(path, kid),
        wait_seconds=wait_seconds,
        sleep=sleep,
        say=say,
    )
    ctx.db.write(
        lambda w: w.append_audit(
            action="keys.rotate_audit",
            agency=None,
            client_id=None,
            detail={"added": added, "previous": previous},
        )
    )
    return added, previous
