"""indexes for the status-filtered inbox and outbox lists

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

`GET /v1/referrals?direction=incoming&status=...` (and outgoing) walks
(to_agency | from_agency, status, created_at, id) in order: with the status in the index a
page reads its 50 rows and no others, however deep the cursor and however large the table.

Downgrade drops the two indexes (lists fall back to the agency-and-date indexes of 0001).
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_referral_to_agency_status_created',
        'referral',
        ['to_agency', 'status', 'created_at', 'id'],
    )
    op.create_index(
        'ix_referral_from_agency_status_created',
        'referral',
        ['from_agency', 'status', 'created_at', 'id'],
    )


def downgrade() -> None:
    op.drop_index('ix_referral_from_agency_status_created', table_name='referral')
    op.drop_index('ix_referral_to_agency_status_created', table_name='referral')
