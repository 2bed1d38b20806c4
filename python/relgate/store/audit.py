"""The store's audit side records: signed tree heads, their anchors, and API keys.

A mixin of ``relgate.store.Store`` (split out so each file holds one concern); every write goes
through the store's serialized transaction, and every table here is append-only too.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from relgate.access import Role
from relgate.errors import IntegrityError, InvalidInputError
from relgate.store import schema
from relgate.store.records import ApiKey

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["ROLES", "AuditRecords", "check_name"]

ROLES = Role.labels()


def check_name(what: str, value: str) -> None:
    """Refuse a blank or over-long name (tenant, actor, key name)."""
    if not isinstance(value, str) or not value.strip() or len(value) > 256:
        raise InvalidInputError(f"{what} must be 1 to 256 characters, not blank")


class AuditRecords:
    """Tree heads, anchors and API keys; ``Store`` provides the connections and the clock."""

    if TYPE_CHECKING:

        def _transaction(self, *, lock_key: str) -> AbstractContextManager[Connection]: ...

        def _read(self) -> AbstractContextManager[Connection]: ...

        def now(self) -> str: ...

    # ---- tree heads and anchors (written by relgate.receipts / relgate.receipts.anchors) ---------

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
        with self._transaction(lock_key=tenant) as conn:
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
        with self._read() as conn:
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
        with self._transaction(lock_key=tenant) as conn:
            conn.execute(
                schema.anchors.insert().values(
                    tenant=tenant,
                    tree_size=tree_size,
                    root_hex=root_hex,
                    sink=sink,
                    ref=ref,
                    created_at=self.now(),
                )
            )

    def anchors(self, *, tenant: str = "default") -> list[dict[str, Any]]:
        """Anchor records of the tenant, oldest first, as plain dicts."""
        a = schema.anchors.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(a.tenant, a.tree_size, a.root_hex, a.sink, a.ref, a.created_at)
                .where(a.tenant == tenant)
                .order_by(a.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    # ---- API keys -----------------------------------------------------------------------

    def add_api_key(self, *, key_hash: str, role: str, name: str, tenant: str = "default") -> None:
        """Store an API key by its hash (never the key itself)."""
        if role not in ROLES:
            raise InvalidInputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not key_hash or len(key_hash) > 128:
            raise InvalidInputError("key_hash must be 1 to 128 characters")
        check_name("name", name)
        check_name("tenant", tenant)
        try:
            with self._transaction(lock_key=tenant) as conn:
                conn.execute(
                    schema.api_keys.insert().values(
                        key_hash=key_hash,
                        role=role,
                        name=name,
                        tenant=tenant,
                        created_at=self.now(),
                    )
                )
        except IntegrityError as exc:
            raise InvalidInputError("an API key with this hash already exists") from exc

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, or None."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(schema.api_keys).where(schema.api_keys.c.key_hash == key_hash)
            ).one_or_none()
        if row is None:
            return None
        return ApiKey(
            key_hash=row.key_hash,
            role=row.role,
            name=row.name,
            tenant=row.tenant,
            created_at=row.created_at,
        )
