"""The judge-worker job queue in the store, so queued work survives a control-plane restart and
every control-plane replica on one PostgreSQL serves the same queue.

- ``judge_jobs``: one row per job, content-addressed (``job_id`` = sha256 of tenant, judge and
  canonical spec): queued, leased to a worker until ``lease_until`` (wall clock), or done with
  its first ``result``. Rows change and are deleted by retention: not an append-only table.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "judge_jobs",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("judge_sha256", sa.String(64), nullable=False),
        sa.Column("spec", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("worker_id", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.CheckConstraint(
            "state IN ('queued', 'leased', 'done')", name="ck_judge_jobs_state_known"
        ),
        sa.PrimaryKeyConstraint("job_id", name="pk_judge_jobs"),
    )
    op.create_index(
        "ix_judge_jobs_claim", "judge_jobs", ["tenant", "judge_sha256", "state", "created_at"]
    )
    op.create_index("ix_judge_jobs_worker_id", "judge_jobs", ["worker_id"])
    op.create_index("ix_judge_jobs_state_updated_at", "judge_jobs", ["state", "updated_at"])


def downgrade() -> None:
    op.drop_table("judge_jobs")
