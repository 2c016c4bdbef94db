"""The data held: the statistics report, the demo data, the purge of closed referrals,
and the check of every sealed value.

The functions are registered on the root command in `service.cli`, in the order its help lists them.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import fail, parse_day, service_context


def purge(
    closed_before: Annotated[
        dt.datetime,
        typer.Option(
            "--closed-before",
            formats=["%Y-%m-%d"],
            help="Erase referrals closed before the start (UTC) of this day, YYYY-MM-DD",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be erased")
    ] = False,
) -> None:
    """Erase the personal data of referrals closed before a date; prints JSON counts."""
    from service.retention import RetentionError
    from service.retention import purge as purge_closed

    ctx = service_context()
    try:
        report = purge_closed(ctx, closed_before.date(), dry_run=dry_run)
    except RetentionError as exc:
        fail(str(exc), 2)
    typer.echo(json.dumps(report))
    if report.get("wal_checkpoint") == "busy":
        fail("the SQLite write-ahead log is in use: run the purge again when the service is idle")


def report(
    from_: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="First day of the period, YYYY-MM-DD, in the --agency's time zone "
            "(Asia/Jakarta without --agency)",
        ),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="Last day of the period, included, in the same time zone"),
    ] = None,
    agency: Annotated[
        str | None,
        typer.Option(help="Only this agency's referrals (default: every agency's)"),
    ] = None,
    direction: Annotated[
        str | None, typer.Option(help="With --agency: incoming or outgoing only")
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    chart: Annotated[
        Path | None,
        typer.Option(
            help="Also draw referrals per week and time per step into this PNG "
            "(needs matplotlib: pip install 'rujukan[report]')"
        ),
    ] = None,
) -> None:
    """Print the statistics of a period (the figures of GET /v1/stats) as JSON or CSV.

    Days are counted in the reported agency's time zone (see `rujukan agency list`).

    Without --agency, in Asia/Jakarta (WIB). The report names the zone as `time_zone`.
    """
    from service import errors
    from service.stats import report as reports
    from service.stats.service import compute

    if format_ not in ("json", "csv"):
        fail("--format must be json or csv")
    if direction not in (None, "incoming", "outgoing"):
        fail("--direction must be incoming or outgoing")
    start, end = parse_day(from_, "--from"), parse_day(to, "--to")
    ctx = service_context()
    if agency is not None:
        with ctx.db.reader() as session:
            from service.taxonomy import repository

            if repository.agency(session, agency) is None:
                fail(f"unknown agency {agency!r}")
    try:
        stats = compute(ctx, agency=agency, direction=direction, start=start, end=end)
        if chart is not None:
            drawn = reports.draw_chart(
                ctx, chart, agency=agency, direction=direction, start=start, end=end
            )
            typer.echo(json.dumps(drawn), err=True)
    except errors.DomainError as exc:
        fail(str(exc.detail))
    except RuntimeError as exc:
        fail(str(exc))
    sys.stdout.write(reports.as_json(stats) + "\n" if format_ == "json" else reports.as_csv(stats))


def demo(
    count: Annotated[int, typer.Option(min=1, max=2000, help="How many referrals")] = 120,
    months: Annotated[int, typer.Option(min=1, max=24, help="Spread over this many months")] = 6,
) -> None:
    """Fill an EMPTY dev database with fictitious referrals across the three agencies, in every
    state and outcome, made through the service (encrypted, audited, with history)."""
    from service.demo.loader import DemoError, load_demo

    ctx = service_context()
    try:
        result = load_demo(ctx, count=count, months=months, say=lambda m: typer.echo(m, err=True))
    except DemoError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result))


def check() -> None:
    """Open every sealed value in the database with the data key file; exit 1 naming each one
    that cannot be opened (table, column and row), as the service marks such referrals
    `unavailable`."""
    from service.datakeys import check_sealed_values

    ctx = service_context()
    checked, unreadable = check_sealed_values(ctx.db, ctx.keyring)
    for item in unreadable:
        where = ", ".join(f"{k}={v}" for k, v in item.row.items())
        typer.echo(f"error: {item.column} of row {where} cannot be opened: {item.reason}", err=True)
    report = {
        "sealed_values": checked,
        "unreadable": [{"column": i.column, "row": i.row, "reason": i.reason} for i in unreadable],
    }
    typer.echo(json.dumps(report))
    if unreadable:
        raise typer.Exit(1)
