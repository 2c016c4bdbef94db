"""FastAPI dependencies that turn a bearer token into a Principal and check scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from service import errors
from service.auth import tokens
from service.auth.principal import Principal
from service.context import ServiceContext
from service.ratelimit import enforce_request_limit, rate_limits

_bearer = HTTPBearer(auto_error=False, description="Access token from POST /oauth/token")


# The dependencies below are `async def` and do no blocking I/O on the event loop: a plain
# `def` dependency costs a hop through the threadpool on every request. What may block (a
# remote JWKS, the agency list in the database, Redis) is sent to the threadpool explicitly.


async def get_context(request: Request) -> ServiceContext:
    """The process's ServiceContext."""
    return request.app.state.ctx  # type: ignore[no-any-return]


Context = Annotated[ServiceContext, Depends(get_context)]


def _verify(ctx: ServiceContext, token: str) -> tuple[dict[str, Any], str, Any]:
    """Full verification: (claims, the claim naming the agency, the external issuer or None).

    Tokens of this service are remembered once verified; those of trusted external issuers
    are checked in full every time (their keys come and go with a remote JWKS).
    """
    header = tokens.unverified_header(token)
    external = ctx.trusted_issuers.get(tokens.unverified_issuer(token))
    if external is None:
        settings = ctx.settings
        claims = tokens.verify(
            token,
            ctx.keyset.verification_keys(),
            issuer=settings.issuer,
            audience=settings.audience,
        )
        ctx.verified_tokens.put(token, claims, header["kid"])
        return claims, "agency", None
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    claims = tokens.verify(
        token,
        external.keys_for(kid),
        issuer=external.issuer.iss,
        audience=external.issuer.audience,
    )
    return claims, external.issuer.agency_claim, external


def _principal(claims: dict[str, Any], agency_claim: str) -> Principal:
    """The caller named by verified claims (401 when they lack the agency or the scope)."""
    agency = claims.get(agency_claim)
    scope = claims.get("scope", "")
    if isinstance(scope, list):  # some providers send `scope` as a list
        scope = " ".join(s for s in scope if isinstance(s, str))
    if not isinstance(agency, str) or not isinstance(scope, str):
        raise errors.Unauthorized("The access token is not valid: claims are incomplete.")
    return Principal(
        client_id=str(claims["sub"])[:64],
        agency=agency,
        scopes=frozenset(scope.split()),
        token_id=str(claims.get("jti", "")),
        issuer=str(claims.get("iss", "")),
    )


def _verify_in_full(ctx: ServiceContext, token: str) -> tuple[dict[str, Any], Principal]:
    """Verify a token not in the cache (blocking: may fetch a JWKS or read the database)."""
    try:
        claims, agency_claim, external = _verify(ctx, token)
    except tokens.TokenInvalid as exc:
        raise errors.Unauthorized(f"The access token is not valid: {exc}.") from exc
    principal = _principal(claims, agency_claim)
    if external is not None and principal.agency not in ctx.known_agencies():
        raise errors.Unauthorized("The access token is not valid: unknown agency.")
    return claims, principal


async def authenticate(
    request: Request,
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Verify the bearer token (401 when missing or bad) and count the client's request (429)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise errors.Unauthorized("A bearer access token is required.", error="invalid_request")
    token = credentials.credentials
    cached = ctx.verified_tokens.get(token)
    if cached is not None and any(k.kid == cached.kid for k in ctx.keyset.keys):
        claims = cached.claims
        principal = _principal(claims, "agency")
    else:
        claims, principal = await run_in_threadpool(_verify_in_full, ctx, token)
    # Keyed by the verified client, never by anything the caller could vary unverified;
    # a client's tokens share one quota.
    if rate_limits(request).shared:  # counted in Redis: a network round trip
        await run_in_threadpool(
            enforce_request_limit, request, principal.issuer, str(claims["sub"])
        )
    else:
        enforce_request_limit(request, principal.issuer, str(claims["sub"]))
    # For the access log: which client and agency made the request.
    request.state.principal = principal
    return principal


def require(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that demands one scope (403 without it)."""

    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if scope not in principal.scopes:
            raise errors.InsufficientScope(scope)
        return principal

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
