"""keyed audit chain: each entry's key id and its number in its agency's own sequence

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08

`audit_entry.key_id` names the audit key whose HMAC is the entry's hash; entries already in
the table keep their plain SHA-256 hash and no key id. `audit_entry.agency_seq` numbers each
agency's entries from 1 in chain order (what `GET /v1/audit` shows an agency as `id`, so that
no number it sees counts other agencies' entries); it is filled in here for the entries
already written, with the append-only trigger lifted for that one UPDATE. The index on
(agency, agency_seq) replaces the one on (agency, id).

Downgrade drops both columns and restores the old index. Keyed entries then carry hashes the
previous version cannot recompute: its `rujukan audit verify` reports the first of them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NUMBER_BY_AGENCY = (
    "UPDATE audit_entry SET agency_seq = numbered.n FROM ("
    " SELECT id, row_number() OVER (PARTITION BY agency ORDER BY id) AS n"
    " FROM audit_entry WHERE agency IS NOT NULL"
    ") AS numbered WHERE audit_entry.id = numbered.id"
)
_SQLITE_NO_UPDATE = (
    "CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry "
    "BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END"
)


def upgrade() -> None:
    op.add_column('audit_entry', sa.Column('key_id', sa.String(length=32), nullable=True))
    op.add_column('audit_entry', sa.Column('agency_seq', sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
        op.execute(_NUMBER_BY_AGENCY)
        op.execute("ALTER TABLE audit_entry ENABLE TRIGGER audit_entry_append_only")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_entry_no_update")
        op.execute(_NUMBER_BY_AGENCY)
        op.execute(_SQLITE_NO_UPDATE)
    op.drop_index('ix_audit_entry_agency', table_name='audit_entry')
    op.create_index(
        'ix_audit_entry_agency_seq', 'audit_entry', ['agency', 'agency_seq'], unique=True
    )


def downgrade() -> None:
    op.drop_index('ix_audit_entry_agency_seq', table_name='audit_entry')
    op.create_index('ix_audit_entry_agency', 'audit_entry', ['agency', 'id'], unique=False)
    op.drop_column('audit_entry', 'agency_seq')
    op.drop_column('audit_entry', 'key_id')
