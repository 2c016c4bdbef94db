"""FastAPI dependencies that turn a bearer token into a Principal and check scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, OAuth2
from starlette.concurrency import run_in_threadpool

from service import errors
from service.auth import scopes, tokens
from service.auth.principal import Principal
from service.config import TrustedIssuer
from service.context import ServiceContext
from service.i18n import msg
from service.ratelimit import enforce_request_limit, rate_limits

TOKEN_URL = "/oauth/token"  # noqa: S105 - a path, not a secret
# Operation member naming the scopes of which a route needs one; replaced in the document by
# one OAuth2 requirement each (service.openapi_docs.tidy_security).
ANY_SCOPE_OF = scopes.ANY_SCOPE_OF

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from POST /oauth/token, pasted as it is",
)
# The same bearer token, described as how it is obtained: the client-credentials grant. It
# lets Swagger UI's Authorize button fetch a token with a client id and secret, and names in
# each operation's `security` the scopes the operation needs (see `require`).
_oauth2 = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl=TOKEN_URL, scopes=dict(scopes.DESCRIPTIONS)
        )
    ),
    scheme_name=scopes.OAUTH2_SCHEME,
    description=(
        "OAuth 2.0 client credentials (RFC 6749 §4.4): a client id and secret from "
        "`rujukan client create`, exchanged at POST /oauth/token for a bearer token"
    ),
    auto_error=False,
)


# The dependencies below are `async def` and do no blocking I/O on the event loop: a plain
# `def` dependency costs a hop through the threadpool on every request. What may block (a
# remote JWKS, the agency list in the database, Redis) is sent to the threadpool explicitly.


async def get_context(request: Request) -> ServiceContext:
    """The process's ServiceContext."""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Context = Annotated[ServiceContext, Depends(get_context)]


def _verify(ctx: ServiceContext, token: str) -> tuple[dict[str, Any], TrustedIssuer | None]:
    """Full verification: (claims, the external issuer or None for Rujukan's own tokens).

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
        return claims, None
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    claims = tokens.verify(
        token,
        external.keys_for(kid),
        issuer=external.issuer.iss,
        audience=external.issuer.audience,
    )
    return claims, external.issuer


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """The token's scopes (401 when the claim is malformed)."""
    scope = claims.get("scope", "")
    if isinstance(scope, list):  # some providers send `scope` as a list
        scope = " ".join(s for s in scope if isinstance(s, str))
    if not isinstance(scope, str):
        raise errors.Unauthorized(msg("The access token is not valid: claims are incomplete."))
    return frozenset(scope.split())


def _principal(claims: dict[str, Any], agency: Any, scopes: frozenset[str]) -> Principal:
    if not isinstance(agency, str):
        raise errors.Unauthorized(msg("The access token is not valid: claims are incomplete."))
    return Principal(
        client_id=str(claims["sub"])[:64],
        agency=agency,
        scopes=scopes,
        token_id=str(claims.get("jti", "")),
        issuer=str(claims.get("iss", "")),
    )


def _own_principal(claims: dict[str, Any]) -> Principal:
    """The caller named by a verified token of this service."""
    return _principal(claims, claims.get("agency"), _scopes(claims))


def _external_principal(claims: dict[str, Any], issuer: TrustedIssuer) -> Principal:
    """The caller named by a verified token of an external issuer, held to what the issuer
    is bound to: one of its agencies (401 otherwise), and at most its scopes (the rest are
    dropped, so a token left with none is refused every scoped operation with 403)."""
    bound = issuer.bound_agencies
    if issuer.agency_claim not in claims and len(bound) == 1:
        named: Any = next(iter(bound))
    else:
        named = claims.get(issuer.agency_claim)
    if not isinstance(named, str) or named not in bound:
        raise errors.Unauthorized(
            msg("The access token is not valid: its issuer does not speak for that agency.")
        )
    return _principal(claims, named, _scopes(claims) & frozenset(issuer.scopes))


def _verify_in_full(ctx: ServiceContext, token: str) -> tuple[dict[str, Any], Principal]:
    """Verify a token not in the cache (blocking: may fetch a JWKS or read the database)."""
    try:
        claims, external = _verify(ctx, token)
    except tokens.TokenInvalid as exc:
        raise errors.Unauthorized(
            msg("The access token is not valid: {reason}.", reason=exc.reason)
        ) from exc
    if external is None:
        return claims, _own_principal(claims)
    principal = _external_principal(claims, external)
    if principal.agency not in ctx.known_agencies():
        raise errors.Unauthorized(msg("The access token is not valid: unknown agency."))
    return claims, principal


async def authenticate(
    request: Request,
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    _documented: Annotated[str | None, Depends(_oauth2)],
) -> Principal:
    """Verify the bearer token (401 when missing or bad) and count the client's request (429)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise errors.Unauthorized(
            msg("A bearer access token is required."), error="invalid_request"
        )
    token = credentials.credentials
    cached = ctx.verified_tokens.get(token)
    if cached is not None and any(k.kid == cached.kid for k in ctx.keyset.keys):
        claims = cached.claims
        principal = _own_principal(claims)
    else:
        claims, principal = await run_in_threadpool(_verify_in_full, ctx, token)
    if principal.issuer == ctx.settings.issuer:
        revoked = ctx.revoked_clients
        if revoked.due():  # at most every few seconds per process
            await run_in_threadpool(revoked.refresh)
        if revoked.refuses(str(claims["sub"]), claims.get("iat")):
            raise errors.Unauthorized(
                msg("The access token is not valid: its client was revoked or given a new secret.")
            )
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
    """A dependency that demands one scope (403 without it).

    Declared through `Security`, so the OpenAPI document names the scope in the operation's
    OAuth2 security requirement: the one place the scope is written is the route's alias.
    """

    # A default, not an `Annotated` alias: the annotation could not name `scope` once
    # postponed (from __future__ import annotations).
    async def check(principal: Principal = Security(authenticate, scopes=[scope])) -> Principal:
        if scope not in principal.scopes:
            raise errors.InsufficientScope(scope)
        return principal

    check.__name__ = f"require_{scope.replace(':', '_')}"
    return check


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


def any_scope_of(*alternatives: str) -> dict[str, Any]:
    """`openapi_extra` for a route whose service picks the scope it demands by the request:
    the document lists each scope as an alternative requirement (see tidy_security)."""
    return {ANY_SCOPE_OF: list(alternatives)}


# One alias per scope a route demands, for the routers' signatures.
Reader = Annotated[Principal, Depends(require(scopes.READ))]
Writer = Annotated[Principal, Depends(require(scopes.WRITE))]
Assessor = Annotated[Principal, Depends(require(scopes.ASSESS))]
Server = Annotated[Principal, Depends(require(scopes.SERVE))]
WebhookManager = Annotated[Principal, Depends(require(scopes.WEBHOOKS))]
Auditor = Annotated[Principal, Depends(require(scopes.AUDIT))]
