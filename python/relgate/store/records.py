"""Values the store hands out (frozen dataclasses; rows never change, so neither do these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from relgate.manifest import ReleaseManifest
from relgate.receipts.model import Receipt

__all__ = ["ApiKey", "RegisterResult", "StoredFact", "StoredRelease"]


@dataclass(frozen=True, slots=True)
class StoredRelease:
    """A registered release: the manifest plus who registered it, where and when (RFC 3339)."""

    sha256: str
    release_id: str
    manifest: ReleaseManifest
    tenant: str
    actor: str
    created_at: str


@dataclass(frozen=True, slots=True)
class RegisterResult:
    """``created`` is False when the same content was registered before; ``receipt`` is then
    the original register receipt (no second one is written)."""

    release: StoredRelease
    created: bool
    receipt: Receipt


@dataclass(frozen=True, slots=True)
class StoredFact:
    """One append-only state row about a release, written in the same transaction as the
    receipt that records the decision behind it. ``kind`` says what the payload is: a gate
    result, an override, or a rollout's own fact (``relgate.rollout.status.Fact``, stored under
    kind ``rollout_fact``)."""

    seq: int
    release_sha: str
    kind: str
    payload: dict[str, Any]
    receipt_sha256: str
    created_at: str


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key, stored by hash only (``role`` is a ``relgate.access.Role`` label), and its
    revocation when it has one."""

    key_hash: str
    role: str
    name: str
    tenant: str
    created_at: str
    revoked_at: str | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key was revoked (it then opens nothing)."""
        return self.revoked_at is not None
