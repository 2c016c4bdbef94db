"""`rujukan audit head` and `rujukan audit verify --head FILE`, run as the operator would.

The chain alone cannot show that its newest entries were deleted, or deleted and replaced
by freshly hashed forgeries; a signed head kept outside the database can.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from service.audit import trail
from service.audit.head import HEAD_TYPE
from service.auth import tokens
from service.auth.keys import KeySet, load_keyset, new_key
from service.db import Database, upgrade_to_head

RUJUKAN = Path(sys.executable).parent / "rujukan"


@dataclass
class Operator:
    """The CLI on a database and key directory of its own."""

    url: str
    key_dir: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUJUKAN_")}
        env.update(
            RUJUKAN_DATABASE_URL=self.url,
            RUJUKAN_SIGNING_KEY_FILE=str(self.key_dir / "signing-keys.pem"),
            RUJUKAN_DATA_KEY_FILE=str(self.key_dir / "data-keys.json"),
        )
        return subprocess.run(
            [str(RUJUKAN), *args], env=env, cwd=self.key_dir, capture_output=True, text=True,
            timeout=120, check=False,
        )

    def ok(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.run(*args)
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
        return result

    def fails(self, *args: str, naming: list[str]) -> str:
        result = self.run(*args)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        assert "Traceback" not in output
        for word in naming:
            assert word.lower() in output.lower(), output
        return output

    def write(self, n: int = 1) -> None:
        """Ordinary audited writes (what the service appends for each action)."""
        append_entries(self.url, n, action="client.create")

    def head(self, name: str = "head.jws") -> tuple[Path, dict[str, Any]]:
        """Take a signed head and keep it in a file; (the file, what it says)."""
        result = self.ok("audit", "head")
        token = result.stdout.strip()
        assert token.count(".") == 2 and "\n" not in token
        path = self.key_dir / name
        path.write_text(result.stdout, encoding="ascii")
        return path, json.loads(result.stderr.strip().splitlines()[-1])


@pytest.fixture
def operator(backend: str, new_database_url, tmp_path: Path) -> Operator:  # type: ignore[no-untyped-def]
    op = Operator(new_database_url(backend), tmp_path)
    upgrade_to_head(op.url)
    return op


@contextmanager
def unprotected(url: str) -> Iterator[Session]:
    """A writer session with the append-only triggers off, as someone with DDL rights could."""
    db = Database(url)
    try:
        with db.writer() as session:
            if db.sqlite:
                saved = session.execute(text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND tbl_name = 'audit_entry'"
                )).all()
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
    finally:
        db.dispose()


def truncate(url: str, from_id: int) -> None:
    with unprotected(url) as session:
        session.execute(text("DELETE FROM audit_entry WHERE id >= :i"), {"i": from_id})


def append_entries(url: str, n: int, action: str = "test.forged") -> None:
    """Entries appended the ordinary way, correctly chained."""
    db = Database(url)
    try:
        for i in range(n):
            with db.writer() as session:
                trail.append(session, action=action, agency=None, client_id=None,
                             detail={"n": i})
                session.commit()
    finally:
        db.dispose()


def append_forgeries(url: str, n: int) -> None:
    """Entries that are correctly chained, but are not what happened."""
    append_entries(url, n)


def test_a_head_verifies_and_keeps_verifying_as_the_trail_grows(operator: Operator) -> None:
    operator.write(3)
    path, said = operator.head()
    assert said["count"] == 3 and said["last_id"] == 3 and len(said["last_hash"]) == 64
    assert said["signed_at"]
    report = json.loads(operator.ok("audit", "verify", "--head", str(path)).stdout)
    assert report["valid"] is True and report["head"]["last_hash"] == said["last_hash"]
    operator.write(2)
    report = json.loads(operator.ok("audit", "verify", "--head", str(path)).stdout)
    assert report["entries"] == 5 and report["head"]["count"] == 3


def test_the_head_is_a_jws_signed_with_the_current_signing_key(operator: Operator) -> None:
    operator.write(1)
    operator.ok("keys", "rotate")
    path, said = operator.head()
    keyset = load_keyset(operator.key_dir / "signing-keys.pem")
    token = path.read_text(encoding="ascii").strip()
    assert tokens.unverified_header(token)["kid"] == keyset.current.kid
    payload = tokens.verify_document(token, keyset.verification_keys(), typ=HEAD_TYPE)
    assert payload == said
    assert set(payload) == {"count", "last_id", "last_hash", "signed_at"}


def test_an_empty_trail_has_a_head_too(operator: Operator) -> None:
    path, said = operator.head()
    assert said["count"] == 0 and said["last_id"] is None and said["last_hash"] is None
    operator.ok("audit", "verify", "--head", str(path))
    operator.write(1)
    operator.ok("audit", "verify", "--head", str(path))


def test_a_truncated_tail_is_detected(operator: Operator) -> None:
    operator.write(5)
    path, said = operator.head()
    truncate(operator.url, 4)
    # The chain alone still looks fine...
    assert json.loads(operator.ok("audit", "verify").stdout)["entries"] == 3
    # ...the head does not.
    operator.fails("audit", "verify", "--head", str(path),
                   naming=["audit entry 5", "truncated", said["signed_at"]])


def test_a_truncated_tail_refilled_with_forgeries_is_detected(operator: Operator) -> None:
    operator.write(5)
    path, _ = operator.head()
    truncate(operator.url, 4)
    append_forgeries(operator.url, 3)
    assert json.loads(operator.ok("audit", "verify").stdout)["entries"] == 6
    operator.fails("audit", "verify", "--head", str(path), naming=["audit entry 5", "rewritten"])


def test_a_rewritten_last_entry_is_detected(operator: Operator) -> None:
    operator.write(3)
    path, _ = operator.head()
    truncate(operator.url, 3)
    append_forgeries(operator.url, 1)
    operator.ok("audit", "verify")
    operator.fails("audit", "verify", "--head", str(path), naming=["audit entry 3", "rewritten"])


def test_a_broken_chain_is_still_named_first(operator: Operator) -> None:
    operator.write(4)
    path, _ = operator.head()
    truncate(operator.url, 2)
    with unprotected(operator.url) as session:
        session.execute(text("UPDATE audit_entry SET action = 'tampered' WHERE id = 1"))
    operator.fails("audit", "verify", "--head", str(path), naming=["audit entry 1", "hash"])
    # and no head is signed over a broken chain
    operator.fails("audit", "head", naming=["audit entry 1", "refusing"])


def _forge(path: Path, change: dict[str, Any]) -> Path:
    header, payload, sig = path.read_text(encoding="ascii").strip().split(".")
    doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    doc.update(change)
    forged = base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()
    out = path.with_name("forged.jws")
    out.write_text(f"{header}.{forged}.{sig}\n", encoding="ascii")
    return out


def test_a_head_with_an_edited_payload_is_refused(operator: Operator) -> None:
    """Someone who truncated the trail cannot adjust the kept head to match."""
    operator.write(5)
    path, _ = operator.head()
    truncate(operator.url, 4)
    assert json.loads(operator.ok("audit", "verify").stdout)["entries"] == 3
    forged = _forge(path, {"count": 3, "last_id": 3})
    operator.fails("audit", "verify", "--head", str(forged), naming=["signature"])


def test_a_head_signed_by_another_key_is_refused(operator: Operator) -> None:
    operator.write(2)
    path, said = operator.head()
    stranger = tokens.sign_document(said, new_key(), typ=HEAD_TYPE)
    foreign = path.with_name("foreign.jws")
    foreign.write_text(stranger, encoding="ascii")
    operator.fails("audit", "verify", "--head", str(foreign), naming=["unknown key"])


def test_a_signed_document_of_another_kind_is_not_a_head(operator: Operator) -> None:
    """An access token is signed with the same key; it must not pass for a head."""
    operator.write(1)
    operator.ok("audit", "verify")  # creates the dev key files
    keyset: KeySet = load_keyset(operator.key_dir / "signing-keys.pem")
    token, _ = tokens.issue(keyset.current, issuer="rujukan", audience="rujukan-api",
                            subject="x", agency="LPSK", scopes=["audit:read"], ttl_seconds=600)
    path = operator.key_dir / "token.jws"
    path.write_text(token, encoding="ascii")
    operator.fails("audit", "verify", "--head", str(path), naming=["head", "type"])


@pytest.mark.parametrize("content", ["", "not a head", None], ids=["empty", "garbage", "missing"])
def test_an_unusable_head_file_fails_cleanly(operator: Operator, content: str | None) -> None:
    operator.write(1)
    path = operator.key_dir / "bad.jws"
    if content is not None:
        path.write_text(content, encoding="ascii")
    operator.fails("audit", "verify", "--head", str(path), naming=["head"])
