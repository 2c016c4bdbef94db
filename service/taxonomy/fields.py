"""Fields and query parameters that take a reference code, each described once, here.

A field that takes a code says which list of `GET /v1/taxonomy` (or `GET /v1/agencies`) it
comes from, links that operation in the interactive documentation, and carries the list's name
in a vendor extension, so that tools (and the tests) can find every such field in the spec:
`x-taxonomy: service_types` (a list of names where either list's codes are taken), or
`x-agency-code: true`.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Query
from pydantic import Field

# The lists `GET /v1/taxonomy` answers, by the name it gives each.
TaxonomyList = Literal[
    "groups",
    "kemenham_groups",
    "case_types",
    "service_types",
    "service_units",
    "outcomes",
    "decline_reasons",
    "consent_purposes",
]

TAXONOMY_EXTENSION = "x-taxonomy"
AGENCY_EXTENSION = "x-agency-code"

# Relative links to the operations, in the form Swagger UI (`/docs`) opens them:
# `#/<tag>/<operationId>`, the tag's spaces written as %20.
TAXONOMY_LINK = "[`GET /v1/taxonomy`](#/reference%20data/get_taxonomy)"
AGENCIES_LINK = "[`GET /v1/agencies`](#/reference%20data/list_agencies)"


def taxonomy_note(names: tuple[TaxonomyList, ...], *, many: bool = False) -> str:
    """The sentence naming the list a code comes from, with a link to where it is listed."""
    what = "Codes" if many else "A code"
    lists = " or ".join(f"`{name}`" for name in names)
    return f"{what} from the {lists} list{'s' if len(names) > 1 else ''} of {TAXONOMY_LINK}."


def _extension(names: tuple[TaxonomyList, ...]) -> dict[str, Any]:
    return {TAXONOMY_EXTENSION: names[0] if len(names) == 1 else list(names)}


def agency_note(*, many: bool = False) -> str:
    """The sentence saying an agency code is one of `GET /v1/agencies`, with its link."""
    what = "Agency codes" if many else "An agency code"
    return f"{what} (`code`) from {AGENCIES_LINK}."


def _described(description: str, note: str) -> str:
    return f"{description.rstrip()} {note}" if description else note


def code_field(
    *names: TaxonomyList, description: str, many: bool = False, **kwargs: Any
) -> Any:
    """A model field that takes codes of a taxonomy list (`many` for a list of them)."""
    return Field(
        description=_described(description, taxonomy_note(names, many=many)),
        json_schema_extra=_extension(names),
        **kwargs,
    )


def agency_field(description: str, *, many: bool = False, **kwargs: Any) -> Any:
    """A model field that takes an agency code."""
    return Field(
        description=_described(description, agency_note(many=many)),
        json_schema_extra={AGENCY_EXTENSION: True},
        **kwargs,
    )


def code_query(*names: TaxonomyList, description: str, **kwargs: Any) -> Any:
    """A query parameter that takes one code of a taxonomy list."""
    return Query(
        description=_described(description, taxonomy_note(names)),
        json_schema_extra=_extension(names),
        **kwargs,
    )


def agency_query(description: str, **kwargs: Any) -> Any:
    """A query parameter that takes one agency code."""
    return Query(
        description=_described(description, agency_note()),
        json_schema_extra={AGENCY_EXTENSION: True},
        **kwargs,
    )
