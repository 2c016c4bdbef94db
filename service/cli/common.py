"""What every command shares: failing in one line, the service context, dates in options."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, NoReturn

import typer

from service.config import get_settings

if TYPE_CHECKING:
    from service.context import ServiceContext


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr and end the command with `code`."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def service_context() -> ServiceContext:
    """The service context from the settings; a key file it cannot read ends the command."""
    from service.context import ServiceContext
    from service.crypto import KeyFileError

    try:
        return ServiceContext.build(get_settings())
    except KeyFileError as exc:
        fail(str(exc))


def check_database_role(ctx: ServiceContext) -> None:
    """Refuse (prod) or warn (dev) when the service's database role could rewrite the audit
    trail."""
    from service.db.roles import RoleError, serving_role_warning

    try:
        warning = serving_role_warning(ctx.settings, ctx.db.engine)
    except RoleError as exc:
        fail(str(exc))
    if warning:
        typer.echo(f"warning: {warning}", err=True)


def parse_day(value: str | None, option: str) -> dt.date | None:
    """The day an option names as YYYY-MM-DD, or None when it was not given."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option} must be a date YYYY-MM-DD")
