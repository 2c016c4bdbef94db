"""bilingual taxonomy

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08

Every code carries its name and description in Indonesian and in English: `name` stays the
Indonesian name and `description` the English description, as before; `name_en` (English
name) and `description_id` (Indonesian description) are added, and `agency.name_en` too.
The values come from the frozen service/taxonomy/seed_0009.py; codes seeded without an
English description get one (a description already stored is kept).

Downgrade drops the three columns and empties again the descriptions this migration filled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.taxonomy import seed_0009 as seed


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_term = sa.table(
    "taxonomy_term",
    sa.column("kind"),
    sa.column("code"),
    sa.column("name_en"),
    sa.column("description"),
    sa.column("description_id"),
)
_agency = sa.table("agency", sa.column("code"), sa.column("name_en"))


def upgrade() -> None:
    op.add_column("taxonomy_term", sa.Column("name_en", sa.String(200), nullable=True))
    op.add_column("taxonomy_term", sa.Column("description_id", sa.String(1000), nullable=True))
    op.add_column("agency", sa.Column("name_en", sa.String(200), nullable=True))
    for kind, terms in seed.TERMS.items():
        for code, text in terms.items():
            where = (_term.c.kind == kind, _term.c.code == code)
            op.execute(
                _term.update()
                .where(*where)
                .values(name_en=text["name_en"], description_id=text["description_id"])
            )
            if "description" in text:
                op.execute(
                    _term.update()
                    .where(*where, _term.c.description.is_(None))
                    .values(description=text["description"])
                )
    for code, name_en in seed.AGENCY_NAMES_EN.items():
        op.execute(_agency.update().where(_agency.c.code == code).values(name_en=name_en))


def downgrade() -> None:
    for kind, terms in seed.TERMS.items():
        for code, text in terms.items():
            if "description" in text:
                op.execute(
                    _term.update()
                    .where(
                        _term.c.kind == kind,
                        _term.c.code == code,
                        _term.c.description == text["description"],
                    )
                    .values(description=None)
                )
    # Native ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), as 0002 does.
    op.drop_column("agency", "name_en")
    op.drop_column("taxonomy_term", "description_id")
    op.drop_column("taxonomy_term", "name_en")
