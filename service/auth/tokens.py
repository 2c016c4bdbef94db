"""Issuing and verifying JWTs. The only module that imports python-jose."""

from __future__ import annotations

import json
import uuid
from typing import Any

from jose import jws, jwt
from jose.exceptions import ExpiredSignatureError, JWSError, JWTClaimsError, JWTError

from service.auth.keys import SigningKey
from service.db.types import utcnow
from service.i18n import Message, msg

MAX_TOKEN_BYTES = 8192
ALLOWED_ALGORITHMS = frozenset({"ES256", "RS256"})
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "nbf", "exp", "jti")
LEEWAY_SECONDS = 30


class TokenInvalid(Exception):
    """The token cannot be trusted; the message is safe to show to its bearer."""

    def __init__(self, reason: Message) -> None:
        super().__init__(str(reason))
        self.reason = reason


def issue(
    key: SigningKey,
    *,
    issuer: str,
    audience: str,
    subject: str,
    agency: str,
    scopes: list[str],
    ttl_seconds: int,
) -> tuple[str, dict[str, Any]]:
    """Sign an access token and return it with its claims."""
    now = int(utcnow().timestamp())
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "scope": " ".join(scopes),
        "agency": agency,
    }
    token = jwt.encode(claims, key.private_pem, algorithm=key.alg, headers={"kid": key.kid})
    return token, claims


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, after the structural checks every token must pass first."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenInvalid(msg("token is too large"))
    if token.count(".") != 2:
        raise TokenInvalid(msg("token is not a signed JWT"))
    try:
        header = jwt.get_unverified_header(token)
    except JWTError as exc:
        raise TokenInvalid(msg("token is malformed")) from exc
    if not isinstance(header, dict):
        raise TokenInvalid(msg("token is malformed"))
    return header


def unverified_issuer(token: str) -> str | None:
    """The `iss` claim before verification, only to pick which issuer's keys to use."""
    try:
        claims = jwt.get_unverified_claims(token)
    except JWTError as exc:
        raise TokenInvalid(msg("token is malformed")) from exc
    iss = claims.get("iss") if isinstance(claims, dict) else None
    return iss if isinstance(iss, str) else None


# Every claim required, every check on; built once, not per request.
_DECODE_OPTIONS: dict[str, Any] = {
    **{f"require_{claim}": True for claim in REQUIRED_CLAIMS},
    "verify_signature": True,
    "verify_aud": True,
    "verify_iss": True,
    "verify_exp": True,
    "verify_nbf": True,
    "verify_iat": True,
    "verify_at_hash": False,
    "leeway": LEEWAY_SECONDS,
}


def _key_for(
    header: dict[str, Any], keys: dict[str, tuple[dict[str, Any], str]], what: str
) -> tuple[dict[str, Any], str]:
    """The key named by the header's kid, and the one algorithm it may be used with."""
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise TokenInvalid(msg("{what} is signed by an unknown key", what=what))
    jwk, alg = keys[kid]
    if alg not in ALLOWED_ALGORITHMS or header.get("alg") != alg:
        raise TokenInvalid(msg("{what} uses an algorithm not allowed for its key", what=what))
    return jwk, alg


def verify(
    token: str,
    keys: dict[str, tuple[dict[str, Any], str]],
    *,
    issuer: str,
    audience: str,
) -> dict[str, Any]:
    """Verify signature and claims; `keys` maps kid to (public JWK, its one algorithm)."""
    jwk, alg = _key_for(unverified_header(token), keys, "token")
    try:
        claims = jwt.decode(
            token, jwk, algorithms=[alg], audience=audience, issuer=issuer, options=_DECODE_OPTIONS
        )
    except ExpiredSignatureError as exc:
        raise TokenInvalid(msg("token has expired")) from exc
    except JWTClaimsError as exc:
        raise TokenInvalid(msg("token claims are not acceptable")) from exc
    except JWTError as exc:
        raise TokenInvalid(msg("token signature or claims are invalid")) from exc
    if not isinstance(claims.get("sub"), str):
        raise TokenInvalid(msg("token claims are not acceptable"))
    return claims


def sign_document(payload: dict[str, Any], key: SigningKey, *, typ: str = "JOSE") -> str:
    """Sign a JSON document as a compact JWS with this key (its kid in the header)."""
    if key.alg not in ALLOWED_ALGORITHMS:
        raise TokenInvalid(msg("the signing key's algorithm is not allowed"))
    return jws.sign(
        payload, key.private_pem, headers={"kid": key.kid, "typ": typ}, algorithm=key.alg
    )


def verify_document(
    token: str,
    keys: dict[str, tuple[dict[str, Any], str]],
    *,
    typ: str | None = None,
) -> dict[str, Any]:
    """Verify a compact JWS made by `sign_document`; its JSON payload.

    `keys` maps kid to (public JWK, its one algorithm), as for access tokens; `typ`, when
    given, must match the header, so one kind of signed document cannot pass for another.
    """
    header = unverified_header(token.strip())
    jwk, alg = _key_for(header, keys, "document")
    if typ is not None and header.get("typ") != typ:
        raise TokenInvalid(msg("document is not of type {typ}", typ=typ))
    try:
        raw = jws.verify(token.strip(), jwk, algorithms=[alg])
    except (JWSError, JWTError) as exc:
        raise TokenInvalid(msg("document signature is invalid")) from exc
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenInvalid(msg("document payload is not JSON")) from exc
    if not isinstance(payload, dict):
        raise TokenInvalid(msg("document payload is not a JSON object"))
    return payload
