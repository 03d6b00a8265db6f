"""Annotation walks: one row per account, the walk through a queue it is on.

The Annotate page keeps the walk here (`core.store.walks`) so that a reload,
another browser or a restart resumes it: the queue, the dataset filter, whether
it is blind, the items skipped and the labels written in it (newest last: what
Undo takes back). An account going away takes its walk with it.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotation_walk",
        sa.Column("annotator_id", sa.Integer(),
                  sa.ForeignKey("annotator.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("queue", sa.String(length=50), nullable=False),
        sa.Column("dataset", sa.String(length=200), nullable=True),
        sa.Column("blind", sa.Boolean(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("saved", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("annotation_walk")
