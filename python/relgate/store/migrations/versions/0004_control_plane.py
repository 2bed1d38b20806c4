"""Several control planes on one store: the leader lease and a rollout's evidence between
decisions.

- ``leases``: one row per lease (``control-plane``): holder, epoch (the fencing token every
  decision write checks in its own transaction), expiry. Rows change (renewals, takeovers):
  not an append-only table.
- ``rollout_evidence``: readings and request counts a rollout gathered since its last decision,
  so a restarted or newly elected control plane decides on the same evidence; rows a decision
  has committed (as facts with its receipt) are deleted.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("acquired_at", sa.Float(), nullable=False),
        sa.CheckConstraint("epoch > 0", name="ck_leases_epoch_positive"),
        sa.PrimaryKeyConstraint("name", name="pk_leases"),
    )
    op.create_table(
        "rollout_evidence",
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("rollout_id", sa.String(64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("fact", sa.Text(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "rollout_id", "n", name="pk_rollout_evidence"),
    )


def downgrade() -> None:
    op.drop_table("rollout_evidence")
    op.drop_table("leases")
