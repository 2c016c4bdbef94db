"""Webhook signing secrets are data-key sealed, and survive a data key rotation."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from service.auth.principal import Principal
from service.context import ServiceContext
from service.datakeys import rotate_data_key
from service.db import upgrade_to_head
from service.db.types import utcnow
from service.events import service
from service.events.models import WebhookSubscription
from service.events.schemas import SecretRotation, SubscriptionCreate
from tests.support.databases import make_settings


def test_secrets_are_re_encrypted_by_a_data_key_rotation(
    backend: str, new_database_url, tmp_path: Path  # type: ignore[no-untyped-def]
) -> None:
    url = new_database_url(backend)
    upgrade_to_head(url)
    ctx = ServiceContext.build(make_settings(url, tmp_path))
    try:
        who = Principal(client_id="c1", agency="LPSK", scopes=frozenset(), token_id="t",
                        issuer="rujukan")
        created = service.create_subscription(ctx, who, SubscriptionCreate(
            url="http://127.0.0.1:9/hook", event_types=["referral.created"]))
        rotated = service.rotate_secret(ctx, who, created.id, SecretRotation(overlap_seconds=60))
        with ctx.db.reader() as session:
            before = session.execute(select(WebhookSubscription)).scalars().one()
        report = rotate_data_key(ctx, wait_seconds=0, sleep=lambda _: None)
        # Counted by table: the current and the previous secret of the one subscription.
        assert report.reencrypted["webhook_subscription"] == 2
        with ctx.db.reader() as session:
            after = session.execute(select(WebhookSubscription)).scalars().one()
        assert after.secret_sealed != before.secret_sealed
        assert after.previous_secret_sealed != before.previous_secret_sealed
        # A process that has read the new key file signs with the same secrets as before.
        fresh = ServiceContext.build(ctx.settings)
        try:
            signing = service.signing_secrets(fresh, after, utcnow())
        finally:
            fresh.db.dispose()
        assert signing == [rotated.secret, created.secret]
    finally:
        ctx.db.dispose()
