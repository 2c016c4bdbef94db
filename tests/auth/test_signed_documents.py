"""sign_document / verify_document: compact JWS with kid, ES256 or RS256 only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from service.auth import tokens
from service.auth.keys import KeySet, SigningKey, new_key, public_jwk, thumbprint
from service.db.types import utcnow

DOC = {"count": 3, "last_id": 3, "last_hash": "ab" * 32, "signed_at": "2026-01-01T00:00:00+00:00"}


def _rsa_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(thumbprint(public_jwk(private)), "RS256", private, utcnow())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _json_b64(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


@pytest.fixture(params=["ES256", "RS256"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return new_key() if request.param == "ES256" else _rsa_key()


def test_round_trip(key: SigningKey) -> None:
    token = tokens.sign_document(DOC, key, typ="test+jws")
    header = tokens.unverified_header(token)
    assert header == {"alg": key.alg, "kid": key.kid, "typ": "test+jws"}
    keys = KeySet([key]).verification_keys()
    assert tokens.verify_document(token, keys) == DOC
    assert tokens.verify_document(token + "\n", keys, typ="test+jws") == DOC


def test_tampered_payload_fails(key: SigningKey) -> None:
    head, _, sig = tokens.sign_document(DOC, key).split(".")
    forged = f"{head}.{_json_b64({**DOC, 'count': 2})}.{sig}"
    with pytest.raises(tokens.TokenInvalid, match="signature"):
        tokens.verify_document(forged, KeySet([key]).verification_keys())


def test_unknown_kid_fails(key: SigningKey) -> None:
    token = tokens.sign_document(DOC, new_key())
    with pytest.raises(tokens.TokenInvalid, match="unknown key"):
        tokens.verify_document(token, KeySet([key]).verification_keys())


def test_a_foreign_key_claiming_a_known_kid_fails(key: SigningKey) -> None:
    impostor = new_key() if key.alg == "ES256" else _rsa_key()
    token = tokens.sign_document(DOC, SigningKey(key.kid, key.alg, impostor.private_key, utcnow()))
    with pytest.raises(tokens.TokenInvalid, match="signature"):
        tokens.verify_document(token, KeySet([key]).verification_keys())


def test_wrong_type_fails(key: SigningKey) -> None:
    token = tokens.sign_document(DOC, key, typ="other")
    with pytest.raises(tokens.TokenInvalid, match="type"):
        tokens.verify_document(token, KeySet([key]).verification_keys(), typ="test+jws")


@pytest.mark.parametrize("alg", ["none", "HS256", "ES384", "RS256-vs-ES256"])
def test_other_algorithms_fail(alg: str) -> None:
    key = new_key()
    keys = KeySet([key]).verification_keys()
    payload = _json_b64(DOC)
    if alg == "none":
        token = f"{_json_b64({'alg': 'none', 'kid': key.kid})}.{payload}."
    elif alg == "HS256":
        # The classic confusion attack: HMAC keyed with the public key.
        header = _json_b64({"alg": "HS256", "kid": key.kid})
        secret = json.dumps(key.jwk).encode()
        sig = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        token = f"{header}.{payload}.{_b64(sig)}"
    elif alg == "ES384":
        token = f"{_json_b64({'alg': 'ES384', 'kid': key.kid})}.{payload}.{_b64(b'x' * 96)}"
    else:
        rsa_key = _rsa_key()
        token = tokens.sign_document(DOC, SigningKey(key.kid, "RS256", rsa_key.private_key,
                                                     utcnow()))
    with pytest.raises(tokens.TokenInvalid, match="algorithm"):
        tokens.verify_document(token, keys)


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b", "a.b.c.d.e", "x" * 9000],
    ids=["empty", "garbage", "two parts", "JWE-shaped", "oversized"],
)
def test_malformed_documents_fail(token: str) -> None:
    with pytest.raises(tokens.TokenInvalid):
        tokens.verify_document(token, KeySet([new_key()]).verification_keys())


def test_a_signed_payload_that_is_not_an_object_is_refused() -> None:
    key = new_key()
    header, payload = _json_b64({"alg": "ES256", "kid": key.kid}), _b64(b"[1, 2]")
    der = key.private_key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    token = f"{header}.{payload}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
    with pytest.raises(tokens.TokenInvalid, match="object"):
        tokens.verify_document(token, KeySet([key]).verification_keys())
