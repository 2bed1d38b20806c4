"""API keys: bearer tokens in the `authorization` metadata, stored hashed, with roles.

A key is `rgk_` + 32 random bytes (base64url). The store keeps only SHA-256(key). A fast
hash is right here, unlike for passwords: a slow KDF protects low-entropy secrets against
offline guessing, but a 256-bit random key cannot be guessed whatever the hash costs, and a
deterministic hash lets the digest itself be the indexed lookup key (one query, no
per-key salt scan) at microseconds per call. A leaked database reveals no usable key.

Roles are ordered viewer < releaser < admin < operator (``relgate.access.Role``); worker and
gateway keys open only what is theirs. A key belongs to a tenant and acts on that tenant only;
an operator key may act on any, and the service writes an ``operator_access`` receipt into the
chain of each tenant it touches. Keys are never changed or deleted: a revoked key has a
revocation record (and a ``key_revoke`` receipt) and opens nothing from then on.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from relgate.access import DEFAULT_TENANT, Role
from relgate.errors import AuthError, InvalidInputError

log = logging.getLogger(__name__)

KEY_PREFIX = "rgk_"
ADMIN_KEY_FILE = "admin.key"
# Non-secret record that the bootstrap key was issued once: deleting admin.key (after
# copying it somewhere safe) must not mint a new admin key on the next start.
ADMIN_KEY_MARKER = "admin.key.sha256"
BOOTSTRAP_KEY_NAME = "bootstrap-operator"
# How long a resolved key is trusted without asking the store again: the bound on how late a
# revocation made by another server (sharing the database) takes effect here. The server that
# revokes a key forgets it at once.
KEY_CACHE_TTL_S = 10.0
KEY_CACHE_SIZE = 10_000


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

    def may_act_on(self, tenant: str) -> bool:
        """Whether this key may touch ``tenant`` at all (its own, or any for an operator)."""
        return tenant == self.tenant or self.role is Role.OPERATOR


class ApiKeyRecord(Protocol):
    """What the store returns for a key (`relgate.store.ApiKey`)."""

    @property
    def role(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def tenant(self) -> str: ...
    @property
    def revoked_at(self) -> str | None: ...


class KeyStore(Protocol):
    """The key records auth uses (`relgate.store.Store.keys`)."""

    def create(self, *, key_hash: str, role: str, name: str, tenant: str, actor: str) -> Any: ...
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

    Resolved keys are cached for ``ttl_s`` seconds (at most ``max_keys`` of them, the oldest
    evicted first), so a busy caller costs one store query per ttl, and a key revoked elsewhere
    stops working here within ttl; ``forget`` drops a key at once. Unknown keys are not cached,
    so a key created a moment ago works.
    """

    def __init__(
        self,
        store: KeyStore,
        *,
        ttl_s: float = KEY_CACHE_TTL_S,
        max_keys: int = KEY_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl = ttl_s
        self._max = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def cached(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal | None:
        """The principal of a recently resolved key, without touching the store; None when the
        key is new, stale or missing (then call `authenticate`, which also raises the errors)."""
        try:
            digest = hash_key(bearer_key(metadata))
        except AuthError:
            return None
        with self._lock:
            hit = self._cache.get(digest)
            if hit is None or self._clock() - hit[0] > self._ttl:
                return None
            return hit[1]

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
        """The principal of the call's key. Blocking (may query the store)."""
        digest = hash_key(bearer_key(metadata))
        cached = self.cached(metadata)
        if cached is not None:
            return cached
        record = self._store.find(digest)
        if record is None:
            raise AuthError("unknown API key")
        if record.revoked_at is not None:
            self.forget(digest)
            raise AuthError(f"API key {record.name!r} was revoked at {record.revoked_at}")
        principal = Principal(
            key_sha256=digest, role=Role.parse(record.role), name=record.name, tenant=record.tenant
        )
        with self._lock:
            self._cache[digest] = (self._clock(), principal)
            self._cache.move_to_end(digest)
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return principal

    def forget(self, key_sha256: str) -> None:
        """Drop a key from the cache (it was just revoked)."""
        with self._lock:
            self._cache.pop(key_sha256, None)

    @staticmethod
    def authorize(principal: Principal, required: Role, tenant: str | None = None) -> None:
        """AuthError unless `principal` has at least `required` on `tenant`.

        Worker and gateway keys are outside the order: each opens exactly the methods that
        require its role, and those methods open to no other key.
        """
        outside = (Role.WORKER, Role.GATEWAY)
        if principal.role in outside or required in outside:
            allowed = principal.role is required
        else:
            allowed = principal.role >= required
        if not allowed:
            raise AuthError(f"role {principal.role.label} may not do this (needs {required.label})")
        if tenant is not None and not principal.may_act_on(tenant):
            raise AuthError(f"key of tenant {principal.tenant!r} may not act on {tenant!r}")


async def gateway_tenant(auth: Authenticator, request: HasHeaders, *, anonymous: str | None) -> str:
    """The tenant of a gateway request: its gateway key's (``Authorization: Bearer KEY``), or
    ``anonymous`` for a request without one (None: AuthError). Any other key is refused: a
    control-plane key does not serve traffic, and a gateway key opens nothing else."""
    header = request.headers.get("Authorization")
    if header is None:
        if anonymous is None:
            raise AuthError("send a gateway key: 'Authorization: Bearer <key of role gateway>'")
        return anonymous
    metadata = (("authorization", header),)
    principal = auth.cached(metadata)
    if principal is None:
        principal = await asyncio.to_thread(auth.authenticate, metadata)
    Authenticator.authorize(principal, Role.GATEWAY)
    return principal.tenant


class HasHeaders(Protocol):
    """An HTTP request (``aiohttp.web.Request``)."""

    @property
    def headers(self) -> Mapping[str, str]: ...


def issue_key(
    store: KeyStore, *, role: Role, name: str, tenant: str = DEFAULT_TENANT, actor: str
) -> tuple[str, Any]:
    """Create and store a key with its ``key_create`` receipt, made by ``actor``; returns the
    plaintext (the only time it exists) and the receipt."""
    if not name.strip():
        raise InvalidInputError("a key needs a non-empty name")
    key = new_key()
    receipt = store.create(
        key_hash=hash_key(key), role=role.label, name=name, tenant=tenant, actor=actor
    )
    return key, receipt


def create_key(
    store: KeyStore,
    *,
    role: Role,
    name: str,
    tenant: str = DEFAULT_TENANT,
    actor: str = "relgate",
) -> str:
    """`issue_key` for callers inside the deployment (the dashboard's own viewer key, bench
    workers, tests): the plaintext only."""
    return issue_key(store, role=role, name=name, tenant=tenant, actor=actor)[0]


def bootstrap_admin_key(store: KeyStore, data_dir: Path) -> Path | None:
    """On first start, write an operator key to DATA_DIR/admin.key (mode 0600).

    It is the deployment's first key: an operator of the default tenant, which can create the
    admin keys of every tenant (and should then be put away).

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
        store.create(
            key_hash=digest,
            role=Role.OPERATOR.label,
            name=BOOTSTRAP_KEY_NAME,
            tenant=DEFAULT_TENANT,
            actor="relgate:first-start",
        )
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
    "gateway_tenant",
    "hash_key",
    "issue_key",
    "new_key",
]
