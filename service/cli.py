"""The `rujukan` command."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
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
keys_app = typer.Typer(help="Manage signing and data keys.", no_args_is_help=True)
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


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Handle what is due now, then exit")] = False,
) -> None:
    """Deliver webhooks from the outbox until stopped (run as many as needed)."""
    import signal
    import threading

    from service.events.dispatcher import Dispatcher
    from service.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    ctx = _context()
    dispatcher = Dispatcher(ctx)
    try:
        if once:
            while dispatcher.run_once():
                pass
            return
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        typer.echo(f"worker {dispatcher.name} delivering webhooks", err=True)
        dispatcher.run(stop)
    finally:
        dispatcher.close()
        ctx.db.dispose()


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


@keys_app.command("rotate-data")
def keys_rotate_data(
    wait_seconds: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Pause after each key file change, for running servers to re-read it "
            "(default: their reload interval plus one second)",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per UPDATE batch")] = 200,
) -> None:
    """Re-encrypt personal data under a new data key, while the service keeps running."""
    from service.context import KEY_RELOAD_SECONDS
    from service.crypto import KeyFileError
    from service.datakeys import DEFAULT_WAIT_SECONDS, RotationError, rotate_data_key

    wait = DEFAULT_WAIT_SECONDS if wait_seconds is None else wait_seconds
    if wait <= KEY_RELOAD_SECONDS:
        typer.echo(
            f"warning: servers re-read the key file every {KEY_RELOAD_SECONDS}s; a wait of "
            f"{wait}s may not give them time",
            err=True,
        )
    ctx = _context()
    try:
        report = rotate_data_key(
            ctx,
            wait_seconds=wait,
            batch_size=batch_size,
            say=lambda line: typer.echo(line, err=True),
        )
    except (RotationError, KeyFileError) as exc:
        _fail(f"data key rotation did not finish: {exc}; it is safe to run it again")
    typer.echo(json.dumps(report.as_dict()))


@app.command()
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

    ctx = _context()
    try:
        report = purge_closed(ctx, closed_before.date(), dry_run=dry_run)
    except RetentionError as exc:
        _fail(str(exc), 2)
    typer.echo(json.dumps(report))
    if report.get("wal_checkpoint") == "busy":
        _fail("the SQLite write-ahead log is in use: run the purge again when the service is idle")


@openapi_app.command("export")
def openapi_export() -> None:
    """Print the OpenAPI document as JSON on stdout."""
    from service.app import openapi_spec

    sys.stdout.write(json.dumps(openapi_spec(), indent=2, ensure_ascii=False) + "\n")


@audit_app.command("verify")
def audit_verify(
    head: Annotated[
        Path | None,
        typer.Option(
            "--head",
            help="A signed head from `rujukan audit head`: also check that the trail still "
            "ends the way it did then (detects a truncated or rewritten tail)",
        ),
    ] = None,
) -> None:
    """Recompute the audit chain; exit 1 naming the first bad entry."""
    from service.audit.head import HeadError, check_against_head, read_head
    from service.audit.trail import verify_chain

    ctx = _context()
    signed = None
    if head is not None:
        try:
            token = head.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read the audit head file {head}: {type(exc).__name__}")
        try:
            signed = read_head(token, ctx.keyset.verification_keys())
        except HeadError as exc:
            _fail(str(exc))
    with ctx.db.reader() as session:
        count, bad_id, reason = verify_chain(session)
        if bad_id is not None:
            _fail(f"audit entry {bad_id} is bad: {reason} ({count} entries verified before it)")
        if signed is not None:
            try:
                check_against_head(session, signed)
            except HeadError as exc:
                _fail(str(exc))
    report: dict[str, object] = {"entries": count, "valid": True}
    if signed is not None:
        report["head"] = {k: signed[k] for k in ("count", "last_id", "last_hash", "signed_at")}
    typer.echo(json.dumps(report))


@audit_app.command("head")
def audit_head() -> None:
    """Print a signed head of the trail (count and last hash, as a JWS) to keep elsewhere."""
    from service.audit.head import HeadError, current_head, sign_head

    ctx = _context()
    with ctx.db.reader() as session:
        try:
            head = current_head(session)
        except HeadError as exc:
            _fail(str(exc))
    # The JWS alone on stdout (for `> head.jws`); what it says, for the eye, on stderr.
    typer.echo(json.dumps(head), err=True)
    typer.echo(sign_head(head, ctx.keyset.current))


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
