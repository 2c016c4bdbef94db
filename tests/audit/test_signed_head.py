"""`rujukan audit head` and `rujukan audit verify --head FILE`, run as the operator would.

The chain alone cannot show that its newest entries were deleted, or deleted and replaced
by freshly keyed forgeries; a signed head kept outside the database can.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from service.audit.head import HEAD_TYPE, LINE_TYPE, seal_head
from service.audit.keys import AuditKeyring
from service.auth import tokens
from service.auth.keys import KeySet, load_keyset, new_key
from service.db import upgrade_to_head
from tests.support.operator import Operator, truncate, unprotected


def take_head(operator: Operator, name: str = "head.jsonl") -> tuple[Path, dict[str, Any]]:
    """Take a signed head and keep it in a file; (the file, what it says)."""
    result = operator.ok("audit", "head")
    line = result.stdout.strip()
    assert "\n" not in line and json.loads(line)["type"] == LINE_TYPE
    path = operator.key_dir / name
    path.write_text(result.stdout, encoding="utf-8")
    return path, json.loads(result.stderr.strip().splitlines()[-1])


@pytest.fixture
def operator(backend: str, new_database_url, tmp_path: Path) -> Operator:  # type: ignore[no-untyped-def]
    op = Operator(new_database_url(backend), tmp_path)
    upgrade_to_head(op.url)
    return op


def test_a_head_verifies_and_keeps_verifying_as_the_trail_grows(operator: Operator) -> None:
    operator.write(3)
    path, said = take_head(operator)
    assert said["count"] == 3 and said["last_id"] == 3 and len(said["last_hash"]) == 64
    assert said["signed_at"]
    report = operator.verify("--head", str(path))
    assert report["valid"] is True and report["head"]["last_hash"] == said["last_hash"]
    operator.write(2)
    report = operator.verify("--head", str(path))
    assert report["entries"] == 5 and report["head"]["count"] == 3


def test_the_head_is_keyed_with_the_active_audit_key(operator: Operator) -> None:
    """The audit key stays in its file as long as the entries it keyed: unlike the token
    signing key, which `keys rotate` retires, it keeps old heads verifiable."""
    operator.write(1)
    path, said = take_head(operator)
    keys = AuditKeyring.load(operator.key_dir / "audit-keys.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["key_id"] == keys.active
    assert {k: doc[k] for k in said} == said
    assert doc["mac"] == json.loads(seal_head(said, keys))["mac"]


def test_a_head_of_an_earlier_version_still_verifies(operator: Operator) -> None:
    """Heads were JWS signed with the token signing key: they are still read."""
    operator.write(3)
    _, said = take_head(operator)
    keyset = load_keyset(operator.key_dir / "signing-keys.pem")
    jws = operator.key_dir / "old-head.jws"
    jws.write_text(tokens.sign_document(said, keyset.current, typ=HEAD_TYPE), encoding="ascii")
    assert operator.verify("--head", str(jws))["head"]["count"] == 3
    truncate(operator.url, 3)
    operator.fails("audit", "verify", "--head", str(jws), naming=["audit entry 3", "truncated"])


def test_an_empty_trail_has_a_head_too(operator: Operator) -> None:
    path, said = take_head(operator)
    assert said["count"] == 0 and said["last_id"] is None and said["last_hash"] is None
    operator.verify("--head", str(path))
    operator.write(1)
    operator.verify("--head", str(path))


def test_a_truncated_tail_is_detected(operator: Operator) -> None:
    operator.write(5)
    path, said = take_head(operator)
    truncate(operator.url, 4)
    # The chain alone still looks fine...
    assert operator.verify()["entries"] == 3
    # ...the head does not.
    operator.fails("audit", "verify", "--head", str(path),
                   naming=["audit entry 5", "truncated", said["signed_at"], "head.jsonl:1"])


def test_a_truncated_tail_refilled_with_new_entries_is_detected(operator: Operator) -> None:
    operator.write(5)
    path, _ = take_head(operator)
    truncate(operator.url, 4)
    operator.write(3)  # correctly keyed, but not what happened
    assert operator.verify()["entries"] == 6
    operator.fails("audit", "verify", "--head", str(path), naming=["audit entry 5", "rewritten"])


def test_a_rewritten_last_entry_is_detected(operator: Operator) -> None:
    operator.write(3)
    path, _ = take_head(operator)
    truncate(operator.url, 3)
    operator.write(1)
    operator.verify()
    operator.fails("audit", "verify", "--head", str(path), naming=["audit entry 3", "rewritten"])


def test_a_broken_chain_is_still_named_first(operator: Operator) -> None:
    operator.write(4)
    path, _ = take_head(operator)
    truncate(operator.url, 2)
    with unprotected(operator.url) as session:
        session.execute(text("UPDATE audit_entry SET action = 'tampered' WHERE id = 1"))
    operator.fails("audit", "verify", "--head", str(path), naming=["audit entry 1", "hash"])
    # and no head is signed over a broken chain
    operator.fails("audit", "head", naming=["audit entry 1", "refusing"])


def _edit(path: Path, change: dict[str, Any]) -> Path:
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc.update(change)
    out = path.with_name("edited.jsonl")
    out.write_text(json.dumps(doc) + "\n", encoding="utf-8")
    return out


def test_a_head_with_an_edited_content_is_refused(operator: Operator) -> None:
    """Someone who truncated the trail cannot adjust the kept head to match."""
    operator.write(5)
    path, _ = take_head(operator)
    truncate(operator.url, 4)
    assert operator.verify()["entries"] == 3
    forged = _edit(path, {"count": 3, "last_id": 3})
    operator.fails("audit", "verify", "--head", str(forged), naming=["MAC", "edited.jsonl:1"])


def test_a_head_signed_by_another_key_is_refused(operator: Operator, tmp_path: Path) -> None:
    operator.write(2)
    path, said = take_head(operator)
    AuditKeyring.create_file(tmp_path / "stranger.json", generated=False)
    stranger = AuditKeyring.load(tmp_path / "stranger.json")
    foreign = path.with_name("foreign.jsonl")
    foreign.write_text(seal_head(said, stranger) + "\n", encoding="utf-8")
    operator.fails("audit", "verify", "--head", str(foreign),
                   naming=[stranger.active, "not in the audit key file"])
    jws = path.with_name("foreign.jws")
    jws.write_text(tokens.sign_document(said, new_key(), typ=HEAD_TYPE), encoding="ascii")
    operator.fails("audit", "verify", "--head", str(jws), naming=["unknown key"])


def test_a_signed_document_of_another_kind_is_not_a_head(operator: Operator) -> None:
    """An access token is signed with the signing key; it must not pass for a head."""
    operator.write(1)
    keyset: KeySet = load_keyset(operator.key_dir / "signing-keys.pem")
    token, _ = tokens.issue(keyset.current, issuer="rujukan", audience="rujukan-api",
                            subject="x", agency="LPSK", scopes=["audit:read"], ttl_seconds=600)
    path = operator.key_dir / "token.jws"
    path.write_text(token, encoding="ascii")
    operator.fails("audit", "verify", "--head", str(path), naming=["head", "type"])


@pytest.mark.parametrize(
    "content", ["", "not a head", '{"type": "rujukan-audit-head"}', "[1]", None],
    ids=["empty", "garbage", "no mac", "not an object", "missing"],
)
def test_an_unusable_head_file_fails_cleanly(operator: Operator, content: str | None) -> None:
    operator.write(1)
    path = operator.key_dir / "bad.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    operator.fails("audit", "verify", "--head", str(path), naming=["head"])
