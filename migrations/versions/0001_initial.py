"""The first catalog: corpus recordings and windows, class sets, prototypes, environments.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "recordings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "windows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("recording_id", sa.Integer(), sa.ForeignKey("recordings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("start_s", sa.Float(), nullable=False),
        sa.Column("end_s", sa.Float(), nullable=False),
        sa.Column("vector_row", sa.Integer(), nullable=False, unique=True),
    )
    op.create_index("ix_windows_recording_id", "windows", ["recording_id"])
    op.create_table(
        "ingest_failures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.Text(), nullable=False, unique=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "class_sets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "class_labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("class_set_id", sa.Integer(), sa.ForeignKey("class_sets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.UniqueConstraint("class_set_id", "position"),
        sa.UniqueConstraint("class_set_id", "label"),
    )
    op.create_index("ix_class_labels_class_set_id", "class_labels", ["class_set_id"])
    op.create_table(
        "prototype_sets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("class_set_id", sa.Integer(), sa.ForeignKey("class_sets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("n_neighbours", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_prototype_sets_class_set_id", "prototype_sets", ["class_set_id"])
    op.create_table(
        "prototypes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "prototype_set_id", sa.Integer(), sa.ForeignKey("prototype_sets.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("anchor", sa.LargeBinary(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("prototype_set_id", "position"),
    )
    op.create_index("ix_prototypes_prototype_set_id", "prototypes", ["prototype_set_id"])
    op.create_table(
        "tgap_neighbours",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prototype_id", sa.Integer(), sa.ForeignKey("prototypes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
    )
    op.create_index("ix_tgap_neighbours_prototype_id", "tgap_neighbours", ["prototype_id"])
    op.create_table(
        "environments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "background_vectors",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "environment_id", sa.Integer(), sa.ForeignKey("environments.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_background_vectors_environment_id", "background_vectors", ["environment_id"])


def downgrade() -> None:
    for table in (
        "background_vectors",
        "environments",
        "tgap_neighbours",
        "prototypes",
        "prototype_sets",
        "class_labels",
        "class_sets",
        "ingest_failures",
        "windows",
        "recordings",
        "store_meta",
    ):
        op.drop_table(table)
