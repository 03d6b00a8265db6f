"""Served rewards: each judgement a reward server served, tagged with the RL run
and step it answered, the request it belongs to and the rewards it gave.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "served_reward",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("judgement_id", sa.Integer(),
                  sa.ForeignKey("judgement.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run", sa.String(length=200), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("endpoint", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("voting", sa.String(length=10), nullable=False),
        sa.Column("responses", sa.JSON(), nullable=False),
        sa.Column("rewards", sa.JSON(), nullable=False),
        sa.Column("n_responses", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_served_reward_request_id", "served_reward", ["request_id"])
    op.create_index("ix_served_reward_judgement_id", "served_reward", ["judgement_id"])
    op.create_index("ix_served_reward_run", "served_reward", ["run"])


def downgrade() -> None:
    op.drop_table("served_reward")
