"""Which meta reward model wrote each stored meta score: `sample.meta_model_id`.

Scores stored before this revision keep NULL (their meta RM was not recorded);
a meta RM's row going away sets it to NULL too, the scores stay.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sample") as batch:
        batch.add_column(sa.Column("meta_model_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_sample_meta_model_id", "meta_model", ["meta_model_id"],
                                 ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("sample") as batch:
        batch.drop_constraint("fk_sample_meta_model_id", type_="foreignkey")
        batch.drop_column("meta_model_id")
