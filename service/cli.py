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
keys_app = typer.Typer(help="Manage signing, data and audit keys.", no_args_is_help=True)
openapi_app = typer.Typer(help="The OpenAPI document.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
agency_app = typer.Typer(help="Agencies that send and receive referrals.", no_args_is_help=True)
agreement_app = typer.Typer(
    help="Cooperation agreements (MoU, PKS) between agencies.", no_args_is_help=True
)
app.add_typer(client_app, name="client")
app.add_typer(keys_app, name="keys")
app.add_typer(openapi_app, name="openapi")
app.add_typer(audit_app, name="audit")
app.add_typer(agency_app, name="agency")
app.add_typer(agreement_app, name="agreement")


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


def _check_database_role(ctx) -> None:  # type: ignore[no-untyped-def]
    """Refuse (prod) or warn (dev) when the service's database role could rewrite the audit
    trail."""
    from service.db.roles import RoleError, serving_role_warning

    try:
        warning = serving_role_warning(ctx.settings, ctx.db.engine)
    except RoleError as exc:
        _fail(str(exc))
    if warning:
        typer.echo(f"warning: {warning}", err=True)


@app.command()
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
        warnings = dbroles.migrate(settings)
    except dbroles.RoleError as exc:
        _fail(str(exc))
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo("database is at the latest migration", err=True)
    if settings.is_dev:
        db = Database(settings.database_url, session_info=dev_audit_keys(settings))
        try:
            with db.writer() as session:
                added = seed_dev_agreements(session)
                session.commit()
        finally:
            db.dispose()
        if added:
            typer.echo("dev: registered agreements " + ", ".join(added), err=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=64, envvar="RUJUKAN_WORKERS", help="Worker processes")
    ] = 1,
    proxy_headers: Annotated[
        bool,
        typer.Option(
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
            envvar="RUJUKAN_GRACEFUL_TIMEOUT",
            help="Seconds in-flight requests get to finish after SIGTERM",
        ),
    ] = 25,
) -> None:
    """Serve the API with uvicorn; SIGTERM lets in-flight requests finish first."""
    from service import serving

    serving.prepare_multiprocess_dir()
    settings = get_settings()
    ctx = _context()
    _check_database_role(ctx)
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
    _check_database_role(ctx)
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
            client, secret = clients.create_client(
                session, agency=agency, name=name, scope=scope, keyring=ctx.keyring
            )
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
            client, secret = clients.rotate_secret(session, client_id, keyring=ctx.keyring)
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


@keys_app.command("init")
def keys_init() -> None:
    """Create the signing, data and audit key files for prod; never overwrites an existing
    file (on an upgrade, it creates only the ones missing)."""
    from service.audit.keys import AuditKeyring
    from service.auth.keys import KeySet, new_key, save_keyset
    from service.crypto import DataKeyring

    settings = get_settings()
    files = {
        "signing_key_file": (
            settings.signing_key_path,
            lambda path: save_keyset(path, KeySet([new_key(generated=False)])),
        ),
        "data_key_file": (
            settings.data_key_path,
            lambda path: DataKeyring.create_file(path, generated=False),
        ),
        "audit_key_file": (
            settings.audit_key_path,
            lambda path: AuditKeyring.create_file(path, generated=False),
        ),
    }
    missing = {name: entry for name, entry in files.items() if not entry[0].exists()}
    if not missing:
        _fail(
            "refusing to overwrite existing key files: "
            + ", ".join(str(path) for path, _ in files.values())
        )
    created = {}
    for name, (path, create) in missing.items():
        try:
            create(path)
        except OSError as exc:
            _fail(f"cannot write {path}: {type(exc).__name__}")
        created[name] = str(path)
    kept = [str(path) for name, (path, _) in files.items() if name not in missing]
    if kept:
        typer.echo("kept existing key files: " + ", ".join(kept), err=True)
    typer.echo(json.dumps(created))


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


ReloadWait = Annotated[
    float | None,
    typer.Option(
        min=0,
        help="Pause after each key file change, for running servers to re-read it "
        "(default: their reload interval plus one second)",
    ),
]


def _reload_wait(wait_seconds: float | None) -> float:
    """The pause between the steps of a key rotation: the default, or the one asked for
    (with a warning when it is shorter than the servers' reload interval)."""
    from service.context import KEY_RELOAD_SECONDS
    from service.datakeys import DEFAULT_WAIT_SECONDS

    wait = DEFAULT_WAIT_SECONDS if wait_seconds is None else wait_seconds
    if wait <= KEY_RELOAD_SECONDS:
        typer.echo(
            f"warning: servers re-read the key file every {KEY_RELOAD_SECONDS}s; a wait of "
            f"{wait}s may not give them time",
            err=True,
        )
    return wait


@keys_app.command("rotate-data")
def keys_rotate_data(
    wait_seconds: ReloadWait = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per UPDATE batch")] = 200,
) -> None:
    """Re-encrypt personal data under a new data key, while the service keeps running."""
    from service.crypto import KeyFileError
    from service.datakeys import RotationError, rotate_data_key

    wait = _reload_wait(wait_seconds)
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


@keys_app.command("rotate-audit")
def keys_rotate_audit(
    wait_seconds: ReloadWait = None,
) -> None:
    """Add an audit key and make it the one that keys new entries; old keys stay in the file,
    for verifying the entries and heads they keyed."""
    from service.audit.rotation import rotate_audit_key
    from service.crypto import KeyFileError

    wait = _reload_wait(wait_seconds)
    ctx = _context()
    try:
        added, previous = rotate_audit_key(
            ctx, wait_seconds=wait, say=lambda line: typer.echo(line, err=True)
        )
    except KeyFileError as exc:
        _fail(f"audit key rotation did not finish: {exc}")
    typer.echo(json.dumps({"added": added, "previous": previous, "active": added}))


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


@agency_app.command("add")
def agency_add(
    code: Annotated[str, typer.Argument(help="Agency code, e.g. DINSOS_JATIM")],
    name: Annotated[str, typer.Option(help="The agency's full name")],
) -> None:
    """Add an agency; it can get clients and agreements at once, and running servers
    accept its tokens from external issuers within a minute."""
    from service.agreements.service import AgreementError, add_agency

    ctx = _context()
    try:
        with ctx.db.writer() as session:
            row = add_agency(session, code, name)
            session.commit()
    except AgreementError as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"code": row.code, "name": row.name}))


@agency_app.command("list")
def agency_list() -> None:
    """List agencies as JSON."""
    from service.agreements import repository

    ctx = _context()
    with ctx.db.reader() as session:
        rows = [repository.agency(session, code) for code in repository.agency_codes(session)]
        typer.echo(json.dumps([{"code": a.code, "name": a.name} for a in rows if a], indent=2))


def _parse_day(value: str | None, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} must be a date YYYY-MM-DD")
    return None


@agreement_app.command("add")
def agreement_add(
    number: Annotated[str, typer.Argument(help="The agreement's number, e.g. 'PKS/12/LPSK/2026'")],
    kind: Annotated[str, typer.Option(help="MoU or PKS")],
    agency: Annotated[
        list[str], typer.Option("--agency", help="One of the two agencies; give it twice")
    ],
    valid_from: Annotated[str, typer.Option(help="First day in force, YYYY-MM-DD")],
    valid_until: Annotated[
        str | None, typer.Option(help="Last day in force, YYYY-MM-DD (default: open-ended)")
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="A group code it covers (repeat; default: every group)"),
    ] = None,
    case_type: Annotated[
        list[str] | None,
        typer.Option(
            "--case-type", help="A case type code it covers (repeat; default: every case type)"
        ),
    ] = None,
) -> None:
    """Register an MoU or PKS between two agencies; audited."""
    from service.agreements.service import AgreementError, add_agreement, summary

    if len(agency) != 2:
        _fail("give exactly two agencies: --agency A --agency B")
    start = _parse_day(valid_from, "--valid-from")
    assert start is not None
    end = _parse_day(valid_until, "--valid-until")
    kinds = {"mou": "MoU", "pks": "PKS"}
    ctx = _context()
    try:
        with ctx.db.writer() as session:
            row = add_agreement(
                session,
                number=number,
                kind=kinds.get(kind.lower(), kind),
                agencies=(agency[0], agency[1]),
                valid_from=start,
                valid_until=end,
                groups=group or [],
                case_types=case_type or [],
            )
            session.commit()
            result = summary(row)
    except AgreementError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result))


@agreement_app.command("list")
def agreement_list() -> None:
    """List every agreement as JSON, with whether it is in force today."""
    from service.agreements.service import list_agreements

    ctx = _context()
    with ctx.db.reader() as session:
        typer.echo(json.dumps(list_agreements(session), indent=2))


@agreement_app.command("end")
def agreement_end(
    number: Annotated[str, typer.Argument(help="The agreement's number")],
    on: Annotated[
        str | None, typer.Option(help="The first day it no longer applies (default: today)")
    ] = None,
) -> None:
    """End an agreement before its term: from that day (UTC) it no longer covers referrals."""
    from service.agreements.service import AgreementError, end_agreement, summary

    day = _parse_day(on, "--on")
    ended = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) if day else None
    ctx = _context()
    try:
        with ctx.db.writer() as session:
            row = end_agreement(session, number, ended)
            session.commit()
            result = summary(row)
    except AgreementError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result))


@app.command()
def report(
    from_: Annotated[
        str | None, typer.Option("--from", help="First day (UTC) of the period, YYYY-MM-DD")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Last day (UTC) of the period, included")
    ] = None,
    agency: Annotated[
        str | None,
        typer.Option(help="Only this agency's referrals (default: every agency's)"),
    ] = None,
    direction: Annotated[
        str | None, typer.Option(help="With --agency: incoming or outgoing only")
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    chart: Annotated[
        Path | None,
        typer.Option(
            help="Also draw referrals per week and time per step into this PNG "
            "(needs matplotlib: pip install 'rujukan[report]')"
        ),
    ] = None,
) -> None:
    """Print the statistics of a period (the figures of GET /v1/stats) as JSON or CSV."""
    from service import errors
    from service.stats import report as reports
    from service.stats.service import compute

    if format_ not in ("json", "csv"):
        _fail("--format must be json or csv")
    if direction not in (None, "incoming", "outgoing"):
        _fail("--direction must be incoming or outgoing")
    start, end = _parse_day(from_, "--from"), _parse_day(to, "--to")
    ctx = _context()
    if agency is not None:
        with ctx.db.reader() as session:
            from service.agreements import repository

            if repository.agency(session, agency) is None:
                _fail(f"unknown agency {agency!r}")
    try:
        stats = compute(ctx, agency=agency, direction=direction, start=start, end=end)
        if chart is not None:
            drawn = reports.draw_chart(
                ctx, chart, agency=agency, direction=direction, start=start, end=end
            )
            typer.echo(json.dumps(drawn), err=True)
    except errors.DomainError as exc:
        _fail(exc.detail)
    except RuntimeError as exc:
        _fail(str(exc))
    sys.stdout.write(reports.as_json(stats) + "\n" if format_ == "json" else reports.as_csv(stats))


@app.command()
def demo(
    count: Annotated[int, typer.Option(min=1, max=2000, help="How many referrals")] = 120,
    months: Annotated[int, typer.Option(min=1, max=24, help="Spread over this many months")] = 6,
) -> None:
    """Fill an EMPTY dev database with fictitious referrals across the three agencies, in every
    state and outcome, made through the service (encrypted, audited, with history)."""
    from service.demo.loader import DemoError, load_demo

    ctx = _context()
    try:
        result = load_demo(ctx, count=count, months=months, say=lambda m: typer.echo(m, err=True))
    except DemoError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(result))


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
            help="A file of signed heads (from `rujukan audit head`, or a head file of the "
            "worker): also check that the trail still holds each head's last entry, unchanged",
        ),
    ] = None,
    heads: Annotated[
        Path | None,
        typer.Option(
            "--heads",
            help="The directory of head files the worker writes (RUJUKAN_AUDIT_HEAD_DIR): "
            "check the trail against every head in it (detects a truncated or rewritten tail)",
        ),
    ] = None,
) -> None:
    """Recompute the audit chain (its HMACs, with the audit key file); exit 1 naming the
    first bad entry, or the first head the trail no longer matches."""
    from service.audit.head import HEAD_FIELDS, HeadError, check_heads, load_head_dir, load_heads
    from service.audit.trail import verify_chain

    ctx = _context()
    keys, signing = ctx.audit_keys, ctx.keyset.verification_keys()
    found: list[tuple[str, dict[str, object]]] = []
    try:
        if head is not None:
            found.extend(load_heads(head, keys, signing))
        if heads is not None:
            found.extend(load_head_dir(heads, keys, signing))
    except HeadError as exc:
        _fail(str(exc))
    with ctx.db.reader() as session:
        count, bad_id, reason = verify_chain(session, keys)
        if bad_id is not None:
            _fail(f"audit entry {bad_id} is bad: {reason} ({count} entries verified before it)")
        try:
            check_heads(session, found)  # type: ignore[arg-type]
        except HeadError as exc:
            _fail(str(exc))
    report: dict[str, object] = {"entries": count, "valid": True}
    if found:
        latest = found[-1][1]
        report["heads"] = len(found)
        report["head"] = {k: latest[k] for k in HEAD_FIELDS}
    typer.echo(json.dumps(report))


@app.command()
def check() -> None:
    """Open every sealed value in the database with the data key file; exit 1 naming each one
    that cannot be opened (table, column and row), as the service marks such referrals
    `unavailable`."""
    from service.datakeys import check_sealed_values

    ctx = _context()
    checked, unreadable = check_sealed_values(ctx.db, ctx.keyring)
    for item in unreadable:
        where = ", ".join(f"{k}={v}" for k, v in item.row.items())
        typer.echo(f"error: {item.column} of row {where} cannot be opened: {item.reason}", err=True)
    report = {
        "sealed_values": checked,
        "unreadable": [{"column": i.column, "row": i.row, "reason": i.reason} for i in unreadable],
    }
    typer.echo(json.dumps(report))
    if unreadable:
        raise typer.Exit(1)


@audit_app.command("head")
def audit_head() -> None:
    """Print a signed head of the trail (count and last hash, with an HMAC under the audit
    key) as one JSON line, to keep elsewhere."""
    from service.audit.head import HeadError, current_head, seal_head

    ctx = _context()
    with ctx.db.reader() as session:
        try:
            head = current_head(session, ctx.audit_keys)
        except HeadError as exc:
            _fail(str(exc))
    # The signed line alone on stdout (for `>> heads.jsonl`); what it says, on stderr.
    typer.echo(json.dumps(head), err=True)
    typer.echo(seal_head(head, ctx.audit_keys))


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
                typer.echo(exc.format_message(), err=True)  # type: ignore[attr-defined]
                sys.exit(2)
            where = getattr(ctx, "command_path", None) or "rujukan"
            message = exc.format_message()  # type: ignore[attr-defined]
            fail(f"{message} (see `{where} --help`)", exc.exit_code)  # type: ignore[attr-defined]
        fail(f"unexpected {type(exc).__name__}; the command did not finish")
    sys.exit(result if isinstance(result, int) else 0)


def _is_usage_error(exc: BaseException) -> bool:
    # Typer carries its own copy of click, whose exception classes are not public: recognise
    # them by what every click exception has.
    return callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    )
