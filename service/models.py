"""Every table, imported in one place so that Alembic sees the whole metadata."""

from sqlmodel import SQLModel

from service.audit.models import AuditEntry
from service.auth.models import ApiClient
from service.events.models import Event, WebhookAttempt, WebhookDelivery, WebhookSubscription
from service.referrals.models import (
    IdempotencyRecord,
    ReferenceCounter,
    Referral,
    ReferralGroup,
    ReferralHistory,
    ReferralNote,
    ReferralService,
)
from service.taxonomy.models import Agency, TaxonomyTerm

metadata = SQLModel.metadata

__all__ = [
    "Agency",
    "AuditEntry",
    "ApiClient",
    "Event",
    "IdempotencyRecord",
    "ReferenceCounter",
    "Referral",
    "ReferralGroup",
    "ReferralHistory",
    "ReferralNote",
    "ReferralService",
    "TaxonomyTerm",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "metadata",
]
