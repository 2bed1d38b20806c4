"""API keys may have role worker (judge workers: the WorkerService only).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite cannot alter a CHECK constraint in place: batch mode copies the table (api_keys
    # has no append-only triggers, so the copy is allowed).
    with op.batch_alter_table("api_keys", recreate="auto") as batch:
        batch.drop_constraint("ck_api_keys_role_known", type_="check")
        batch.create_check_constraint(
            "ck_api_keys_role_known", "role IN ('viewer', 'releaser', 'admin', 'worker')"
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", recreate="auto") as batch:
        batch.drop_constraint("ck_api_keys_role_known", type_="check")
        batch.create_check_constraint(
            "ck_api_keys_role_known", "role IN ('viewer', 'releaser', 'admin')"
        )
