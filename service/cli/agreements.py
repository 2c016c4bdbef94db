"""`rujukan agreement`: cooperation agreements (MoU, PKS) between agencies."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from service.cli.common import fail, parse_day, service_context

agreement_app = typer.Typer(
    help="Cooperation agreements (MoU, PKS) between agencies.", no_args_is_help=True
)


@agreement_app.command("add")
def agreement_add(
    number: Annotated[str, typer.Argument(help="The agreement's number, e.g. 'PKS/12/LPSK/2026'")],
    kind: Annotated[str, typer.Option(help="MoU or PKS")],
    agency: Annotated[
        list[str], typer.Option("--agency", help="One of the two agencies; give it twice")
    ],
    valid_from: Annotated[str, typer.Option(help="First day in force, YYYY-MM-DD")],
    valid_until: Annotated[
        str | None, typer.Option(help="Last day in force, YYYY-MM-DD (default: open-ended)")
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="A group code it covers (repeat; default: every group)"),
    ] = None,
    case_type: Annotated[
        list[str] | None,
        typer.Option(
            "--case-type", help="A case type code it covers (repeat; default: every case type)"
        ),
    ] = None,
) -> None:
    """Register an MoU or PKS between two agencies; audited. Its days are those of the
    sending agency of each referral, in that agency's time zone."""
    from service.agreements.service import AgreementError, add_agreement, summary
    from service.taxonomy.repository import time_zones

    if len(agency) != 2:
        fail("give exactly two agencies: --agency A --agency B")
    start = parse_day(valid_from, "--valid-from")
    assert start is not None
    end = parse_day(valid_until, "--valid-until")
    kinds = {"mou": "MoU", "pks": "PKS"}
    ctx = service_context()
    try:
        row = ctx.db.write(
            lambda w: add_agreement(
                w,
                number=number,
                kind=kinds.get(kind.lower(), kind),
                agencies=(agency[0], agency[1]),
                valid_from=start,
                valid_until=end,
                groups=group or [],
                case_types=case_type or [],
            )
        )
        with ctx.db.reader() as session:
            result = summary(row, zones=time_zones(session))
    except AgreementError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result))


@agreement_app.command("list")
def agreement_list() -> None:
    """List every agreement as JSON, with whether it is in force today for a referral each
    of its agencies sends (`in_force_for`, by that agency's time zone)."""
    from service.agreements.service import list_agreements

    ctx = service_context()
    with ctx.db.reader() as session:
        typer.echo(json.dumps(list_agreements(session), indent=2))


@agreement_app.command("end")
def agreement_end(
    number: Annotated[str, typer.Argument(help="The agreement's number")],
    on: Annotated[
        str | None, typer.Option(help="The first day it no longer applies (default: today)")
    ] = None,
) -> None:
    """End an agreement before its term: from that day (each agency's own, in its time zone)
    it no longer covers referrals."""
    from service.agreements.service import AgreementError, end_agreement, summary
    from service.taxonomy.repository import time_zones

    day = parse_day(on, "--on")
    ctx = service_context()
    try:
        row = ctx.db.write(lambda w: end_agreement(w, number, on=day))
        with ctx.db.reader() as session:
            result = summary(row, zones=time_zones(session))
    except AgreementError as exc:
        fail(str(exc))
    typer.echo(json.dumps(result))
