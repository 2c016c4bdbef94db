"""External identity providers whose tokens are accepted (RUJUKAN_TRUSTED_ISSUERS)."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any

from service.auth.tokens import ALLOWED_ALGORITHMS
from service.config import TrustedIssuer

log = logging.getLogger("rujukan.auth")

# An unknown kid triggers a JWKS refresh at most this often, so bad tokens cannot make the
# service hammer an identity provider.
REFRESH_INTERVAL_SECONDS = 60.0
FETCH_TIMEOUT_SECONDS = 5.0
MAX_JWKS_BYTES = 256 * 1024


def _algorithm_for(jwk: dict[str, Any]) -> str | None:
    """The one algorithm a key may be used with, or None if the key is not acceptable."""
    declared = jwk.get("alg")
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        natural = "ES256"
    elif jwk.get("kty") == "RSA":
        natural = "RS256"
    else:
        return None
    if declared is not None and declared != natural:
        return None
    if jwk.get("use", "sig") != "sig" or natural not in ALLOWED_ALGORITHMS:
        return None
    return natural


def parse_jwks(document: Any) -> dict[str, tuple[dict[str, Any], str]]:
    """kid -> (public JWK, its algorithm), skipping keys without kid, private parts or use."""
    keys: dict[str, tuple[dict[str, Any], str]] = {}
    for jwk in (document or {}).get("keys", []) if isinstance(document, dict) else []:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        if any(private in jwk for private in ("d", "p", "q", "k")):
            continue
        alg = _algorithm_for(jwk)
        if alg is not None:
            keys[jwk["kid"]] = (jwk, alg)
    return keys


class IssuerKeys:
    """The cached key set of one trusted issuer."""

    def __init__(self, issuer: TrustedIssuer) -> None:
        self.issuer = issuer
        self._keys: dict[str, tuple[dict[str, Any], str]] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def _fetch(self) -> dict[str, tuple[dict[str, Any], str]]:
        if self.issuer.jwks_file is not None:
            return parse_jwks(json.loads(self.issuer.jwks_file.read_text(encoding="utf-8")))
        assert self.issuer.jwks_url is not None
        if not self.issuer.jwks_url.startswith(("https://", "http://")):
            raise ValueError("jwks_url must be http(s)")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.issuer.jwks_url, headers={"Accept": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as answer:  # noqa: S310
            return parse_jwks(json.loads(answer.read(MAX_JWKS_BYTES)))

    def keys_for(self, kid: str | None) -> dict[str, tuple[dict[str, Any], str]]:
        """The cached keys, refreshed first when `kid` is unknown and the last fetch is old."""
        if kid in self._keys:
            return self._keys
        with self._lock:
            if kid in self._keys:
                return self._keys
            now = time.monotonic()
            if now - self._fetched_at >= REFRESH_INTERVAL_SECONDS:
                self._fetched_at = now
                try:
                    self._keys = self._fetch()
                except (OSError, ValueError) as exc:
                    log.warning(
                        "could not refresh the JWKS of a trusted issuer",
                        extra={"error_type": type(exc).__name__},
                    )
        return self._keys


class TrustedIssuers:
    """All configured external issuers, by `iss`."""

    def __init__(self, issuers: list[TrustedIssuer]) -> None:
        self.by_iss = {i.iss: IssuerKeys(i) for i in issuers}

    def get(self, iss: str | None) -> IssuerKeys | None:
        return self.by_iss.get(iss) if iss else None
