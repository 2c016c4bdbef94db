"""`rujukan client`: the API clients of agency systems."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from service.auth.scopes import ALL_SCOPES
from service.cli.common import fail, service_context

client_app = typer.Typer(help="Manage API clients (agency systems).", no_args_is_help=True)


@client_app.command("create")
def client_create(
    agency: Annotated[
        str,
        typer.Option(
            help="Agency code: KEMENSOS, LPSK, KEMENHAM or one added since (`rujukan agency list`)"
        ),
    ],
    name: Annotated[str, typer.Option(help="What system this client is")],
    scope: Annotated[str, typer.Option(help="Space-separated scopes: " + " ".join(ALL_SCOPES))],
) -> None:
    """Create a client; prints {client_id, client_secret} once."""
    from service.auth import clients
    from service.auth.service import register_client

    ctx = service_context()
    try:
        client, secret = ctx.db.write(
            lambda w: register_client(w, agency=agency, name=name, scope=scope, keyring=ctx.keyring)
        )
    except clients.ClientError as exc:
        fail(str(exc))
    typer.echo(
        json.dumps(
            {
                "client_id": client.client_id,
                "client_secret": secret,
                "agency": client.agency,
                "scope": client.scopes,
            }
        )
    )


@client_app.command("list")
def client_list() -> None:
    """List clients (never their secrets) as JSON."""
    from service.auth import clients

    ctx = service_context()
    with ctx.db.reader() as session:
        typer.echo(
            json.dumps([clients.client_summary(c) for c in clients.list_clients(session)], indent=2)
        )


@client_app.command("revoke")
def client_revoke(client_id: Annotated[str, typer.Argument(help="The client's id")]) -> None:
    """Revoke a client: it gets no new tokens from now on."""
    from service.auth import clients
    from service.auth.service import revoke_client

    ctx = service_context()
    try:
        ctx.db.write(lambda w: revoke_client(w, client_id))
    except clients.ClientError as exc:
        fail(str(exc))
    typer.echo(f"revoked {client_id}", err=True)


@client_app.command("rotate-secret")
def client_rotate_secret(client_id: Annotated[str, typer.Argument(help="The client's id")]) -> None:
    """Give a client a new secret; the old one stops working at once."""
    from service.auth import clients
    from service.auth.service import rotate_client_secret

    ctx = service_context()
    try:
        client, secret = ctx.db.write(
            lambda w: rotate_client_secret(w, client_id, keyring=ctx.keyring)
        )
    except clients.ClientError as exc:
        fail(str(exc))
    typer.echo(json.dumps({"client_id": client.client_id, "client_secret": secret}))
