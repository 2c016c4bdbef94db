"""`rujukan audit`: verify the tamper-evident trail and sign its head."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import fail, service_context

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    head: Annotated[
        Path | None,
        typer.Option(
            "--head",
            help="A file of signed heads (from `rujukan audit head`, or a head file of the "
            "worker): also check that the trail still holds each head's last entry, unchanged",
        ),
    ] = None,
    heads: Annotated[
        Path | None,
        typer.Option(
            "--heads",
            help="The directory of head files the worker writes (RUJUKAN_AUDIT_HEAD_DIR): "
            "check the trail against every head in it (detects a truncated or rewritten tail)",
        ),
    ] = None,
) -> None:
    """Recompute the audit chain (its HMACs, with the audit key file); exit 1 naming the
    first bad entry, or the first head the trail no longer matches."""
    from service.audit.head import HEAD_FIELDS, HeadError, check_heads, load_head_dir, load_heads
    from service.audit.trail import verify_chain

    ctx = service_context()
    keys, signing = ctx.audit_keys, ctx.keyset.verification_keys()
    found: list[tuple[str, dict[str, object]]] = []
    try:
        if head is not None:
            found.extend(load_heads(head, keys, signing))
        if heads is not None:
            found.extend(load_head_dir(heads, keys, signing))
    except HeadError as exc:
        fail(str(exc))
    with ctx.db.reader() as session:
        count, bad_id, reason = verify_chain(session, keys)
        if bad_id is not None:
            fail(f"audit entry {bad_id} is bad: {reason} ({count} entries verified before it)")
        try:
            check_heads(session, found)
        except HeadError as exc:
            fail(str(exc))
    report: dict[str, object] = {"entries": count, "valid": True}
    if found:
        latest = found[-1][1]
        report["heads"] = len(found)
        report["head"] = {k: latest[k] for k in HEAD_FIELDS}
    typer.echo(json.dumps(report))


@audit_app.command("head")
def audit_head() -> None:
    """Print a signed head of the trail (count and last hash, with an HMAC under the audit
    key) as one JSON line, to keep elsewhere."""
    from service.audit.head import HeadError, current_head, seal_head

    ctx = service_context()
    with ctx.db.reader() as session:
        try:
            head = current_head(session, ctx.audit_keys)
        except HeadError as exc:
            fail(str(exc))
    # The signed line alone on stdout (for `>> heads.jsonl`); what it says, on stderr.
    typer.echo(json.dumps(head), err=True)
    typer.echo(seal_head(head, ctx.audit_keys))
