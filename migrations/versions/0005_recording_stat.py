"""Recordings remember the size and mtime their file had when it was read (NULL: rows from before).

A resumed ingest skips a path whose (size, mtime_ns) still match, without reading a byte of it;
rows without them fall back to hashing the file.

Revision ID: 0005
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("size_bytes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("mtime_ns", sa.Integer(), nullable=True))
    op.create_index("ix_recordings_path", "recordings", ["path"])


def downgrade() -> None:
    op.drop_index("ix_recordings_path", table_name="recordings")
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("mtime_ns")
        batch.drop_column("size_bytes")
