"""Which process runs an evaluation: `eval_run.runner_host` and `runner_pid`.

A run is stored as 'running' before its first item is judged and closed when
it ends; a process that is killed (SIGKILL, out of memory, a power cut) never
closes it. With the host and process id, a later reader on the same host sees
that the process is gone and closes the run as 'interrupted'. Runs stored
before this revision have neither (NULL) and are left as they are.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("eval_run", sa.Column("runner_host", sa.String(length=255), nullable=True))
    op.add_column("eval_run", sa.Column("runner_pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("eval_run") as batch:
        batch.drop_column("runner_pid")
        batch.drop_column("runner_host")
