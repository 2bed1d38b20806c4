"""The audit log beside the receipts: signed tree heads and where they were anchored
(``store.audit``). Every write goes through the database's serialized transaction, and both
tables are append-only."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from relgate.store import schema
from relgate.store.db import Database

__all__ = ["AuditLog"]


class AuditLog:
    """Signed tree heads and anchor records (``relgate.app.receipts`` writes them)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add_tree_head(
        self,
        *,
        tenant: str,
        tree_size: int,
        root_hex: str,
        timestamp: str,
        signature_b64: str,
        public_key_b64: str,
    ) -> None:
        """Append a signed tree head."""
        with self._db.transaction(lock_key=tenant) as conn:
            conn.execute(
                schema.tree_heads.insert().values(
                    tenant=tenant,
                    tree_size=tree_size,
                    root_hex=root_hex,
                    timestamp=timestamp,
                    signature_b64=signature_b64,
                    public_key_b64=public_key_b64,
                )
            )

    def tree_heads(self, *, tenant: str = "default") -> list[dict[str, Any]]:
        """Signed tree heads of the tenant, oldest first, as plain dicts."""
        t = schema.tree_heads.c
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(
                    t.tenant,
                    t.tree_size,
                    t.root_hex,
                    t.timestamp,
                    t.signature_b64,
                    t.public_key_b64,
                )
                .where(t.tenant == tenant)
                .order_by(t.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def add_anchor(
        self, *, tenant: str, tree_size: int, root_hex: str, sink: str, ref: str
    ) -> None:
        """Append the record of one tree head anchored to one sink."""
        with self._db.transaction(lock_key=tenant) as conn:
            conn.execute(
                schema.anchors.insert().values(
                    tenant=tenant,
                    tree_size=tree_size,
                    root_hex=root_hex,
                    sink=sink,
                    ref=ref,
                    created_at=self._db.now(),
                )
            )

    def anchors(self, *, tenant: str = "default") -> list[dict[str, Any]]:
        """Anchor records of the tenant, oldest first, as plain dicts."""
        a = schema.anchors.c
        with self._db.read() as conn:
            rows = conn.execute(
                sa.select(a.tenant, a.tree_size, a.root_hex, a.sink, a.ref, a.created_at)
                .where(a.tenant == tenant)
                .order_by(a.id)
            ).all()
        return [dict(row._mapping) for row in rows]
