"""Tenancy as a boundary and append-only everywhere.

- ``tenant_releases``: what each tenant registered (PRIMARY KEY (tenant, sha256)); the same
  content may be a release of several tenants, each with its own receipts. Existing releases are
  copied over with their tenant.
- The one-register-receipt-per-release index becomes per (tenant, release).
- API keys may have roles ``operator`` (the one cross-tenant power) and ``gateway`` (a tenant's
  data-plane key); keys are append-only and revoked by a ``key_revocations`` row.
- Receipts no longer reference ``releases`` by a foreign key: a tenant-level receipt (a key
  created or revoked, an operator's cross-tenant access) has the subject
  ``relgate.receipts.model.TENANT_SUBJECT``, and the store checks that every other receipt names
  a release of its own tenant (a stronger rule than the old key, which any tenant's release met).
- Append-only triggers on the new tables and on ``api_keys``; on SQLite, BEFORE INSERT triggers
  on every append-only table so that ``INSERT OR REPLACE`` cannot delete a stored row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SHA = 64
ROLES = ("viewer", "releaser", "admin", "worker", "operator", "gateway")
NEW_APPEND_ONLY = ("tenant_releases", "api_keys", "key_revocations")
# Every unique key of the append-only tables (columns, partial condition): see schema.py.
UNIQUE_KEYS: dict[str, tuple[tuple[tuple[str, ...], str | None], ...]] = {
    "releases": ((("sha256",), None),),
    "tenant_releases": ((("tenant", "sha256"), None),),
    "receipts": (
        (("receipt_sha256",), None),
        (("tenant", "seq"), None),
        (("tenant", "prev_receipt_sha256"), None),
        (("tenant", "release_sha256", "prev_release_receipt_sha256"), None),
        (("tenant", "release_sha256"), "kind = 'register'"),
    ),
    "facts": ((("seq",), None),),
    "tree_heads": ((("id",), None),),
    "anchors": ((("id",), None),),
    "api_keys": ((("key_hash",), None),),
    "key_revocations": ((("key_hash",), None),),
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # Recreating receipts drops and renames a table that facts reference: check foreign
        # keys at commit, when every table is whole again (PRAGMA foreign_keys cannot change
        # inside the migration's transaction; this one can).
        op.execute("PRAGMA defer_foreign_keys = ON")
    op.create_table(
        "tenant_releases",
        sa.Column("tenant", sa.String(256), nullable=False),
        sa.Column("sha256", sa.String(SHA), nullable=False),
        sa.Column("release_id", sa.String(16), nullable=False),
        sa.Column("previous_release", sa.String(SHA), nullable=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "sha256", name="pk_tenant_releases"),
        sa.ForeignKeyConstraint(
            ["sha256"], ["releases.sha256"], name="fk_tenant_releases_sha256_releases"
        ),
        sa.ForeignKeyConstraint(
            ["tenant", "previous_release"],
            ["tenant_releases.tenant", "tenant_releases.sha256"],
            name="fk_tenant_releases_previous_release",
        ),
    )
    op.create_index(
        "ix_tenant_releases_tenant_release_id", "tenant_releases", ["tenant", "release_id"]
    )
    # Releases before tenancy had one tenant each: theirs. Insert in registration order so a
    # previous release is always there before the release that names it.
    op.execute(
        "INSERT INTO tenant_releases (tenant, sha256, release_id, previous_release, actor, "
        "created_at) SELECT tenant, sha256, release_id, previous_release, actor, created_at "
        "FROM releases ORDER BY created_at, sha256"
    )
    op.drop_index("uq_receipts_one_register_per_release", table_name="receipts")
    if sqlite:
        # SQLite cannot drop a constraint in place: batch mode copies the table, which drops its
        # triggers with it (recreated below).
        op.execute("DROP TRIGGER receipts_no_update")
        op.execute("DROP TRIGGER receipts_no_delete")
    with op.batch_alter_table("receipts", recreate="auto") as batch:
        batch.drop_constraint("fk_receipts_release_sha256_releases", type_="foreignkey")
    if sqlite:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER receipts_no_{event.lower()} BEFORE {event} ON receipts "
                f"BEGIN SELECT RAISE(ABORT, 'relgate: receipts is append-only "
                f"({event} refused)'); END"
            )
    op.create_index(
        "uq_receipts_one_register_per_release",
        "receipts",
        ["tenant", "release_sha256"],
        unique=True,
        sqlite_where=sa.text("kind = 'register'"),
        postgresql_where=sa.text("kind = 'register'"),
    )
    with op.batch_alter_table("api_keys", recreate="auto") as batch:
        batch.drop_constraint("ck_api_keys_role_known", type_="check")
        batch.create_check_constraint(
            "ck_api_keys_role_known", "role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")"
        )
    op.create_table(
        "key_revocations",
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("revoked_at", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("key_hash", name="pk_key_revocations"),
        sa.ForeignKeyConstraint(
            ["key_hash"], ["api_keys.key_hash"], name="fk_key_revocations_key_hash_api_keys"
        ),
    )
    _triggers()


def _triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in NEW_APPEND_ONLY:
            for event in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'relgate: {table} is append-only "
                    f"({event} refused)'); END"
                )
        for table, keys in UNIQUE_KEYS.items():
            clashes = []
            for columns, where in keys:
                match = " AND ".join(f"{c} = NEW.{c}" for c in columns)
                if where is not None:
                    new_where = where.replace("kind", "NEW.kind")
                    match = f"{match} AND {where}"
                    clashes.append(
                        f"({new_where} AND EXISTS (SELECT 1 FROM {table} WHERE {match}))"
                    )
                else:
                    clashes.append(f"EXISTS (SELECT 1 FROM {table} WHERE {match})")
            op.execute(
                f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                f"WHEN {' OR '.join(clashes)} "
                f"BEGIN SELECT RAISE(ABORT, 'relgate: {table} is append-only "
                f"(an insert may not replace a stored row)'); END"
            )
    elif dialect == "postgresql":
        for table in NEW_APPEND_ONLY:
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
