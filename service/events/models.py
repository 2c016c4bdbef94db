"""Tables of the event feed and the webhook outbox. No personal data lives here."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
)
from sqlmodel import Field, SQLModel

from service.columns import serial_primary_key, utc_now, uuid_primary_key
from service.db.types import UTCDateTime, new_id

DELIVERY_STATUSES = ("pending", "delivered", "dead")

# SQLite only makes a rowid alias of INTEGER PRIMARY KEY; the value is allocated by
# the write path (service/db/writes.py) in either case, never by the database.
_SEQ = BigInteger().with_variant(Integer(), "sqlite")


class Event(SQLModel, table=True):
    """One committed change of a referral, in commit order (`seq`)."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_from_agency_seq", "from_agency", "seq"),
        Index("ix_event_to_agency_seq", "to_agency", "seq"),
    )

    seq: int = Field(sa_column=Column(_SEQ, primary_key=True, autoincrement=False))
    id: uuid.UUID = Field(
        default_factory=new_id, sa_column=Column(Uuid(), nullable=False, unique=True)
    )
    type: str = Field(sa_column=Column(String(64), nullable=False))
    referral_id: uuid.UUID = Field(
        sa_column=Column(Uuid(), ForeignKey("referral.id"), nullable=False, index=True)
    )
    reference: str = Field(sa_column=Column(String(32), nullable=False))
    status: str = Field(sa_column=Column(String(16), nullable=False))
    # The referral's two parties, copied so the feed is scoped without a join; they never
    # change for a referral.
    from_agency: str = Field(sa_column=Column(String(32), nullable=False))
    to_agency: str = Field(sa_column=Column(String(32), nullable=False))
    occurred_at: dt.datetime = utc_now()


class WebhookSubscription(SQLModel, table=True):
    """Where one agency wants to receive which event types, and the secret that signs them."""

    __tablename__ = "webhook_subscription"
    __table_args__ = (Index("ix_webhook_subscription_agency", "agency", "created_at"),)

    id: uuid.UUID = uuid_primary_key()
    agency: str = Field(sa_column=Column(String(32), ForeignKey("agency.code"), nullable=False))
    url: str = Field(sa_column=Column(Text(), nullable=False))
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON(), nullable=False))
    description: str | None = Field(default=None, sa_column=Column(String(200)))
    # Sealed with the data keyring: a leaked database must not let anyone forge webhooks.
    secret_sealed: str = Field(sa_column=Column(Text(), nullable=False))
    previous_secret_sealed: str | None = Field(default=None, sa_column=Column(Text()))
    previous_secret_expires_at: dt.datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime())
    )
    active: bool = Field(default=True, sa_column=Column(Boolean(), nullable=False))
    disabled_reason: str | None = Field(default=None, sa_column=Column(String(200)))
    disabled_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_by_client: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: dt.datetime = utc_now()
    updated_at: dt.datetime = utc_now()


class WebhookDelivery(SQLModel, table=True):
    """One event owed to one subscription; its id is the `webhook-id` of every attempt."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name="ck_webhook_delivery_status"
        ),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_subscription", "subscription_id", "event_seq"),
    )

    id: uuid.UUID = uuid_primary_key()
    subscription_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid(), ForeignKey("webhook_subscription.id", ondelete="CASCADE"), nullable=False
        )
    )
    event_seq: int = Field(sa_column=Column(_SEQ, ForeignKey("event.seq"), nullable=False))
    status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    # Failures since the last success or manual retry: drives the backoff and the dead end.
    failures: int = Field(default=0, sa_column=Column(Integer(), nullable=False))
    next_attempt_at: dt.datetime = utc_now()
    lease_owner: str | None = Field(default=None, sa_column=Column(String(64)))
    lease_expires_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_status_code: int | None = Field(default=None, sa_column=Column(Integer()))
    last_error: str | None = Field(default=None, sa_column=Column(String(200)))
    delivered_at: dt.datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    created_at: dt.datetime = utc_now()
    updated_at: dt.datetime = utc_now()


class WebhookAttempt(SQLModel, table=True):
    """One HTTP attempt of a delivery, successful or not."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_delivery", "delivery_id", "id"),)

    id: int | None = serial_primary_key()
    delivery_id: uuid.UUID = Field(
        sa_column=Column(
            Uuid(), ForeignKey("webhook_delivery.id", ondelete="CASCADE"), nullable=False
        )
    )
    number: int = Field(sa_column=Column(Integer(), nullable=False))
    started_at: dt.datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    duration_ms: int = Field(sa_column=Column(Integer(), nullable=False))
    status_code: int | None = Field(default=None, sa_column=Column(Integer()))
    error: str | None = Field(default=None, sa_column=Column(String(200)))
    worker: str = Field(sa_column=Column(String(64), nullable=False))


class LegacyFeedCursor(SQLModel, table=True):
    """The highest event number when feed cursors became opaque (one row).

    Cursors handed out before were plain event numbers. One of those is still taken, but
    only up to this number: beyond it, trying numbers would show how many events other
    agencies caused since, which an opaque cursor no longer tells.
    """

    __tablename__ = "legacy_feed_cursor"

    max_seq: int = Field(sa_column=Column(_SEQ, primary_key=True, autoincrement=False))
