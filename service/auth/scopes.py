"""The OAuth2 scopes of CONTRACT §3."""

# The name of the OAuth 2.0 client-credentials security scheme in the OpenAPI document.
OAUTH2_SCHEME = "OAuth2"
# The operation member (removed from the document) that lists alternative scopes.
ANY_SCOPE_OF = "x-any-scope-of"

READ = "referrals:read"
WRITE = "referrals:write"
ASSESS = "referrals:assess"
SERVE = "referrals:serve"
CLOSE = "referrals:close"
WEBHOOKS = "webhooks:manage"
AUDIT = "audit:read"
ADMIN = "admin"

# What each scope lets a client do: shown beside the scope in the OpenAPI document (and so in
# Swagger UI's Authorize dialog).
DESCRIPTIONS = {
    READ: "Read the agency's referrals, their history and notes, the feed and the statistics",
    WRITE: "Create referrals, withdraw them, add notes, record a withdrawal of consent",
    ASSESS: "Assess a referral received by the agency",
    SERVE: "Start a service on a received referral and record further services",
    CLOSE: "Close a received referral (completed, declined, unreachable, deceased, onward)",
    WEBHOOKS: "Manage the agency's webhook subscriptions and see their deliveries",
    AUDIT: "Read the agency's audit trail",
    ADMIN: "Reserved for operator tasks; no operation of this version needs it",
}
ALL_SCOPES = tuple(DESCRIPTIONS)


def parse_scopes(text: str | None) -> list[str]:
    """Split a space-separated scope string, keeping order and dropping repeats."""
    seen: dict[str, None] = {}
    for item in (text or "").split():
        seen.setdefault(item, None)
    return list(seen)


def unknown_scopes(scopes: list[str]) -> list[str]:
    """Scopes that this service does not define."""
    return [s for s in scopes if s not in ALL_SCOPES]
