"""Where a referral's personal data is sealed: one context per field, per referral.

A value sealed for one field of one referral cannot be opened as another field or another
referral's (the context is authenticated data), nor a stored answer as another agency's.
"""

from __future__ import annotations

import uuid

from service.context import ServiceContext


def _context(referral_id: uuid.UUID, field: str) -> str:
    return f"referral:{referral_id}:{field}"


def seal_field(
    ctx: ServiceContext, referral_id: uuid.UUID, field: str, text: str | None
) -> str | None:
    """`text` sealed as the `field` of a referral (None stays None)."""
    return None if text is None else ctx.keyring.seal(text, _context(referral_id, field))


def open_field(
    ctx: ServiceContext, referral_id: uuid.UUID, field: str, sealed: str | None
) -> str | None:
    """The text sealed as the `field` of a referral (None stays None)."""
    return None if sealed is None else ctx.keyring.open(sealed, _context(referral_id, field))


def idempotency_context(agency: str | None, key: str) -> str:
    """Where the stored answer to an agency's Idempotency-Key is sealed: naming the agency
    (no agency: how records were sealed before, bound to the key only)."""
    return f"idempotency:{key}" if agency is None else f"idempotency:{agency}:{key}"


def seal_reveal_reason(ctx: ServiceContext, referral_id: uuid.UUID, reason: str) -> str:
    """A reveal reason sealed for the audit entry of a referral."""
    return ctx.keyring.seal(reason, f"audit:reveal:{referral_id}")
