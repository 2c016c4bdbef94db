"""The `rujukan` command."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated

import typer

from service.config import get_settings

# No pretty tracebacks: they print local variables, and those can hold secrets.
app = typer.Typer(
    help="Rujukan: referrals between Kemensos, LPSK and KemenHAM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
client_app = typer.Typer(help="Manage API clients (agency systems).", no_args_is_help=True)
keys_app = typer.Typer(help="Manage signing keys.", no_args_is_help=True)
openapi_app = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(client_app, name="client")
app.add_typer(keys_app, name="keys")
app.add_typer(openapi_app, name="openapi")
app.add_typer(audit_app, name="audit")


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _context():  # type: ignore[no-untyped-def]
    from service.context import ServiceContext
    from service.crypto import KeyFileError

    try:
        return ServiceContext.build(get_settings())
    except KeyFileError as exc:
        _fail(str(exc))


@app.command()
def migrate() -> None:
    """Apply every database migration (alembic upgrade head)."""
    from service.db import upgrade_to_head

    settings = get_settings()
    upgrade_to_head(settings.database_url)
    typer.echo("database is at the latest migration", err=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    settings = get_settings()
    ctx = _context()
    _print_first_client_hint(ctx)
    ctx.db.dispose()
    uvicorn.run(
        "service.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
        # Uvicorn's access log prints query strings, which can hold a NIK filter;
        # the service writes its own access log without them.
        access_log=False,
        log_level="info",
    )


def _print_first_client_hint(ctx) -> None:  # type: ignore[no-untyped-def]
    from service.auth.clients import list_clients

    if not ctx.settings.is_dev:
        return
    with ctx.db.reader() as session:
        if list_clients(session):
            return
    typer.echo(
        "No API client yet. Create one, for example:\n"
        "  .venv/bin/rujukan client create --agency LPSK --name 'LPSK case system' "
        "--scope 'referrals:read referrals:write'",
        err=True,
    )


@client_app.command("create")
def client_create(
    agency: Annotated[str, typer.Option(help="Agency code: KEMENSOS, LPSK or KEMENHAM")],
    name: Annotated[str, typer.Option(help="What system this client is")],
    scope: Annotated[str, typer.Option(help="Space-separated scopes")],
) -> None:
    """Create a client; prints {client_id, client_secret} once."""
    from service.audit import trail
    from service.auth import clients

    ctx = _context()
    try:
        with ctx.db.writer() as session:
            client, secret = clients.create_client(session, agency=agency, name=name, scope=scope)
            trail.append(
                session,
                action="client.create",
                agency=None,
                client_id=None,
                detail={
                    "client": client.client_id,
                    "client_agency": agency,
                    "scope": client.scopes,
                },
            )
            session.commit()
    except clients.ClientError as exc:
        _fail(str(exc))
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

    ctx = _context()
    with ctx.db.reader() as session:
        typer.echo(
            json.dumps([clients.client_summary(c) for c in clients.list_clients(session)], indent=2)
        )


@client_app.command("revoke")
def client_revoke(client_id: Annotated[str, typer.Argument(help="The client's id")]) -> None:
    """Revoke a client: it gets no new tokens from now on."""
    from service.audit import trail
    from service.auth import clients

    ctx = _context()
    try:
        with ctx.db.writer() as session:
            clients.revoke_client(session, client_id)
            trail.append(
                session,
                action="client.revoke",
                agency=None,
                client_id=None,
                detail={"client": client_id},
            )
            session.commit()
    except clients.ClientError as exc:
        _fail(str(exc))
    typer.echo(f"revoked {client_id}", err=True)


@client_app.command("rotate-secret")
def client_rotate_secret(client_id: Annotated[str, typer.Argument(help="The client's id")]) -> None:
    """Give a client a new secret; the old one stops working at once."""
    from service.audit import trail
    from service.auth import clients

    ctx = _context()
    try:
        with ctx.db.writer() as session:
            client, secret = clients.rotate_secret(session, client_id)
            trail.append(
                session,
                action="client.rotate_secret",
                agency=None,
                client_id=None,
                detail={"client": client_id},
            )
            session.commit()
    except clients.ClientError as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"client_id": client.client_id, "client_secret": secret}))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; keys whose tokens have all expired are retired."""
    from service.audit import trail
    from service.auth.keys import rotate_keyset

    ctx = _context()
    settings = ctx.settings
    added, retired = rotate_keyset(
        settings.signing_key_path, dt.timedelta(seconds=settings.token_ttl_seconds)
    )
    with ctx.db.writer() as session:
        trail.append(
            session,
            action="keys.rotate",
            agency=None,
            client_id=None,
            detail={"added": added.kid, "retired": retired},
        )
        session.commit()
    typer.echo(json.dumps({"added": added.kid, "retired": retired}))


@openapi_app.command("export")
def openapi_export() -> None:
    """Print the OpenAPI document as JSON on stdout."""
    from service.app import openapi_spec

    sys.stdout.write(json.dumps(openapi_spec(), indent=2, ensure_ascii=False) + "\n")


@audit_app.command("verify")
def audit_verify() -> None:
    """Recompute the audit chain; exit 1 naming the first bad entry."""
    from service.audit.trail import verify_chain

    ctx = _context()
    with ctx.db.reader() as session:
        count, bad_id, reason = verify_chain(session)
    if bad_id is not None:
        _fail(f"audit entry {bad_id} is bad: {reason} ({count} entries verified before it)")
    typer.echo(json.dumps({"entries": count, "valid": True}))


def main() -> None:
    """Entry point of the console script."""
    from pydantic import ValidationError
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        app()
    except ValidationError as exc:
        # Only the messages: pydantic's own text repeats the input, which can hold secrets.
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ())) or "settings"
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            typer.echo(f"error: invalid configuration ({where}): {message}", err=True)
        sys.exit(1)
    except (OperationalError, ProgrammingError) as exc:
        typer.echo(
            f"error: the database refused the command ({type(exc.orig).__name__}); "
            "is it reachable and migrated? Run `rujukan migrate`.",
            err=True,
        )
        sys.exit(1)
