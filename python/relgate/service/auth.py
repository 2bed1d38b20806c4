"""API keys: bearer tokens in the `authorization` metadata, stored hashed, with roles.

A key is `rgk_` + 32 random bytes (base64url). The store keeps only SHA-256(key). A fast
hash is right here, unlike for passwords: a slow KDF protects low-entropy secrets against
offline guessing, but a 256-bit random key cannot be guessed whatever the hash costs, and a
deterministic hash lets the digest itself be the indexed lookup key (one query, no
per-key salt scan) at microseconds per call. A leaked database reveals no usable key.

Roles are ordered viewer < releaser < admin: reads need viewer, mutations releaser, key
management admin. A key belongs to a tenant; only admin keys may act on another tenant.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from relgate.access import Role
from relgate.errors import AuthError, InvalidInputError

log = logging.getLogger(__name__)

KEY_PREFIX = "rgk_"
ADMIN_KEY_FILE = "admin.key"
# Non-secret record that the bootstrap key was issued once: deleting admin.key (after
# copying it somewhere safe) must not mint a new admin key on the next start.
ADMIN_KEY_MARKER = "admin.key.sha256"


@dataclass(frozen=True)
class Principal:
    """The caller a valid key identifies."""

    key_sha256: str
    role: Role
    name: str
    tenant: str

    @property
    def actor(self) -> str:
        """How receipts name this caller: the key's name and a prefix of its hash."""
        return f"key:{self.name}:{self.key_sha256[:12]}"


class ApiKeyRecord(Protocol):
    """What the store returns for a key (`relgate.store.ApiKey`)."""

    @property
    def role(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def tenant(self) -> str: ...


class KeyStore(Protocol):
    """The key records auth uses (`relgate.store.Store.keys`)."""

    def add(self, *, key_hash: str, role: str, name: str, tenant: str = ...) -> None: ...
    def find(self, key_hash: str) -> ApiKeyRecord | None: ...


def new_key() -> str:
    """A fresh high-entropy API key (256 random bits)."""
    raw = secrets.token_bytes(32)
    return KEY_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def hash_key(key: str) -> str:
    """SHA-256 hex of a key: the only form that is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def bearer_key(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """The key of an `authorization: Bearer KEY` metadata entry; AuthError when absent."""
    for name, value in metadata:
        if name.lower() != "authorization":
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        scheme, _, key = text.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthError("authorization metadata must be 'Bearer <api key>'")
        return key.strip()
    raise AuthError("missing API key: send 'authorization: Bearer <key>' (RELGATE_API_KEY)")


class Authenticator:
    """Resolves keys to principals and checks roles.

    Keys are immutable once created (there is no revocation path yet), so found keys are
    cached in memory; unknown keys are not cached, so a key created a moment ago works.
    """

    def __init__(self, store: KeyStore) -> None:
        self._store = store
        self._cache: dict[str, Principal] = {}

    def cached(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal | None:
        """The principal of an already-seen key, without touching the store; None when the
        key is new or missing (then call `authenticate`, which also raises the errors)."""
        try:
            return self._cache.get(hash_key(bearer_key(metadata)))
        except AuthError:
            return None

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        """The principal of the call's key. Blocking (may query the store)."""
        digest = hash_key(bearer_key(metadata))
        cached = self._cache.get(digest)
        if cached is not None:
            return cached
        record = self._store.find(digest)
        if record is None:
            raise AuthError("unknown API key")
        principal = Principal(
            key_sha256=digest, role=Role.parse(record.role), name=record.name, tenant=record.tenant
        )
        self._cache[digest] = principal
        return principal

    @staticmethod
    def authorize(principal: Principal, required: Role, tenant: str | None = None) -> None:
        """AuthError unless `principal` has at least `required` on `tenant`."""
        worker_call = required is Role.WORKER
        if (principal.role is Role.WORKER) != worker_call or (
            not worker_call and principal.role < required
        ):
            raise AuthError(f"role {principal.role.label} may not do this (needs {required.label})")
        if tenant is not None and tenant != principal.tenant and principal.role is not Role.ADMIN:
            raise AuthError(f"key of tenant {principal.tenant!r} may not act on {tenant!r}")


def create_key(store: KeyStore, *, role: Role, name: str, tenant: str = "default") -> str:
    """Create and store a key; returns the plaintext (the only time it exists)."""
    if not name.strip():
        raise InvalidInputError("a key needs a non-empty name")
    key = new_key()
    store.add(key_hash=hash_key(key), role=role.label, name=name, tenant=tenant)
    return key


def bootstrap_admin_key(store: KeyStore, data_dir: Path) -> Path | None:
    """On first start, write an admin key to DATA_DIR/admin.key (mode 0600).

    Idempotent across restarts and crashes: the file is written (exclusively, 0600) before
    the hash is stored, and an existing file whose key is missing from the store (a crash
    in between, or a new store URL) is stored again. Returns the key file's path, or None
    when the bootstrap key was issued before and its file has since been removed.
    """
    path = data_dir / ADMIN_KEY_FILE
    marker = data_dir / ADMIN_KEY_MARKER
    if not path.exists():
        if marker.exists():
            log.info("admin.key was removed after first start; not issuing a new one")
            return None
        key = new_key()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (key + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
    key = path.read_text(encoding="ascii").strip()
    digest = hash_key(key)
    if store.find(digest) is None:
        store.add(key_hash=digest, role=Role.ADMIN.label, name="bootstrap-admin")
    marker.write_text(digest + "\n", encoding="ascii")
    return path


__all__ = [
    "ADMIN_KEY_FILE",
    "Authenticator",
    "KeyStore",
    "Principal",
    "bearer_key",
    "bootstrap_admin_key",
    "create_key",
    "hash_key",
    "new_key",
]
