"""Per-environment tau overrides for audio and text backgrounds (NULL: use the defaults).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("tau_audio", sa.Float(), nullable=True))
        batch.add_column(sa.Column("tau_text", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("tau_text")
        batch.drop_column("tau_audio")
