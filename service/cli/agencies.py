"""`rujukan agency`: the agencies that send and receive referrals."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.common import fail, service_context

if TYPE_CHECKING:
    from service.taxonomy.models import Agency

agency_app = typer.Typer(help="Agencies that send and receive referrals.", no_args_is_help=True)


ZONE_HELP = (
    "IANA time zone its days are counted in (statistics, reports, agreements): "
    "Asia/Jakarta (WIB), Asia/Makassar (WITA), Asia/Jayapura (WIT), or any other"
)


def _shown(row: Agency) -> dict[str, str]:
    return {"code": row.code, "name": row.name, "time_zone": row.time_zone}


@agency_app.command("add")
def agency_add(
    code: Annotated[str, typer.Argument(help="Agency code, e.g. DINSOS_JATIM")],
    name: Annotated[str, typer.Option(help="The agency's full name")],
    time_zone: Annotated[
        str | None, typer.Option(help=ZONE_HELP + "; default Asia/Jakarta")
    ] = None,
) -> None:
    """Add an agency; it can get clients and agreements at once, and running servers
    accept its tokens from external issuers within a minute."""
    from service.agreements.service import AgreementError, add_agency

    ctx = service_context()
    try:
        zone = {"time_zone": time_zone} if time_zone else {}
        row = ctx.db.write(lambda w: add_agency(w, code, name, **zone))
    except AgreementError as exc:
        fail(str(exc))
    typer.echo(json.dumps(_shown(row)))


@agency_app.command("set-time-zone")
def agency_set_time_zone(
    code: Annotated[str, typer.Argument(help="Agency code, e.g. DINSOS_SULSEL")],
    zone: Annotated[str, typer.Argument(help=ZONE_HELP)],
) -> None:
    """Change the time zone an agency's days are counted in (audited).

    Running servers count in the new zone within 30 seconds.
    """
    from service.agreements.service import AgreementError, set_agency_time_zone

    ctx = service_context()
    try:
        row = ctx.db.write(lambda w: set_agency_time_zone(w, code, zone))
    except AgreementError as exc:
        fail(str(exc))
    typer.echo(json.dumps(_shown(row)))


@agency_app.command("list")
def agency_list() -> None:
    """List agencies as JSON, each with its time zone."""
    from service.taxonomy import repository

    ctx = service_context()
    with ctx.db.reader() as session:
        rows = repository.agencies(session)
        typer.echo(json.dumps([_shown(a) for a in rows], indent=2))
