"""API clients: creation, secret checks, rotation and revocation."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlmodel import Session

from service.auth.models import ApiClient
from service.auth.scopes import parse_scopes, unknown_scopes
from service.dbtypes import utcnow
from service.taxonomy.models import Agency

_hasher = PasswordHasher()
# Verified when the client id is unknown, so that the answer takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class ClientError(ValueError):
    """A client cannot be created or changed as asked."""


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def create_client(session: Session, *, agency: str, name: str, scope: str) -> tuple[ApiClient, str]:
    """Register a client; the plain secret is returned once and never stored."""
    scopes = parse_scopes(scope)
    if not scopes:
        raise ClientError("give at least one scope")
    unknown = unknown_scopes(scopes)
    if unknown:
        raise ClientError("unknown scope(s): " + ", ".join(unknown))
    if session.get(Agency, agency) is None:
        raise ClientError(f"unknown agency {agency!r}")
    if not name.strip() or len(name) > 200:
        raise ClientError("name must be 1 to 200 characters")
    secret = _new_secret()
    client = ApiClient(
        client_id=f"{agency.lower()}-{secrets.token_hex(8)}",
        name=name.strip(),
        agency=agency,
        scopes=" ".join(scopes),
        secret_hash=_hasher.hash(secret),
    )
    session.add(client)
    session.flush()
    return client, secret


def authenticate(session: Session, client_id: str, secret: str) -> ApiClient | None:
    """The active client with this id and secret, or None."""
    client = (
        session.execute(select(ApiClient).where(ApiClient.client_id == client_id)).scalars().first()
    )
    target = client.secret_hash if client is not None else _DUMMY_HASH
    try:
        _hasher.verify(target, secret)
    except (VerificationError, InvalidHashError):
        return None
    if client is None or not client.active:
        return None
    return client


def list_clients(session: Session) -> Sequence[ApiClient]:
    return session.execute(select(ApiClient).order_by(ApiClient.created_at)).scalars().all()


def _find(session: Session, client_id: str) -> ApiClient:
    client = (
        session.execute(select(ApiClient).where(ApiClient.client_id == client_id)).scalars().first()
    )
    if client is None:
        raise ClientError(f"no client {client_id!r}")
    return client


def revoke_client(session: Session, client_id: str) -> ApiClient:
    """Stop a client from obtaining new tokens."""
    client = _find(session, client_id)
    client.active = False
    client.revoked_at = client.revoked_at or utcnow()
    session.add(client)
    return client


def rotate_secret(session: Session, client_id: str) -> tuple[ApiClient, str]:
    """Replace a client's secret; the old one stops working at once."""
    client = _find(session, client_id)
    if not client.active:
        raise ClientError(f"client {client_id!r} is revoked")
    secret = _new_secret()
    client.secret_hash = _hasher.hash(secret)
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
        "created_at": client.created_at.isoformat(),
        "revoked_at": client.revoked_at.isoformat() if client.revoked_at else None,
        "id": str(uuid.UUID(str(client.id))),
    }
