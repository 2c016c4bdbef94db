"""Helpers of the authentication tests: clients registered directly, token requests, a service
with a key file of its own, and JWTs built by hand.

The JWT helpers use only `cryptography` and base64url JSON, so that a test can build tokens the
service's own JWT library would refuse to produce (alg none, HMAC with a public key, ...).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from fastapi.testclient import TestClient
from httpx import Response

from service.auth import clients
from service.context import ServiceContext
from tests.support import writer_session


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(obj: Any) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode("utf-8"))


def decode_segment(text: str) -> dict[str, Any]:
    return json.loads(b64u_decode(text))  # type: ignore[no-any-return]


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS, without verifying it."""
    header, payload, _ = token.split(".")
    return decode_segment(header), decode_segment(payload)


def _private_key(key: Any) -> Any:
    if isinstance(key, str | bytes):
        data = key.encode("ascii") if isinstance(key, str) else key
        return serialization.load_pem_private_key(data, password=None)
    return key


def sign_es256(header: dict[str, Any], claims: Any, key: Any) -> str:
    """A compact JWS signed with an EC P-256 key (PEM text or key object)."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    der = _private_key(key).sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64u(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def sign_rs256(header: dict[str, Any], claims: dict[str, Any], key: Any) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    signature = _private_key(key).sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{b64u(signature)}"


def sign_hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    signing_input = f"{segment(header)}.{segment(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64u(mac)}"


def verify_es256_with_jwk(token: str, jwk: dict[str, str]) -> bool:
    """Check a token's signature the way an outside integrator would, from the JWKS."""
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64u_decode(jwk["x"]), "big"),
        int.from_bytes(b64u_decode(jwk["y"]), "big"),
        ec.SECP256R1(),
    )
    public = numbers.public_key()
    header, payload, signature = token.split(".")
    raw = b64u_decode(signature)
    if len(raw) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{header}.{payload}".encode("ascii"), ec.ECDSA(hashes.SHA256()))
    except Exception:  # InvalidSignature, or a malformed key: not valid
        return False
    return True


def valid_claims(ctx: ServiceContext, **claims: Any) -> dict[str, Any]:
    """Claims the service would accept, updated by `claims`; a value None drops the claim."""
    now = int(time.time())
    defaults: dict[str, Any] = {
        "iss": ctx.settings.issuer,
        "aud": ctx.settings.audience,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
    }
    merged = {**defaults, **claims}
    return {name: value for name, value in merged.items() if value is not None}


def register(ctx: ServiceContext, agency: str, scope: str) -> tuple[str, str]:
    """A new client of `agency` with `scope`: (client_id, secret)."""
    with writer_session(ctx.db) as session:
        client, secret = clients.create_client(
            session, agency=agency, name=f"{agency} token test", scope=scope,
            keyring=ctx.keyring,
        )
        session.commit()
        return client.client_id, secret


def form_token(http: TestClient, client_id: str, secret: str, **extra: str) -> Response:
    data = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    data.update(extra)
    return http.post("/oauth/token", data=data)


def token_status(http: TestClient, client_id: str, secret: str) -> int:
    """The status of a token request with these credentials."""
    return form_token(http, client_id, secret).status_code


@dataclass
class Service:
    ctx: ServiceContext
    http: TestClient
    key_file: Path
    client_id: str
    secret: str

    def token(self) -> str:
        response = self.http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials", "client_id": self.client_id,
                  "client_secret": self.secret},
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]  # type: ignore[no-any-return]

    def status_with(self, token: str) -> int:
        return self.http.get(
            "/v1/agencies", headers={"Authorization": f"Bearer {token}"}
        ).status_code


def age_key_file(path: Path, by: dt.timedelta) -> None:
    """Move every key's `Created:` time back, as if the keys were that much older."""

    def older(match: re.Match[str]) -> str:
        created = dt.datetime.fromisoformat(match.group(1))
        return f"Created: {(created - by).isoformat()}"

    text = path.read_text(encoding="ascii")
    aged = re.sub(r"^Created: (.+)$", older, text, flags=re.M)
    assert aged != text
    path.write_text(aged, encoding="ascii")
