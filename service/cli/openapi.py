"""`rujukan openapi`: the OpenAPI document."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer

openapi_app = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)


class Version(StrEnum):
    """The OpenAPI versions the document is exported in."""

    V31 = "3.1"
    V30 = "3.0"


@openapi_app.command("export")
def openapi_export(
    version: Annotated[
        Version,
        typer.Option(
            "--version",
            help="OpenAPI version: 3.1 (what /openapi.json serves) or 3.0 (for gateways such "
            "as SPLP and API managers that import only 3.0).",
        ),
    ] = Version.V31,
) -> None:
    """Print the OpenAPI document as JSON on stdout."""
    from service.app import openapi_spec
    from service.openapi30 import to_openapi30

    spec = openapi_spec()
    if version is Version.V30:
        spec = to_openapi30(spec)
    sys.stdout.write(json.dumps(spec, indent=2, ensure_ascii=False) + "\n")
