"""Token signing keys: a PEM file of one or more private keys, newest signs, all publish."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from service.crypto import GENERATED_MARKER, KeyFileError, write_private_file
from service.db.types import utcnow

_BLOCK = re.compile(
    r"(?P<headers>(?:^[A-Za-z-]+: [^\n]*\n)*)"
    r"(?P<pem>-----BEGIN (?:EC |RSA )?PRIVATE KEY-----\n"
    r".*?\n-----END (?:EC |RSA )?PRIVATE KEY-----)",
    re.S | re.M,
)
# Kept after a newer key takes over, for tokens signed just before the switch.
ROTATION_GRACE = dt.timedelta(seconds=60)


def _b64u_uint(value: int, length: int | None = None) -> str:
    raw = value.to_bytes(length or max(1, (value.bit_length() + 7) // 8), "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def public_jwk(private_key: PrivateKeyTypes) -> dict[str, str]:
    """The public half of a key as a JWK (without kid/alg)."""
    public = private_key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        if not isinstance(public.curve, ec.SECP256R1):
            raise KeyFileError("only P-256 EC keys are supported")
        point = public.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64u_uint(point.x, 32),
            "y": _b64u_uint(point.y, 32),
        }
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < 2048:
            raise KeyFileError("RSA keys must have at least 2048 bits")
        numbers = public.public_numbers()
        return {"kty": "RSA", "n": _b64u_uint(numbers.n), "e": _b64u_uint(numbers.e)}
    raise KeyFileError("signing keys must be EC P-256 or RSA")


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 JWK thumbprint, used as the key id."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SigningKey:
    """One private key with its id, algorithm and creation time."""

    kid: str
    alg: str
    private_key: PrivateKeyTypes
    created_at: dt.datetime
    generated: bool = False

    @property
    def jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}

    @property
    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")


@dataclass
class KeySet:
    """All signing keys of the service, oldest first."""

    keys: list[SigningKey] = field(default_factory=list)

    @property
    def current(self) -> SigningKey:
        return self.keys[-1]

    @property
    def generated(self) -> bool:
        return any(k.generated for k in self.keys)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys, as published at /.well-known/jwks.json."""
        return {"keys": [k.jwk for k in self.keys]}

    def verification_keys(self) -> dict[str, tuple[dict[str, str], str]]:
        """kid -> (public JWK, the one algorithm allowed with it)."""
        return {k.kid: (k.jwk, k.alg) for k in self.keys}


def _make_key(private_key: PrivateKeyTypes, created_at: dt.datetime, generated: bool) -> SigningKey:
    jwk = public_jwk(private_key)
    alg = "ES256" if jwk["kty"] == "EC" else "RS256"
    return SigningKey(thumbprint(jwk), alg, private_key, created_at, generated)


def new_key(generated: bool = False) -> SigningKey:
    """A fresh EC P-256 (ES256) key."""
    return _make_key(ec.generate_private_key(ec.SECP256R1()), utcnow(), generated)


def load_keyset(path: Path) -> KeySet:
    """Parse a key file; a block may be preceded by `Created:` / `Origin:` header lines."""
    try:
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise KeyFileError(f"cannot read signing key file {path}") from exc
    keys = []
    for match in _BLOCK.finditer(text):
        headers = dict(
            line.split(": ", 1) for line in match.group("headers").splitlines() if ": " in line
        )
        try:
            private_key = serialization.load_pem_private_key(
                match.group("pem").encode("ascii"), password=None
            )
            created = (
                dt.datetime.fromisoformat(headers["Created"])
                if "Created" in headers
                else dt.datetime.fromtimestamp(0, dt.UTC)
            )
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"signing key file {path} holds an unreadable key") from exc
        keys.append(_make_key(private_key, created, headers.get("Origin") == GENERATED_MARKER))
    if not keys:
        raise KeyFileError(f"signing key file {path} holds no private key")
    keys.sort(key=lambda k: k.created_at)
    return KeySet(keys)


def save_keyset(path: Path, keyset: KeySet) -> None:
    """Write the key file (mode 0600)."""
    blocks = []
    for key in keyset.keys:
        header = f"Created: {key.created_at.isoformat()}\n"
        if key.generated:
            header += f"Origin: {GENERATED_MARKER}\n"
        blocks.append(header + key.private_pem.strip() + "\n")
    write_private_file(path, "\n".join(blocks))


def load_or_create_keyset(path: Path, *, allow_generate: bool) -> KeySet:
    """Read the key file, generating a first key where that is allowed (dev)."""
    if not path.exists():
        if not allow_generate:
            raise KeyFileError(f"signing key file {path} does not exist")
        save_keyset(path, KeySet([new_key(generated=True)]))
    return load_keyset(path)


def rotate_keyset(path: Path, token_ttl: dt.timedelta) -> tuple[SigningKey, list[str]]:
    """Add a new signing key; drop keys that no unexpired token can carry any more."""
    keyset = load_keyset(path)
    added = new_key()
    now = utcnow()
    kept: list[SigningKey] = []
    retired: list[str] = []
    ordered = [*keyset.keys, added]
    for index, key in enumerate(ordered[:-1]):
        superseded_at = ordered[index + 1].created_at
        if now - superseded_at > token_ttl + ROTATION_GRACE:
            retired.append(key.kid)
        else:
            kept.append(key)
    save_keyset(path, KeySet([*kept, added]))
    return added, retired
