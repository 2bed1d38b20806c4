"""API keys, stored by hash only (``store.keys``)."""

from __future__ import annotations

import sqlalchemy as sa

from relgate.access import Role
from relgate.errors import IntegrityError, InvalidInputError
from relgate.store import schema
from relgate.store.db import Database, check_name
from relgate.store.records import ApiKey

__all__ = ["KeyRecords"]


class KeyRecords:
    """The API keys of every tenant (``relgate.service.auth`` creates and resolves them)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, *, key_hash: str, role: str, name: str, tenant: str = "default") -> None:
        """Store an API key by its hash (never the key itself)."""
        if role not in Role.labels():
            raise InvalidInputError(f"role must be one of {', '.join(Role.labels())}, not {role!r}")
        if not key_hash or len(key_hash) > 128:
            raise InvalidInputError("key_hash must be 1 to 128 characters")
        check_name("name", name)
        check_name("tenant", tenant)
        try:
            with self._db.transaction(lock_key=tenant) as conn:
                conn.execute(
                    schema.api_keys.insert().values(
                        key_hash=key_hash,
                        role=role,
                        name=name,
                        tenant=tenant,
                        created_at=self._db.now(),
                    )
                )
        except IntegrityError as exc:
            raise InvalidInputError("an API key with this hash already exists") from exc

    def find(self, key_hash: str) -> ApiKey | None:
        """The key with this hash, or None."""
        with self._db.read() as conn:
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
