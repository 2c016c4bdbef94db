"""The OAuth2 scopes of CONTRACT §3."""

READ = "referrals:read"
WRITE = "referrals:write"
ASSESS = "referrals:assess"
SERVE = "referrals:serve"
CLOSE = "referrals:close"
WEBHOOKS = "webhooks:manage"
AUDIT = "audit:read"
ADMIN = "admin"

ALL_SCOPES = (READ, WRITE, ASSESS, SERVE, CLOSE, WEBHOOKS, AUDIT, ADMIN)


def parse_scopes(text: str | None) -> list[str]:
    """Split a space-separated scope string, keeping order and dropping repeats."""
    seen: dict[str, None] = {}
    for item in (text or "").split():
        seen.setdefault(item, None)
    return list(seen)


def unknown_scopes(scopes: list[str]) -> list[str]:
    """Scopes that this service does not define."""
    return [s for s in scopes if s not in ALL_SCOPES]
