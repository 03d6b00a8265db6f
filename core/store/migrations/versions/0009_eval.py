"""Evaluation runs and their results (`grm-studio eval`).

One `eval_run` row per evaluation of a judge on a dataset (settings as JSON,
status, counts of items considered, evaluated and excluded, the position bias
of its samples), and one `eval_result` row per method, k and scope (all items
when `category` is NULL, else one category; '' is the items without one).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dataset_id", sa.Integer(),
                  sa.ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("judge_model_id", sa.Integer(), sa.ForeignKey("judge_model.id"),
                  nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("considered", sa.Integer(), nullable=False),
        sa.Column("evaluated", sa.Integer(), nullable=False),
        sa.Column("excluded", sa.JSON(), nullable=False),
        sa.Column("position_bias", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "eval_result",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(),
                  sa.ForeignKey("eval_run.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=200), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("correct", sa.Integer(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("ci_low", sa.Float(), nullable=True),
        sa.Column("ci_high", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("parse_failure_rate", sa.Float(), nullable=True),
        sa.Column("rescue_rate", sa.Float(), nullable=True),
        sa.Column("invalid_rate", sa.Float(), nullable=True),
        sa.Column("tie_rate", sa.Float(), nullable=True),
        sa.Column("first_win_rate", sa.Float(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("eval_result")
    op.drop_table("eval_run")
