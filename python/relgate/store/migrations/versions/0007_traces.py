"""Traces the replay monitor needs, persisted (bounded): a restarted control plane replays the
traffic it had instead of starting with empty buffers.

- ``traces``: one row per served or mirrored request with an answer (``trace``: its JSON),
  bounded per (tenant, release, slice, shadow) and by age; rows are pruned, oldest first
  (``relgate.store.traces``): not an append-only table.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "traces",
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("release_sha256", sa.String(64), nullable=False),
        sa.Column("slice", sa.String(256), nullable=False),
        sa.Column("shadow", sa.Integer(), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("trace", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id", name="pk_traces"),
    )
    op.create_index(
        "ix_traces_tenant_release_sha256_slice_shadow_time",
        "traces",
        ["tenant", "release_sha256", "slice", "shadow", "time"],
    )
    op.create_index("ix_traces_time", "traces", ["time"])


def downgrade() -> None:
    op.drop_index("ix_traces_time", table_name="traces")
    op.drop_index("ix_traces_tenant_release_sha256_slice_shadow_time", table_name="traces")
    op.drop_table("traces")
