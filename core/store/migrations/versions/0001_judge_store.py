"""The judge store: datasets, items, ground truth, judge models, judgements, samples.

Revision ID: 0001
Revises: None
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dataset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )

    op.create_table('judge_model',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=False),
    sa.Column('backend', sa.String(length=50), nullable=False),
    sa.Column('source', sa.String(length=1000), nullable=False),
    sa.Column('revision', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('backend', 'source', 'revision')
    )

    op.create_table('item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=True),
    sa.Column('category', sa.String(length=200), nullable=True),
    sa.Column('query', sa.Text(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('responses', sa.JSON(), nullable=False),
    sa.Column('n_responses', sa.Integer(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('source_line', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'content_hash')
    )
    with op.batch_alter_table('item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_item_category'), ['category'], unique=False)
        batch_op.create_index(batch_op.f('ix_item_dataset_id'), ['dataset_id'], unique=False)

    op.create_table('ground_truth',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('best', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ground_truth', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ground_truth_item_id'), ['item_id'], unique=False)

    op.create_table('judgement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('judge_model_id', sa.Integer(), nullable=False),
    sa.Column('template_name', sa.String(length=100), nullable=False),
    sa.Column('template_sha256', sa.String(length=64), nullable=False),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('temperature', sa.Float(), nullable=False),
    sa.Column('top_p', sa.Float(), nullable=False),
    sa.Column('max_new_tokens', sa.Integer(), nullable=False),
    sa.Column('seed', sa.Integer(), nullable=False),
    sa.Column('rescue_enabled', sa.Boolean(), nullable=False),
    sa.Column('reply_prefix', sa.String(length=200), nullable=False),
    sa.Column('totals', sa.JSON(), nullable=False),
    sa.Column('winner', sa.Integer(), nullable=True),
    sa.Column('tie', sa.Boolean(), nullable=False),
    sa.Column('margin', sa.Integer(), nullable=True),
    sa.Column('split', sa.Boolean(), nullable=False),
    sa.Column('valid_samples', sa.Integer(), nullable=False),
    sa.Column('invalid_samples', sa.Integer(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('input', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['item.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['judge_model_id'], ['judge_model.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('judgement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_judgement_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_judgement_judge_model_id'), ['judge_model_id'], unique=False)

    op.create_table('sample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('judgement_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('shown_order', sa.JSON(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('principles', sa.Text(), nullable=True),
    sa.Column('critique', sa.Text(), nullable=True),
    sa.Column('raw_text', sa.Text(), nullable=False),
    sa.Column('finish_reason', sa.String(length=20), nullable=False),
    sa.Column('scores', sa.JSON(), nullable=True),
    sa.Column('parse_status', sa.String(length=20), nullable=False),
    sa.Column('parse_kind', sa.String(length=30), nullable=True),
    sa.Column('parse_reason', sa.Text(), nullable=True),
    sa.Column('score_format', sa.String(length=30), nullable=True),
    sa.Column('found_scores', sa.JSON(), nullable=True),
    sa.Column('missing_sections', sa.JSON(), nullable=False),
    sa.Column('rescue_used', sa.Boolean(), nullable=False),
    sa.Column('rescue_original_kind', sa.String(length=30), nullable=True),
    sa.Column('rescue_original_reason', sa.Text(), nullable=True),
    sa.Column('rescue_prefix', sa.Text(), nullable=True),
    sa.Column('rescue_continuation', sa.Text(), nullable=True),
    sa.Column('meta_score', sa.Float(), nullable=True),
    sa.Column('prompt_tokens', sa.Integer(), nullable=False),
    sa.Column('completion_tokens', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['judgement_id'], ['judgement.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('judgement_id', 'index')
    )


def downgrade() -> None:
    op.drop_table('sample')
    op.drop_table('judgement')
    op.drop_table('ground_truth')
    op.drop_table('item')
    op.drop_table('judge_model')
    op.drop_table('dataset')
