"""Every table, imported in one place so that Alembic sees the whole metadata."""

from sqlmodel import SQLModel

from service.agreements.models import Agreement
from service.audit.models import AuditEntry
from service.auth.models import ApiClient
from service.events.models import (
    Event,
    LegacyFeedCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from service.referrals.models import (
    DeliveredService,
    IdempotencyRecord,
    ReferenceCounter,
    Referral,
    ReferralCaseType,
    ReferralGroup,
    ReferralHistory,
    ReferralNote,
)
from service.taxonomy.models import Agency, TaxonomyTerm

metadata = SQLModel.metadata

__all__ = [
    "Agency",
    "Agreement",
    "AuditEntry",
    "ApiClient",
    "Event",
    "IdempotencyRecord",
    "LegacyFeedCursor",
    "ReferenceCounter",
    "Referral",
    "ReferralCaseType",
    "ReferralGroup",
    "ReferralHistory",
    "ReferralNote",
    "DeliveredService",
    "TaxonomyTerm",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "metadata",
]
