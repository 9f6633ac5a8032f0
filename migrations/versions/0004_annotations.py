"""Reviewed verdicts on classified windows (``proto-index annotate``); a new table, no row touched.

Revision ID: 0004
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recording_id", sa.Integer(), sa.ForeignKey("recordings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("window_id", sa.Integer(), sa.ForeignKey("windows.id", ondelete="CASCADE"), nullable=True),
        sa.Column("environment", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("corrected_label", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_annotations_recording_id", "annotations", ["recording_id"])
    op.create_index("ix_annotations_window_id", "annotations", ["window_id"])


def downgrade() -> None:
    op.drop_index("ix_annotations_window_id", "annotations")
    op.drop_index("ix_annotations_recording_id", "annotations")
    op.drop_table("annotations")
