"""Durable gate runs: a RunGate's request, state and outcome in the store.

- ``gate_runs``: one row per gate run (``run_id``): tenant, release, the decoded request as
  JSON (and its sha256: one unfinished run per tenant, release and request, a partial unique
  index), the stored answers' sha256 once collected (a resume never asks a model endpoint
  again), the last progress, the owner and its heartbeat (a run whose owner stopped beating is
  resumed by the leader), attempts and their score-cache statistics, and the outcome (the gate
  result sha256 and receipt of its ``gate_result`` fact, or the error). Rows change as the run
  goes: not an append-only table, and never the source of a receipt.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SHA = 64


def upgrade() -> None:
    op.create_table(
        "gate_runs",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("release_sha256", sa.String(SHA), nullable=False),
        sa.Column("request_sha256", sa.String(SHA), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("answers_sha256", sa.String(SHA), nullable=True),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("stats", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("gate_result_sha256", sa.String(SHA), nullable=True),
        sa.Column("receipt_sha256", sa.String(SHA), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'done', 'failed')", name="ck_gate_runs_state_known"
        ),
        sa.PrimaryKeyConstraint("run_id", name="pk_gate_runs"),
    )
    op.create_index("ix_gate_runs_tenant_release", "gate_runs", ["tenant", "release_sha256"])
    op.create_index(
        "uq_gate_runs_one_running",
        "gate_runs",
        ["tenant", "release_sha256", "request_sha256"],
        unique=True,
        sqlite_where=sa.text("state = 'running'"),
        postgresql_where=sa.text("state = 'running'"),
    )


def downgrade() -> None:
    op.drop_index("uq_gate_runs_one_running", table_name="gate_runs")
    op.drop_index("ix_gate_runs_tenant_release", table_name="gate_runs")
    op.drop_table("gate_runs")
