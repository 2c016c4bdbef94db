"""The rules of API clients and signing keys: issuing a token to a client, and the operator's
changes to clients and keys, each audited."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service.auth import clients, tokens
from service.auth.keys import rotate_keyset
from service.auth.models import ApiClient
from service.auth.scopes import parse_scopes
from service.crypto import DataKeyring
from service.errors import OAuthError, RateLimited
from service.i18n import msg
from service.ratelimit import TOKEN_FAILURE_POLICY, Quota

if TYPE_CHECKING:
    from service.context import ServiceContext
    from service.db.writes import Writes
    from service.ratelimit import RateLimits


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token and what its client is told about it (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    scopes: list[str]


def too_many_failures(quota: Quota) -> RateLimited:
    """The 429 for an address with too many failed authentications in the window, for this
    client id or for any.

    The status and `Retry-After` are what generic HTTP clients and retry layers act on (urllib3's
    Retry waits the given seconds on a 429). The body keeps the OAuth `error` member, which
    OAuth client libraries read from any 4xx token response (oauthlib, Authlib,
    golang.org/x/oauth2, Spring Security), and it is `invalid_client`: a code of RFC 6749 §5.2
    that each of them maps to a known error, and the truthful reading (this client
    authentication was not accepted). `slow_down` is defined only for polling in the
    device grant (RFC 8628 §3.5) and `temporarily_unavailable` only for the authorization
    endpoint, where it blames server overload; a library meets either as an unknown code here.
    The answer is the same for a right or wrong secret and a known or unknown id, so it tells
    a prober nothing.
    """
    detail = (
        msg(
            "Too many failed client authentications for this client_id from this address; "
            "retry after {seconds} seconds.",
            seconds=quota.reset,
        )
        if quota.policy == TOKEN_FAILURE_POLICY
        else msg(
            "Too many failed client authentications for any client_id from this address; "
            "retry after {seconds} seconds.",
            seconds=quota.reset,
        )
    )
    return RateLimited(
        detail,
        policy=quota.policy,
        headers=quota.headers(),
        error="invalid_client",
        error_description=detail,
    )


def issue_token(
    ctx: ServiceContext,
    limits: RateLimits,
    *,
    client_id: str | None,
    secret: str | None,
    scope: str | None,
    address: str,
) -> IssuedToken:
    """Authenticate a client by its secret, from an address, and sign a token for the scopes
    it asks (all it was granted when it asks none)."""
    if not client_id:
        raise OAuthError("invalid_client", msg("Client authentication failed."), 401)
    # Checked before the secret, and the same for unknown ids: a locked client id answers 429
    # even to the right secret, so guessing stops and nothing tells which ids exist. Counted
    # per address (the proxy's forwarded one where RUJUKAN_PROXY_HEADERS is set), so that
    # the guesser is stopped and not the client it guesses at.
    lockout = limits.token_lockout(client_id, address)
    if lockout is not None:
        raise too_many_failures(lockout)
    client = None
    if secret:
        client = clients.authenticate(ctx.db, ctx.keyring, client_id, secret)
    if client is None:
        limits.record_token_failure(client_id, address)
        raise OAuthError("invalid_client", msg("Client authentication failed."), 401)
    allowed = parse_scopes(client.scopes)
    requested = parse_scopes(scope) if scope is not None else allowed
    if not requested or any(s not in allowed for s in requested):
        raise OAuthError(
            "invalid_scope", msg("The requested scope is not granted to this client.")
        )
    settings = ctx.settings
    token, _ = tokens.issue(
        ctx.keyset.current,
        issuer=settings.issuer,
        audience=settings.audience,
        subject=client.client_id,
        agency=client.agency,
        scopes=requested,
        ttl_seconds=settings.token_ttl_seconds,
    )
    return IssuedToken(access_token=token, expires_in=settings.token_ttl_seconds, scopes=requested)


def register_client(
    w: Writes, *, agency: str, name: str, scope: str, keyring: DataKeyring
) -> tuple[ApiClient, str]:
    """Register a client and audit it; the plain secret is returned once and never stored."""
    client, secret = clients.create_client(
        w.session, agency=agency, name=name, scope=scope, keyring=keyring
    )
    w.append_audit(
        action="client.create",
        agency=None,
        client_id=None,
        detail={"client": client.client_id, "client_agency": agency, "scope": client.scopes},
    )
    return client, secret


def revoke_client(w: Writes, client_id: str) -> ApiClient:
    """Revoke a client and audit it: it gets no new tokens from now on."""
    client = clients.revoke_client(w.session, client_id)
    w.append_audit(
        action="client.revoke", agency=None, client_id=None, detail={"client": client_id}
    )
    return client


def rotate_client_secret(
    w: Writes, client_id: str, *, keyring: DataKeyring
) -> tuple[ApiClient, str]:
    """Give a client a new secret and audit it; the old one stops working at once."""
    client, secret = clients.rotate_secret(w.session, client_id, keyring=keyring)
    w.append_audit(
        action="client.rotate_secret",
        agency=None,
        client_id=None,
        detail={"client": client_id},
    )
    return client, secret


def rotate_signing_key(ctx: ServiceContext) -> tuple[str, list[str]]:
    """Add a signing key, retire the keys whose tokens have all expired, and audit it; the
    new key's id and the retired ones'."""
    settings = ctx.settings
    added, retired = rotate_keyset(
        settings.signing_key_path, dt.timedelta(seconds=settings.token_ttl_seconds)
    )
    ctx.db.write(
        lambda w: w.append_audit(
            action="keys.rotate",
            agency=None,
            client_id=None,
            detail={"added": added.kid, "retired": retired},
        )
    )
    return added.kid, retired
