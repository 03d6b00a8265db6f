"""Best-of-n items: the accepted set of a ground truth, ratings on items, and the
pairwise accuracy and unscored rate of evaluation results.

`ground_truth.accepted`: the correct responses of a best-of-n item with several
(RewardBench 2's Ties subset), NULL for every other label (pairs are
unchanged). `item.ratings`: one numeric rating per response as the dataset gave
them (NULL: none). `eval_result.pairwise` (JSON) and `eval_result.unscored_rate`:
NULL for results stored before.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ground_truth") as batch_op:
        batch_op.add_column(sa.Column("accepted", sa.JSON(), nullable=True))
    with op.batch_alter_table("item") as batch_op:
        batch_op.add_column(sa.Column("ratings", sa.JSON(), nullable=True))
    with op.batch_alter_table("eval_result") as batch_op:
        batch_op.add_column(sa.Column("unscored_rate", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("pairwise", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eval_result") as batch_op:
        batch_op.drop_column("pairwise")
        batch_op.drop_column("unscored_rate")
    # Not a copy of `item` (SQLite's batch mode): dropping the old table would delete
    # its children's rows (ON DELETE CASCADE). SQLite 3.35+ drops a column in place.
    with op.batch_alter_table("item", recreate="never") as batch_op:
        batch_op.drop_column("ratings")
    with op.batch_alter_table("ground_truth") as batch_op:
        batch_op.drop_column("accepted")
