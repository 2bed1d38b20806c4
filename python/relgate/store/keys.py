"""API keys, stored by hash only (``store.keys``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from relgate.access import Role
from relgate.errors import (
    IntegrityError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
)
from relgate.receipts.model import TENANT_SUBJECT, Receipt, ReceiptKind
from relgate.store import schema
from relgate.store.chain import append_receipt
from relgate.store.db import Database, check_name
from relgate.store.records import ApiKey

__all__ = ["KeyRecords", "check_key"]


class KeyRecords:
    """The API keys of every tenant (``relgate.service.auth`` makes and resolves them); each
    key created or revoked is a receipt in its tenant's chain."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, *, key_hash: str, role: str, name: str, tenant: str, actor: str) -> Receipt:
        """Store an API key by its hash (never the key itself) and its ``key_create`` receipt,
        in one transaction."""
        check_key(key_hash=key_hash, role=role, name=name, tenant=tenant)
        check_name("actor", actor)
        try:
            with self._db.transaction(lock_key=tenant) as conn:
                now = self._db.now()
                conn.execute(
                    schema.api_keys.insert().values(
                        key_hash=key_hash, role=role, name=name, tenant=tenant, created_at=now
                    )
                )
                return append_receipt(
                    conn,
                    kind=ReceiptKind.KEY_CREATE,
                    tenant=tenant,
                    subject=TENANT_SUBJECT,
                    evidence={"key_sha256": key_hash, "role": role, "name": name},
                    actor=actor,
                    reason=f"{role} key {name!r} created",
                    now=now,
                )
        except IntegrityError as exc:
            raise InvalidInputError("an API key with this hash already exists") from exc

    def revoke(self, key: ApiKey, *, actor: str, reason: str) -> Receipt:
        """Revoke ``key`` (it opens nothing from now on) and write its ``key_revoke`` receipt,
        in one transaction. A key revoked before is an ``InvalidTransitionError``."""
        check_name("actor", actor)
        if not reason.strip():
            raise InvalidInputError("a revocation needs a reason")
        r = schema.key_revocations.c
        with self._db.transaction(lock_key=key.tenant) as conn:
            if conn.execute(sa.select(r.key_hash).where(r.key_hash == key.key_hash)).first():
                raise InvalidTransitionError(f"key {key.key_hash[:12]} is already revoked")
            now = self._db.now()
            conn.execute(
                schema.key_revocations.insert().values(
                    key_hash=key.key_hash, actor=actor, reason=reason[:2000], revoked_at=now
                )
            )
            return append_receipt(
                conn,
                kind=ReceiptKind.KEY_REVOKE,
                tenant=key.tenant,
                subject=TENANT_SUBJECT,
                evidence={"key_sha256": key.key_hash, "role": key.role, "name": key.name},
                actor=actor,
                reason=reason[:2000],
                now=now,
            )

    def find(self, key_hash: str) -> ApiKey | None:
        """The key with this hash (revoked or not), or None."""
        with self._db.read() as conn:
            row = conn.execute(
                _select().where(schema.api_keys.c.key_hash == key_hash)
            ).one_or_none()
        return None if row is None else _key(row)

    def list(self, *, tenant: str) -> list[ApiKey]:
        """The tenant's keys, oldest first, revoked ones marked."""
        k = schema.api_keys.c
        with self._db.read() as conn:
            rows = conn.execute(_select().where(k.tenant == tenant).order_by(k.created_at)).all()
        return [_key(r) for r in rows]

    def resolve(self, prefix: str, *, tenant: str) -> ApiKey:
        """The tenant's key whose sha256 is or starts with ``prefix`` (at least 8 hex)."""
        text = prefix.strip().lower()
        if len(text) < 8 or len(text) > 64 or any(c not in "0123456789abcdef" for c in text):
            raise InvalidInputError("name a key by its sha256, or a prefix of at least 8 hex")
        k = schema.api_keys.c
        with self._db.read() as conn:
            rows = conn.execute(
                _select()
                .where(k.tenant == tenant, k.key_hash.startswith(text, autoescape=True))
                .limit(2)
            ).all()
        if not rows:
            raise NotFoundError(f"no key {text} in tenant {tenant!r}")
        if len(rows) > 1:
            raise InvalidInputError(f"{text} names more than one key: give more of its sha256")
        return _key(rows[0])


def check_key(*, key_hash: str, role: str, name: str, tenant: str) -> None:
    """Refuse a key record that cannot be stored, naming the field."""
    if role not in Role.labels():
        raise InvalidInputError(f"role must be one of {', '.join(Role.labels())}, not {role!r}")
    if not key_hash or len(key_hash) > 128:
        raise InvalidInputError("key_hash must be 1 to 128 characters")
    check_name("name", name)
    check_name("tenant", tenant)


def _select() -> sa.Select[Any]:
    k, r = schema.api_keys.c, schema.key_revocations.c
    return sa.select(
        schema.api_keys, r.revoked_at, r.actor.label("revoked_by"), r.reason.label("revoke_reason")
    ).join(schema.key_revocations, r.key_hash == k.key_hash, isouter=True)


def _key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        key_hash=row.key_hash,
        role=row.role,
        name=row.name,
        tenant=row.tenant,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        revoke_reason=row.revoke_reason,
    )
