"""agency time zone

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08

Days (statistics, reports, agreements in force, working-day deadlines) are counted in the
agency's own time zone, an IANA name. Every agency starts on `Asia/Jakarta` (WIB); an agency
in WITA (`Asia/Makassar`) or WIT (`Asia/Jayapura`) is set by `rujukan agency`.

Downgrade drops the column.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: no table rewrite on PostgreSQL, a plain ADD COLUMN on SQLite.
    op.add_column(
        'agency',
        sa.Column(
            'time_zone', sa.String(64), nullable=False, server_default='Asia/Jakarta'
        ),
    )


def downgrade() -> None:
    op.drop_column('agency', 'time_zone')
