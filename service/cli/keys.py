"""`rujukan keys`: the signing, data and audit key files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from service.cli.common import fail, service_context
from service.config import get_settings

keys_app = typer.Typer(help="Manage signing, data and audit keys.", no_args_is_help=True)


@keys_app.command("init")
def keys_init() -> None:
    """Create the signing, data and audit key files for prod; never overwrites an existing
    file (on an upgrade, it creates only the ones missing)."""
    from service.audit.keys import AuditKeyring
    from service.auth.keys import KeySet, new_key, save_keyset
    from service.crypto import DataKeyring

    settings = get_settings()
    # Each file: its path, and what creates it there.
    files: dict[str, tuple[Path, Callable[[Path], object]]] = {
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
        fail(
            "refusing to overwrite existing key files: "
            + ", ".join(str(path) for path, _ in files.values())
        )
    created: dict[str, str] = {}
    for name, (path, create) in missing.items():
        try:
            create(path)
        except OSError as exc:
            fail(f"cannot write {path}: {type(exc).__name__}")
        created[name] = str(path)
    kept = [str(path) for name, (path, _) in files.items() if name not in missing]
    if kept:
        typer.echo("kept existing key files: " + ", ".join(kept), err=True)
    typer.echo(json.dumps(created))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new signing key; keys whose tokens have all expired are retired."""
    from service.auth.service import rotate_signing_key

    ctx = service_context()
    added, retired = rotate_signing_key(ctx)
    typer.echo(json.dumps({"added": added, "retired": retired}))


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
    ctx = service_context()
    try:
        report = rotate_data_key(
            ctx,
            wait_seconds=wait,
            batch_size=batch_size,
            say=lambda line: typer.echo(line, err=True),
        )
    except (RotationError, KeyFileError) as exc:
        fail(f"data key rotation did not finish: {exc}; it is safe to run it again")
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
    ctx = service_context()
    try:
        added, previous = rotate_audit_key(
            ctx, wait_seconds=wait, say=lambda line: typer.echo(line, err=True)
        )
    except KeyFileError as exc:
        fail(f"audit key rotation did not finish: {exc}")
    typer.echo(json.dumps({"added": added, "previous": previous, "active": added}))
