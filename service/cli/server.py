"""Running the service: migrate the database, serve the API, deliver webhooks.

The functions are registered on the root command in `service.cli`, in the order its help lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from service.cli.common import check_database_role, fail, service_context
from service.config import get_settings

if TYPE_CHECKING:
    from service.context import ServiceContext


def migrate() -> None:
    """Apply every database migration (alembic upgrade head) as the owner role of
    RUJUKAN_MIGRATION_DATABASE_URL (when set) and grant the service's role, that of
    RUJUKAN_DATABASE_URL, what it needs; in dev, also register an MoU between each two of
    the three founding agencies (once)."""
    from service.agreements.service import seed_dev_agreements
    from service.audit.keys import dev_audit_keys
    from service.db import Database
    from service.db import roles as dbroles

    settings = get_settings()
    try:
        warnings, (before, after) = dbroles.migrate(settings)
    except dbroles.RoleError as exc:
        fail(str(exc))
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    if before == after:
        typer.echo(f"database is at the latest migration ({after}); nothing to do", err=True)
    else:
        start = f"migration {before}" if before else "an empty database"
        typer.echo(
            f"migrated the database from {start} to the latest migration ({after})", err=True
        )
    if settings.is_dev:
        db = Database(settings.database_url, session_info=dev_audit_keys(settings))
        try:
            added = db.write(seed_dev_agreements)
        finally:
            db.dispose()
        if added:
            typer.echo("dev: registered agreements " + ", ".join(added), err=True)


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1, max=64, metavar="N", envvar="RUJUKAN_WORKERS", help="Worker processes"
        ),
    ] = 1,
    proxy_headers: Annotated[
        bool,
        typer.Option(
            "--proxy-headers",
            envvar="RUJUKAN_PROXY_HEADERS",
            help="Trust X-Forwarded-For/-Proto from the addresses in --forwarded-allow-ips",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            envvar="RUJUKAN_FORWARDED_ALLOW_IPS",
            help="Comma-separated proxy addresses or networks whose forwarded headers count",
        ),
    ] = "127.0.0.1",
    graceful_timeout: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="SECONDS",
            envvar="RUJUKAN_GRACEFUL_TIMEOUT",
            help="Seconds in-flight requests get to finish after SIGTERM",
        ),
    ] = 25,
) -> None:
    """Serve the API with uvicorn; SIGTERM lets in-flight requests finish first."""
    from service import serving

    serving.prepare_multiprocess_dir()
    settings = get_settings()
    ctx = service_context()
    check_database_role(ctx)
    _print_first_client_hint(ctx)
    ctx.db.dispose()
    serving.run(
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=proxy_headers,
        forwarded_allow_ips=forwarded_allow_ips,
        graceful_timeout=graceful_timeout,
    )


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Handle what is due now, then exit")
    ] = False,
) -> None:
    """Deliver webhooks from the outbox until stopped (run as many as needed)."""
    import signal
    import threading

    from service.events.dispatcher import Dispatcher
    from service.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    ctx = service_context()
    check_database_role(ctx)
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


def _print_first_client_hint(ctx: ServiceContext) -> None:
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
