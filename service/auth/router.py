"""POST /oauth/token (client credentials) and the public JWKS."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote_plus

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.auth import service as auth_service
from service.auth.dependencies import Context
from service.errors import OAuthError
from service.i18n import Message, msg
from service.inputs import contains_nul
from service.openapi_docs import Responses, problems
from service.ratelimit import rate_limits
from service.request_shape import is_json

router = APIRouter(tags=["auth"])

_OAUTH_EXAMPLES = {
    400: OAuthError("invalid_scope", msg("The requested scope is not granted to this client.")),
    401: OAuthError("invalid_client", msg("Client authentication failed."), 401),
}
_OAUTH_ERRORS: Responses = {
    400: {
        **problems(400, examples=_OAUTH_EXAMPLES)[400],
        "description": "invalid_request (a body that is not a form among them), invalid_scope, "
        "unsupported_grant_type",
    },
    401: {**problems(401, examples=_OAUTH_EXAMPLES)[401], "description": "invalid_client"},
    # Documented so that FastAPI does not add its own validation schema; the form fields
    # are checked in the handler and answer 400 invalid_request per RFC 6749.
    422: problems(422)[422],
}


class TokenResponse(BaseModel):
    """An access token (RFC 6749 §5.1)."""

    access_token: str = Field(
        description="The signed JWT to send as `Authorization: Bearer <access_token>`"
    )
    token_type: str = Field(description="Always `Bearer`", examples=["Bearer"])
    expires_in: int = Field(description="Seconds until the token expires", examples=[900])
    scope: str = Field(
        description="The scopes granted, space-separated",
        examples=["referrals:read referrals:write"],
    )


class JWK(BaseModel):
    """A public signing key (RFC 7517)."""

    kty: str = Field(description="Key type: `EC` or `RSA`")
    kid: str = Field(description="Key id, as the `kid` header of the tokens it signed names it")
    alg: str = Field(description="Signing algorithm: `ES256` or `RS256`")
    use: str = Field(description="Always `sig`: the key verifies signatures")
    crv: str | None = Field(default=None, description="EC keys: the curve, `P-256`")
    x: str | None = Field(default=None, description="EC keys: x coordinate, base64url")
    y: str | None = Field(default=None, description="EC keys: y coordinate, base64url")
    n: str | None = Field(default=None, description="RSA keys: modulus, base64url")
    e: str | None = Field(default=None, description="RSA keys: public exponent, base64url")


class JWKS(BaseModel):
    """The service's public signing keys (RFC 7517)."""

    keys: list[JWK] = Field(
        description="Every key whose tokens may still be valid, the current one included"
    )


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise OAuthError(
            "invalid_client", msg("Use HTTP Basic or form fields for client credentials."), 401
        )
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_client", msg("Malformed Basic credentials."), 401) from exc
    user, sep, password = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", msg("Malformed Basic credentials."), 401)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote_plus(user), unquote_plus(password)


FORM = "application/x-www-form-urlencoded"


def _check_form(request: Request) -> None:
    """400 invalid_request for a body that is not a form (RFC 6749 §4.4.2 asks for one)."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return
    given = headers.get("content-type", "")
    if given.partition(";")[0].strip().lower() == FORM:
        return
    media = given.partition(";")[0].strip()[:64]
    if is_json(given):
        sent: str | Message = msg("JSON")
    elif media:
        sent = repr(media)
    else:
        sent = msg("a body without a Content-Type")
    raise OAuthError(
        "invalid_request",
        msg(
            "The token request is a form, not {sent}: send Content-Type: {form} with "
            "grant_type=client_credentials&client_id=...&client_secret=... (RFC 6749 §4.4.2).",
            sent=sent,
            form=FORM,
        ),
    )


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    summary="Get an access token",
    description=(
        "OAuth 2.0 client-credentials grant (RFC 6749 §4.4). Send `client_id` and "
        "`client_secret` as form fields or with HTTP Basic, not both. The token's agency "
        "comes from the client's registration, never from the request."
    ),
    responses=_OAUTH_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "example": {
                        "grant_type": "client_credentials",
                        "client_id": "lpsk-3f9a1c0e5b7d2468",
                        "client_secret": "the secret printed once by rujukan client create",
                        "scope": "referrals:read referrals:write",
                    }
                }
            }
        }
    },
)
def issue_token(
    request: Request,
    ctx: Context,
    grant_type: Annotated[
        str | None, Form(description="Must be `client_credentials` (required)")
    ] = None,
    client_id: Annotated[
        str | None,
        Form(description="The client's id from `rujukan client create`, unless sent by Basic"),
    ] = None,
    client_secret: Annotated[
        str | None, Form(description="The client's secret, unless sent by HTTP Basic")
    ] = None,
    scope: Annotated[
        str | None,
        Form(
            description="Space-separated scopes wanted, each one the client holds; all of the "
            "client's scopes when left out"
        ),
    ] = None,
) -> JSONResponse:
    """Exchange client credentials for a signed JWT."""
    _check_form(request)
    for value, limit in ((grant_type, 100), (client_id, 200), (client_secret, 500), (scope, 1000)):
        if value is not None and len(value) > limit:
            raise OAuthError("invalid_request", msg("A form field is too long."))
    basic = _basic_credentials(request)
    if basic and (client_id or client_secret):
        raise OAuthError("invalid_request", msg("Send client credentials one way only."))
    if grant_type is None:
        raise OAuthError("invalid_request", msg("grant_type is required."))
    if grant_type != "client_credentials":
        raise OAuthError("unsupported_grant_type", msg("Only client_credentials is supported."))
    cid, secret = basic or (client_id, client_secret)
    if contains_nul(cid, secret, scope):
        raise OAuthError(
            "invalid_request", msg("A credential or the scope holds a NUL character.")
        )
    issued = auth_service.issue_token(
        ctx,
        rate_limits(request),
        client_id=cid,
        secret=secret,
        scope=scope,
        address=request.client.host if request.client is not None else "",
    )
    body = TokenResponse(
        access_token=issued.access_token,
        token_type="Bearer",  # noqa: S106 - the token type, not a secret
        expires_in=issued.expires_in,
        scope=" ".join(issued.scopes),
    )
    return JSONResponse(
        body.model_dump(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )


@router.get(
    "/.well-known/jwks.json",
    response_model=JWKS,
    response_model_exclude_none=True,
    summary="Public signing keys",
    description="The public keys that verify Rujukan's access tokens, old keys included "
    "until the last token they signed has expired.",
)
def get_jwks(ctx: Context) -> JSONResponse:
    """The JSON Web Key Set."""
    return JSONResponse(ctx.keyset.jwks(), headers={"Cache-Control": "public, max-age=60"})
