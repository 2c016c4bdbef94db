"""`rujukan agency`: the agencies that send and receive referrals."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from service.cli.common import fail, service_context

agency_app = typer.Typer(help="Agencies that send and receive referrals.", no_args_is_help=True)


@agency_app.command("add")
def agency_add(
    code: Annotated[str, typer.Argument(help="Agency code, e.g. DINSOS_JATIM")],
    name: Annotated[str, typer.Option(help="The agency's full name, in Indonesian")],
    name_en: Annotated[
        str | None, typer.Option(help="The agency's name in English (GET /v1/agencies)")
    ] = None,
) -> None:
    """Add an agency; it can get clients and agreements at once, and running servers
    accept its tokens from external issuers within a minute."""
    from service.agreements.service import AgreementError, add_agency

    ctx = service_context()
    try:
        row = ctx.db.write(lambda w: add_agency(w, code, name, name_en=name_en))
    except AgreementError as exc:
        fail(str(exc))
    typer.echo(json.dumps({"code": row.code, "name": row.name, "name_en": row.name_en}))


@agency_app.command("list")
def agency_list() -> None:
    """List agencies as JSON."""
    from service.taxonomy import repository

    ctx = service_context()
    with ctx.db.reader() as session:
        rows = repository.agencies(session)
        listed = [{"code": a.code, "name": a.name, "name_en": a.name_en} for a in rows]
        typer.echo(json.dumps(listed, indent=2))
