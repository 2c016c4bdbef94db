"""`rujukan taxonomy`: the reference codes (groups, case types, service types, units, ...)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from service.cli.common import fail, service_context
from service.taxonomy.repository import REFERENCE_DATA_SECONDS

_SEEN = (
    f"Running servers refuse a retired code within {REFERENCE_DATA_SECONDS:.0f} seconds "
    "(their reference data cache) and accept an added code at once."
)

taxonomy_app = typer.Typer(
    help=f"Reference codes, added and retired without SQL; audited. {_SEEN}",
    no_args_is_help=True,
)


@taxonomy_app.command("list")
def taxonomy_list(
    kind: Annotated[
        str | None,
        typer.Option(help="Only this kind: group, case_type, service_type, service_unit, ..."),
    ] = None,
) -> None:
    """List codes as JSON, retired ones included (`active: false`)."""
    from service.taxonomy.service import TaxonomyError, list_terms

    ctx = service_context()
    with ctx.db.reader() as session:
        try:
            rows = list_terms(session, kind)
        except TaxonomyError as exc:
            fail(str(exc))
    typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))


@taxonomy_app.command("add", help=f"Add a code, named in Indonesian and English. {_SEEN}")
def taxonomy_add(
    kind: Annotated[
        str,
        typer.Argument(
            help="group, kemenham_group, case_type, service_type, service_unit, "
            "decline_reason or consent_purpose"
        ),
    ],
    code: Annotated[str, typer.Argument(help="New code, e.g. PERUNDUNGAN_DARING")],
    name: Annotated[str, typer.Option(help="Name in Indonesian")],
    name_en: Annotated[str, typer.Option(help="Name in English")],
    description: Annotated[
        str | None, typer.Option(help="Description in English (with --description-id)")
    ] = None,
    description_id: Annotated[
        str | None, typer.Option(help="Description in Indonesian (with --description)")
    ] = None,
    phase: Annotated[
        str | None, typer.Option(help="Service types: rehabilitation or empowerment")
    ] = None,
    agency: Annotated[str | None, typer.Option(help="Service units: the agency's code")] = None,
    approach: Annotated[
        str | None, typer.Option(help="Service units: residential, family or community")
    ] = None,
    region: Annotated[str | None, typer.Option(help="Service units: where it is")] = None,
) -> None:
    """Add a code (help given above, with the cache time)."""
    from service.taxonomy.service import TaxonomyError, add_term, term_summary

    ctx = service_context()
    try:
        row = ctx.db.write(
            lambda w: add_term(
                w,
                kind,
                code,
                name=name,
                name_en=name_en,
                description=description,
                description_id=description_id,
                phase=phase,
                agency=agency,
                approach=approach,
                region=region,
            )
        )
    except TaxonomyError as exc:
        fail(str(exc))
    typer.echo(json.dumps(term_summary(row), ensure_ascii=False))


@taxonomy_app.command(
    "retire",
    help="Retire a code: refused on new referrals, assessments, services and closures, still "
    f"shown on the records that carry it and listed with active: false. {_SEEN}",
)
def taxonomy_retire(
    kind: Annotated[str, typer.Argument(help="The code's kind, e.g. case_type")],
    code: Annotated[str, typer.Argument(help="The code to retire")],
) -> None:
    """Retire a code (help given above, with the cache time)."""
    from service.taxonomy.service import TaxonomyError, retire_term, term_summary

    ctx = service_context()
    try:
        row = ctx.db.write(lambda w: retire_term(w, kind, code))
    except TaxonomyError as exc:
        fail(str(exc))
    typer.echo(json.dumps(term_summary(row), ensure_ascii=False))
