"""The audit key file: the HMAC keys that chain the audit trail and sign its heads.

The keys live outside the database, so whoever can write the database but not read this file
cannot compute a valid entry. Every key that ever keyed an entry must stay in the file: an
entry names its key, and `rujukan audit verify` needs that key to check it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.crypto import (
    GENERATED_MARKER,
    KeyFileError,
    activate_key,
    add_key,
    b64decode,
    b64encode,
    new_key_id,
    write_key_document,
)
from service.db.types import utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from service.config import Settings

# The `Session.info` entry through which a session finds the audit keys (a callable giving
# the current AuditKeyring): set by ServiceContext on every session of its database.
SESSION_KEY = "rujukan_audit_keys"
KEY_ID_PREFIX = "a"


@dataclass(frozen=True)
class AuditKey:
    """One HMAC key of the audit trail and when it was made."""

    secret: bytes
    created_at: dt.datetime


@dataclass(frozen=True)
class AuditKeyring:
    """Audit keys by id; the active one keys new entries and heads."""

    active: str
    keys: dict[str, AuditKey]
    generated: bool = False

    @classmethod
    def load(cls, path: Path) -> AuditKeyring:
        """Read an audit key file."""
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            keys = {
                kid: AuditKey(
                    b64decode(value["key"]), dt.datetime.fromisoformat(value["created_at"])
                )
                for kid, value in doc["keys"].items()
            }
            ring = cls(
                active=doc["active"], keys=keys, generated=doc.get("origin") == GENERATED_MARKER
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyFileError(f"cannot read audit key file {path}: {type(exc).__name__}") from exc
        if ring.active not in ring.keys or any(len(k.secret) != 32 for k in ring.keys.values()):
            raise KeyFileError(f"audit key file {path} needs 256-bit keys and a valid active id")
        if any(k.created_at.tzinfo is None for k in ring.keys.values()):
            raise KeyFileError(f"audit key file {path} needs creation times with a time zone")
        return ring

    @classmethod
    def load_or_create(cls, path: Path, *, allow_generate: bool) -> AuditKeyring:
        """Read the key file, generating one first where that is allowed (dev)."""
        if not path.exists():
            if not allow_generate:
                raise KeyFileError(f"audit key file {path} does not exist")
            cls.create_file(path, generated=True)
        return cls.load(path)

    @staticmethod
    def create_file(path: Path, *, generated: bool) -> None:
        """Write a new audit key file (mode 0600) with one key."""
        kid = new_key_id(KEY_ID_PREFIX)
        doc: dict[str, Any] = {"active": kid, "keys": {kid: _new_key()}}
        if generated:
            doc = {"origin": GENERATED_MARKER, **doc}
        write_key_document(path, doc)

    @property
    def oldest(self) -> dt.datetime:
        """When the oldest key of the file was made."""
        return min(key.created_at for key in self.keys.values())

    def mac(self, kid: str, message: bytes) -> str:
        """HMAC-SHA256 of `message` under key `kid`, in hex; KeyFileError for an unknown id."""
        key = self.keys.get(kid)
        if key is None:
            raise KeyFileError(f"audit key {kid!r} is not in the audit key file")
        return hmac.new(key.secret, message, hashlib.sha256).hexdigest()


def _new_key() -> dict[str, str]:
    return {"key": b64encode(secrets.token_bytes(32)), "created_at": utcnow().isoformat()}


def add_audit_key(path: Path) -> str:
    """Add a new audit key to the file as known but not active; its id.

    Every process that verifies entries or heads must know a key before anything is keyed
    with it: `activate_audit_key` comes only after they have re-read the file.
    """
    return add_key(path, load=AuditKeyring.load, prefix=KEY_ID_PREFIX, value=_new_key)


def activate_audit_key(path: Path, kid: str) -> str:
    """Make a known audit key the one that keys new entries; the id of the key it replaces."""
    return activate_key(path, kid, load=AuditKeyring.load, what="audit key")


def dev_audit_keys(settings: Settings) -> dict[str, Any]:
    """The session info that gives a dev database's sessions the audit keys (generated if
    missing), for a command that writes without a whole ServiceContext."""
    keys = AuditKeyring.load_or_create(settings.audit_key_path, allow_generate=settings.is_dev)
    return {SESSION_KEY: lambda: keys}


def session_keys(session: Session | None) -> AuditKeyring:
    """The audit keys of a session of the service context's database."""
    provider = session.info.get(SESSION_KEY) if session is not None else None
    if provider is None:
        raise KeyFileError("no audit keys: use a session of the service context's database")
    keys: AuditKeyring = provider()
    return keys
