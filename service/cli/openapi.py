"""`rujukan openapi`: the OpenAPI document."""

from __future__ import annotations

import json
import sys

import typer

openapi_app = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)


@openapi_app.command("export")
def openapi_export() -> None:
    """Print the OpenAPI document as JSON on stdout."""
    from service.app import openapi_spec

    sys.stdout.write(json.dumps(openapi_spec(), indent=2, ensure_ascii=False) + "\n")
