"""API clients: creation, secret checks, rotation and revocation.

A client secret is 32 random bytes made here, never chosen by a person, so there is nothing
for a slow password hash to protect: guessing it is hopeless either way. What protects a
stored hash is a key that is not in the database: the secret is stored as an HMAC-SHA256
under a key derived (HKDF, with a label of its own) from the data key file's index key, and
checked in microseconds, so a stranger sending secrets cannot tie up the server. Hashes
written before, with Argon2, are still accepted and replaced by the keyed hash on their
client's next success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import secrets
import uuid
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col

from service.auth.models import ApiClient
from service.auth.scopes import parse_scopes, unknown_scopes
from service.crypto import DataKeyring
from service.db import Database
from service.db.types import utcnow
from service.taxonomy import repository as taxonomy
from service.times import wire

if TYPE_CHECKING:
    from service.db.writes import Writes

log = logging.getLogger("rujukan.auth")

KEYED_PREFIX = "hmac-sha256$"
_HASH_KEY_LABEL = b"rujukan api-client secret hash v1"
_legacy_hasher = PasswordHasher()
# Compared against when the client id is unknown, so that it costs what a wrong secret costs.
_UNKNOWN = (KEYED_PREFIX + "A" * 43).encode("ascii")


class ClientError(ValueError):
    """A client cannot be created or changed as asked."""


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


@lru_cache(maxsize=4)
def _hash_key(index_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HASH_KEY_LABEL).derive(
        index_key
    )


def hash_secret(keyring: DataKeyring, client_id: str, secret: str) -> str:
    """The stored form of a client's secret: a keyed hash, bound to the client id."""
    message = f"{client_id}\x00{secret}".encode("utf-8", "surrogatepass")
    mac = hmac.new(_hash_key(keyring.index_key), message, hashlib.sha256).digest()
    return KEYED_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def _legacy_matches(stored: str, secret: str) -> bool:
    """Whether a secret matches a hash written before keyed hashes (slow: Argon2)."""
    try:
        return _legacy_hasher.verify(stored, secret)
    except (VerificationError, InvalidHashError):
        return False


def create_client(
    session: Session, *, agency: str, name: str, scope: str, keyring: DataKeyring
) -> tuple[ApiClient, str]:
    """Register a client; the plain secret is returned once and never stored."""
    scopes = parse_scopes(scope)
    if not scopes:
        raise ClientError("give at least one scope")
    unknown = unknown_scopes(scopes)
    if unknown:
        raise ClientError("unknown scope(s): " + ", ".join(unknown))
    if taxonomy.agency(session, agency) is None:
        raise ClientError(f"unknown agency {agency!r}")
    if not name.strip() or len(name) > 200:
        raise ClientError("name must be 1 to 200 characters")
    secret = _new_secret()
    client_id = f"{agency.lower()}-{secrets.token_hex(8)}"
    now = utcnow()
    client = ApiClient(
        client_id=client_id,
        name=name.strip(),
        agency=agency,
        scopes=" ".join(scopes),
        secret_hash=hash_secret(keyring, client_id, secret),
        # Equal: a secret changed later than its client was created marks a rotation.
        created_at=now,
        secret_changed_at=now,
    )
    session.add(client)
    session.flush()
    return client, secret


def authenticate(
    db: Database, keyring: DataKeyring, client_id: str, secret: str
) -> ApiClient | None:
    """The active client with this id and secret, or None.

    A wrong secret or an unknown id costs one HMAC; only a client still stored with an
    Argon2 hash is checked slowly, and its first success stores the keyed hash instead.
    """
    with db.autocommit() as session:  # one statement: no transaction to begin and end
        client = _by_id(session, client_id)
    offered = hash_secret(keyring, client_id, secret).encode("ascii")
    if client is None:
        hmac.compare_digest(offered, _UNKNOWN)
        return None
    stored = client.secret_hash
    if stored.startswith(KEYED_PREFIX):
        matches = hmac.compare_digest(offered, stored.encode("ascii", "replace"))
    else:
        matches = _legacy_matches(stored, secret)
        if matches and client.active:
            _store_keyed_hash(db, client, offered.decode("ascii"))
    if not matches or not client.active:
        return None
    return client


def _store_keyed_hash(db: Database, client: ApiClient, keyed: str) -> None:
    """Replace a legacy hash by the keyed one, unless the secret changed meanwhile."""
    legacy = client.secret_hash

    def upgrade(w: Writes) -> None:
        w.session.execute(
            update(ApiClient)
            .where(col(ApiClient.id) == client.id, col(ApiClient.secret_hash) == legacy)
            .values(secret_hash=keyed)
        )

    try:
        db.write(upgrade)
    except SQLAlchemyError as exc:
        # The client did authenticate; the slow check simply runs again next time.
        log.warning(
            "could not store the keyed hash of a client secret",
            extra={"error_type": type(exc).__name__},
        )
        return
    client.secret_hash = keyed


def token_cutoffs(session: Session) -> dict[str, float]:
    """Client id -> the issue time (epoch seconds) before which its tokens no longer count:
    infinite for a revoked client, the secret's change for a rotated one."""
    rows = session.execute(
        select(
            col(ApiClient.client_id), col(ApiClient.active), col(ApiClient.secret_changed_at)
        ).where(
            or_(
                col(ApiClient.active) == False,  # noqa: E712 - a SQL expression
                col(ApiClient.secret_changed_at) > col(ApiClient.created_at),
            )
        )
    )
    return {
        client_id: math.inf if not active else float(math.floor(changed.timestamp()))
        for client_id, active, changed in rows
    }


def list_clients(session: Session) -> Sequence[ApiClient]:
    """Every client, oldest first."""
    return session.execute(select(ApiClient).order_by(col(ApiClient.created_at))).scalars().all()


def _by_id(session: Session, client_id: str) -> ApiClient | None:
    return (
        session.execute(select(ApiClient).where(col(ApiClient.client_id) == client_id))
        .scalars()
        .first()
    )


def _find(session: Session, client_id: str) -> ApiClient:
    client = _by_id(session, client_id)
    if client is None:
        raise ClientError(f"no client {client_id!r}")
    return client


def revoke_client(session: Session, client_id: str) -> ApiClient:
    """Stop a client from obtaining new tokens; its tokens already issued stop within
    seconds (see `service.auth.revocation`)."""
    client = _find(session, client_id)
    client.active = False
    client.revoked_at = client.revoked_at or utcnow()
    session.add(client)
    return client


def rotate_secret(
    session: Session, client_id: str, *, keyring: DataKeyring
) -> tuple[ApiClient, str]:
    """Replace a client's secret; the old one stops working at once, and so do tokens
    issued before (within seconds: see `service.auth.revocation`)."""
    client = _find(session, client_id)
    if not client.active:
        raise ClientError(f"client {client_id!r} is revoked")
    secret = _new_secret()
    client.secret_hash = hash_secret(keyring, client.client_id, secret)
    client.secret_changed_at = utcnow()
    session.add(client)
    return client, secret


def client_summary(client: ApiClient) -> dict[str, object]:
    """A client without its secret hash, for listings."""
    return {
        "client_id": client.client_id,
        "name": client.name,
        "agency": client.agency,
        "scope": client.scopes,
        "active": client.active,
        "created_at": wire(client.created_at),
        "revoked_at": wire(client.revoked_at) if client.revoked_at else None,
        "id": str(uuid.UUID(str(client.id))),
    }
