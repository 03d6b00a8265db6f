"""One label chain per annotator and item: a unique index on the chain's start.

Two first labels written at the same moment both had supersedes_id NULL, which
a unique column never treats as a clash; this partial index does.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "uq_annotation_chain_start",
        "annotation",
        ["item_id", "annotator_id"],
        unique=True,
        sqlite_where=sa.text("supersedes_id IS NULL"),
        postgresql_where=sa.text("supersedes_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_annotation_chain_start", table_name="annotation")
