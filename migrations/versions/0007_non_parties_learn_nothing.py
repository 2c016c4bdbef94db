"""non-parties learn nothing: duplicates per sender, opaque feed cursors

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08

The one-open-referral-per-person index becomes one per (sender, receiver): a sender that is
not a party to another agency's open referral of the person is no longer refused (a 409 would
tell it the person is known there). Instead the new referral records that open one in
`referral.possible_duplicate_of` (nullable, shown to the receiver only).

`legacy_feed_cursor` keeps the highest event number at upgrade time: feed cursors are opaque
from now on, and a numeric cursor handed out before is taken only up to that number.

References become random (`RJK-<year>-<8 base32 characters>`); `reference_counter` is no
longer written but stays, so that an earlier release numbers on where it stopped.

Downgrade drops the column and the table and restores the per-receiver index. It refuses,
changing nothing, while one person has open referrals to one receiver from two senders (the
old index cannot hold both): close one of each pair first.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN_WITH_NIK = "status <> 'closed' AND nik_hash IS NOT NULL"
_SEQ = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _open_index(name: str, columns: list[str]) -> None:
    op.create_index(
        name,
        'referral',
        columns,
        unique=True,
        sqlite_where=sa.text(_OPEN_WITH_NIK),
        postgresql_where=sa.text(_OPEN_WITH_NIK),
    )


def upgrade() -> None:
    # A nullable column without a default: no table rebuild on SQLite, no rewrite on PostgreSQL.
    op.add_column('referral', sa.Column('possible_duplicate_of', sa.Uuid(), nullable=True))
    # The wider index first: every pair the old one allowed, it allows too.
    _open_index('uq_referral_open_nik_per_parties', ['from_agency', 'to_agency', 'nik_hash'])
    op.drop_index('uq_referral_open_nik_per_receiver', table_name='referral')
    op.create_table(
        'legacy_feed_cursor',
        sa.Column('max_seq', _SEQ, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('max_seq'),
    )
    op.execute(
        "INSERT INTO legacy_feed_cursor (max_seq) SELECT COALESCE(MAX(seq), 0) FROM event"
    )


def downgrade() -> None:
    clashes = op.get_bind().execute(
        sa.text(
            "SELECT count(*) FROM (SELECT to_agency, nik_hash FROM referral"
            f" WHERE {_OPEN_WITH_NIK} GROUP BY to_agency, nik_hash HAVING count(*) > 1) AS pair"
        )
    ).scalar_one()
    if clashes:
        raise RuntimeError(
            f"{clashes} people have open referrals to one receiver from two senders, which "
            "the earlier schema cannot hold; close one referral of each pair, then downgrade"
        )
    op.drop_table('legacy_feed_cursor')
    _open_index('uq_referral_open_nik_per_receiver', ['to_agency', 'nik_hash'])
    op.drop_index('uq_referral_open_nik_per_parties', table_name='referral')
    # Native ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): a batch rebuild of `referral`
    # would drop the table under the rows that refer to it.
    op.drop_column('referral', 'possible_duplicate_of')
