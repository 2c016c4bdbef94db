"""The operator's side of the audit tests: the CLI on a database and key directory of its own,
and what someone with the database owner's rights (but not the key files) can do to the trail."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlmodel import Session

from service.config import Settings
from service.context import ServiceContext
from service.db import Database
from tests.support import writer_session
from tests.support.cli import cli_environment, run


@dataclass
class Operator:
    """The CLI on a database and key directory of its own."""

    url: str
    key_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return Settings(
            database_url=self.url,
            signing_key_file=self.key_dir / "signing-keys.pem",
            data_key_file=self.key_dir / "data-keys.json",
            embedded_dispatcher=False,
        )

    def environment(self) -> dict[str, str]:
        return cli_environment(self.url, self.key_dir, **self.env)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(args, self.environment(), self.key_dir)

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def fails(self, *args: str, naming: list[str]) -> str:
        result = self.run(*args)
        output = result.stdout + result.stderr
        assert result.returncode == 1, output
        assert "Traceback" not in output
        for word in naming:
            assert word.lower() in output.lower(), output
        return output

    def verify(self, *args: str) -> dict[str, Any]:
        """`rujukan audit verify`, which must pass; its report."""
        return json.loads(self.ok("audit", "verify", *args).stdout)  # type: ignore[no-any-return]

    @contextmanager
    def service(self) -> Iterator[ServiceContext]:
        """The service's own context on this database and these keys (dev: made if missing)."""
        ctx = ServiceContext.build(self.settings)
        try:
            yield ctx
        finally:
            ctx.db.dispose()

    def write(self, n: int = 1, agencies: Sequence[str | None] = (None,)) -> None:
        """`n` entries appended the ordinary way, by the agencies in turn."""
        with self.service() as ctx:
            for i in range(n):
                ctx.db.write(
                    lambda w, i=i: w.append_audit(
                        action="test.entry", agency=agencies[i % len(agencies)],
                        client_id=None, detail={"n": i},
                    )
                )  # fmt: skip


@contextmanager
def unprotected(url: str) -> Iterator[Session]:
    """A session with the append-only triggers off, as the database owner could; they are back
    (and what was done stays done) when the block ends."""
    with owner_session(url) as session:
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            saved = session.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'audit_entry'"
            )).all()  # fmt: skip
            assert {name for name, _ in saved} >= {"audit_entry_no_delete"}
            for name, _ in saved:
                session.execute(text(f'DROP TRIGGER "{name}"'))
            yield session
            for _, sql in saved:
                session.execute(text(sql))
        else:
            session.execute(text("ALTER TABLE audit_entry DISABLE TRIGGER USER"))
            yield session
            session.execute(text("ALTER TABLE audit_entry ENABLE TRIGGER USER"))
        session.commit()


@contextmanager
def owner_session(url: str) -> Iterator[Session]:
    """A writer session on `url` with the database's rights and none of the service's keys."""
    db = Database(url)
    try:
        with writer_session(db) as session:
            yield session
    finally:
        db.dispose()


def truncate(url: str, from_id: int) -> None:
    """Delete the entries from `from_id` on, as the database owner could."""
    with unprotected(url) as session:
        session.execute(text("DELETE FROM audit_entry WHERE id >= :i"), {"i": from_id})
