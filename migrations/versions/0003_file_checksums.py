"""Checksums of published store files (the index, blocks of vector rows); existing rows are kept and
older stores get their checksums computed by the next writer.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_checksums",
        sa.Column("file", sa.String(64), primary_key=True),
        sa.Column("block", sa.Integer(), primary_key=True),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_checksums")
