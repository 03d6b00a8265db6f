"""Edits of items' reference answers, with who made them and when.

`reference_edit`: one row per edit of an item's reference answer by an account
(`core.store.reference_edits`): the answer it set (NULL: removed) and the one
before (NULL: none). Append-only with one chain per item (the partial unique
index lets only one row start it). `item.reference` stays the current answer.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reference_edit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(),
                  sa.ForeignKey("item.id", ondelete="CASCADE"), nullable=False),
        sa.Column("editor_id", sa.Integer(), sa.ForeignKey("annotator.id"), nullable=False),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.Column("previous", sa.Text(), nullable=True),
        sa.Column("supersedes_id", sa.Integer(), sa.ForeignKey("reference_edit.id"),
                  nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reference_edit_item_id", "reference_edit", ["item_id"])
    op.create_index(
        "uq_reference_edit_chain_start", "reference_edit", ["item_id"], unique=True,
        sqlite_where=sa.text("supersedes_id IS NULL"),
        postgresql_where=sa.text("supersedes_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("reference_edit")
