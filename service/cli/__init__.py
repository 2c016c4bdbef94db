"""The `rujukan` command: the root, its groups, and the console script's entry point."""

from __future__ import annotations

import sys
from typing import Protocol, TypeGuard

import typer

from service.cli import data, server
from service.cli.agencies import agency_app
from service.cli.agreements import agreement_app
from service.cli.audit import audit_app
from service.cli.clients import client_app
from service.cli.keys import keys_app
from service.cli.openapi import openapi_app
from service.cli.taxonomy import taxonomy_app

# No pretty tracebacks: they print local variables, and those can hold secrets.
app = typer.Typer(
    help="Rujukan: referrals between Kemensos, LPSK and KemenHAM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(client_app, name="client")
app.add_typer(keys_app, name="keys")
app.add_typer(openapi_app, name="openapi")
app.add_typer(audit_app, name="audit")
app.add_typer(agency_app, name="agency")
app.add_typer(agreement_app, name="agreement")
app.add_typer(taxonomy_app, name="taxonomy")

# In this order in `rujukan --help`.
for command in (
    server.migrate,
    server.serve,
    server.worker,
    data.purge,
    data.report,
    data.demo,
    data.check,
):
    app.command()(command)


def main() -> None:
    """Entry point of the console script: one clear line on any failure, never a traceback."""
    from pydantic import ValidationError
    from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError, SQLAlchemyError

    def fail(message: str, code: int = 1) -> None:
        typer.echo(f"error: {message}", err=True)
        sys.exit(code)

    try:
        # Not standalone: the command line's own errors (unknown option, bad value) come back
        # here, to be told in one plain line instead of a framed panel.
        result = app(standalone_mode=False)
    except typer.Abort:
        fail("aborted", 130)
    except ValidationError as exc:
        # Only the messages: pydantic's own text repeats the input, which can hold secrets.
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ())) or "settings"
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            typer.echo(f"error: invalid configuration ({where}): {message}", err=True)
        sys.exit(1)
    except ArgumentError:
        fail(
            "RUJUKAN_DATABASE_URL (or RUJUKAN_MIGRATION_DATABASE_URL) is not a database URL; "
            "expected sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
        )
    except (OperationalError, ProgrammingError) as exc:
        fail(
            f"the database refused the command ({type(exc.orig).__name__}); "
            "is it reachable and migrated? Run `rujukan migrate`."
        )
    except SQLAlchemyError as exc:
        fail(f"the database command failed ({type(exc).__name__}); nothing was changed")
    except Exception as exc:  # noqa: BLE001 - the last word: no traceback, no values
        if _is_usage_error(exc):
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":
                typer.echo(exc.format_message(), err=True)
                sys.exit(2)
            where = getattr(ctx, "command_path", None) or "rujukan"
            message = exc.format_message()
            fail(f"{message} (see `{where} --help`)", exc.exit_code)
        fail(f"unexpected {type(exc).__name__}; the command did not finish")
    sys.exit(result if isinstance(result, int) else 0)


class _UsageError(Protocol):
    """What every click exception has."""

    exit_code: int

    def format_message(self) -> str: ...


def _is_usage_error(exc: BaseException) -> TypeGuard[_UsageError]:
    # Typer carries its own copy of click, whose exception classes are not public: recognise
    # them by what every click exception has.
    return callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    )
