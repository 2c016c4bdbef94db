"""Who is calling: the verified content of an access token."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated agency system."""

    client_id: str
    agency: str
    scopes: frozenset[str]
    token_id: str
    issuer: str
