"""Initial schema: releases, receipts, facts, tree heads, anchors, API keys; append-only
triggers on every table but api_keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SHA = 64
APPEND_ONLY = ("releases", "receipts", "facts", "tree_heads", "anchors")


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("sha256", sa.String(SHA), nullable=False),
        sa.Column("release_id", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=False),
        sa.Column("previous_release", sa.String(SHA), nullable=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_releases"),
        sa.ForeignKeyConstraint(
            ["previous_release"],
            ["releases.sha256"],
            name="fk_releases_previous_release_releases",
        ),
    )
    op.create_index("ix_releases_release_id", "releases", ["release_id"])
    op.create_index("ix_releases_tenant", "releases", ["tenant"])
    op.create_table(
        "receipts",
        sa.Column("receipt_sha256", sa.String(SHA), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("release_sha256", sa.String(SHA), nullable=False),
        sa.Column("prev_receipt_sha256", sa.String(SHA), nullable=False),
        sa.Column("prev_release_receipt_sha256", sa.String(SHA), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("receipt_sha256", name="pk_receipts"),
        sa.CheckConstraint("seq >= 0", name="ck_receipts_seq_nonnegative"),
        sa.UniqueConstraint("tenant", "seq", name="uq_receipts_tenant_seq"),
        sa.UniqueConstraint(
            "tenant", "prev_receipt_sha256", name="uq_receipts_tenant_prev_receipt_sha256"
        ),
        sa.UniqueConstraint(
            "tenant",
            "release_sha256",
            "prev_release_receipt_sha256",
            name="uq_receipts_tenant_release_sha256_prev_release_receipt_sha256",
        ),
        sa.ForeignKeyConstraint(
            ["release_sha256"],
            ["releases.sha256"],
            name="fk_receipts_release_sha256_releases",
        ),
    )
    op.create_index(
        "uq_receipts_one_register_per_release",
        "receipts",
        ["release_sha256"],
        unique=True,
        sqlite_where=sa.text("kind = 'register'"),
        postgresql_where=sa.text("kind = 'register'"),
    )
    op.create_table(
        "facts",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("release_sha256", sa.String(SHA), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("receipt_sha256", sa.String(SHA), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_facts"),
        sa.ForeignKeyConstraint(
            ["release_sha256"], ["releases.sha256"], name="fk_facts_release_sha256_releases"
        ),
        sa.ForeignKeyConstraint(
            ["receipt_sha256"],
            ["receipts.receipt_sha256"],
            name="fk_facts_receipt_sha256_receipts",
        ),
    )
    op.create_index("ix_facts_release_kind", "facts", ["release_sha256", "kind"])
    op.create_table(
        "tree_heads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hex", sa.String(SHA), nullable=False),
        sa.Column("timestamp", sa.String(32), nullable=False),
        sa.Column("signature_b64", sa.String(128), nullable=False),
        sa.Column("public_key_b64", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tree_heads"),
    )
    op.create_index("ix_tree_heads_tenant_size", "tree_heads", ["tenant", "tree_size"])
    op.create_table(
        "anchors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("tree_size", sa.Integer(), nullable=False),
        sa.Column("root_hex", sa.String(SHA), nullable=False),
        sa.Column("sink", sa.String(64), nullable=False),
        sa.Column("ref", sa.Text(), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_anchors"),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name="pk_api_keys"),
        sa.CheckConstraint(
            "role IN ('viewer', 'releaser', 'admin')", name="ck_api_keys_role_known"
        ),
    )
    _append_only_triggers()


def _append_only_triggers() -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the append-only tables."""
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'relgate: {table} is append-only "
                    f"({event} refused)'); END"
                )
    elif dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION relgate_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'relgate: % is append-only (% refused)', "
            "TG_TABLE_NAME, TG_OP; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION relgate_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION relgate_append_only()"
            )
    else:
        raise NotImplementedError(f"relgate supports sqlite and postgresql, not {dialect}")


def downgrade() -> None:
    raise NotImplementedError("relgate migrations are forward-only")
