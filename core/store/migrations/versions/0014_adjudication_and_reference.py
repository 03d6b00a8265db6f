"""Adjudicated labels, and reference answers on items.

`adjudication`: an admin's or reviewer's decision that settles an item's label
for every consumer (`core.labels`), append-only with one chain per item (the
partial unique index lets only one row start it). `item.reference`: a reference
answer the judge may be shown (NULL: none).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adjudication",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(),
                  sa.ForeignKey("item.id", ondelete="CASCADE"), nullable=False),
        sa.Column("adjudicator_id", sa.Integer(), sa.ForeignKey("annotator.id"), nullable=False),
        sa.Column("best", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("supersedes_id", sa.Integer(), sa.ForeignKey("adjudication.id"),
                  nullable=True, unique=True),
        sa.Column("retracted", sa.Boolean(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_adjudication_item_id", "adjudication", ["item_id"])
    op.create_index(
        "uq_adjudication_chain_start", "adjudication", ["item_id"], unique=True,
        sqlite_where=sa.text("supersedes_id IS NULL"),
        postgresql_where=sa.text("supersedes_id IS NULL"),
    )
    with op.batch_alter_table("item") as batch_op:
        batch_op.add_column(sa.Column("reference", sa.Text(), nullable=True))


def downgrade() -> None:
    # Not a copy of `item` (SQLite's batch mode): dropping the old table would delete
    # its children's rows (ON DELETE CASCADE). SQLite 3.35+ drops a column in place.
    with op.batch_alter_table("item", recreate="never") as batch_op:
        batch_op.drop_column("reference")
    op.drop_table("adjudication")
