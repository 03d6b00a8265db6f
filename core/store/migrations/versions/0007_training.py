"""Training: versioned RFT exports and the provenance of trained judge models.

A trained checkpoint is registered as an ordinary `judge_model` row (so the
judge picker lists it); `trained_judge` says which model it was trained from,
on which export, how, and the SHA-256 of its weights.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rft_export",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("dataset", sa.String(length=200), nullable=True),
        sa.Column("judge_model_id", sa.Integer(), sa.ForeignKey("judge_model.id"), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.UniqueConstraint("name", "version"),
    )
    op.create_table(
        "trained_judge",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "judge_model_id",
            sa.Integer(),
            sa.ForeignKey("judge_model.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column(
            "parent_judge_model_id", sa.Integer(), sa.ForeignKey("judge_model.id"), nullable=True
        ),
        sa.Column(
            "rft_export_id",
            sa.Integer(),
            sa.ForeignKey("rft_export.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("method", sa.String(length=50), nullable=False),
        sa.Column("weights_sha256", sa.String(length=64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("trained_judge")
    op.drop_table("rft_export")
