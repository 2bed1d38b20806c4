"""Rows of the store's tables turned into the values it hands out."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relgate.errors import IntegrityError, RelgateError
from relgate.manifest import ReleaseManifest
from relgate.receipts.model import Receipt
from relgate.store import schema
from relgate.store.records import StoredRelease

__all__ = [
    "manifest_text",
    "parse_stored_manifest",
    "receipt_from_row",
    "stored_release",
    "tenant_release_row",
]


def tenant_release_row(conn: Connection, tenant: str, sha: str) -> sa.Row[Any] | None:
    """The tenant's release row (``tenant_releases``), or None."""
    tr = schema.tenant_releases.c
    return conn.execute(
        sa.select(schema.tenant_releases).where(tr.tenant == tenant, tr.sha256 == sha)
    ).one_or_none()


def manifest_text(conn: Connection, sha: str) -> str | None:
    """The stored canonical manifest with this content hash, or None."""
    text: str | None = conn.execute(
        sa.select(schema.releases.c.manifest).where(schema.releases.c.sha256 == sha)
    ).scalar_one_or_none()
    return text


def parse_stored_manifest(sha: str, text: str) -> ReleaseManifest:
    """A stored manifest, checked against the hash it is stored under."""
    try:
        manifest = ReleaseManifest.parse(text, fmt="json")
    except RelgateError as exc:
        raise IntegrityError(
            f"stored manifest of {sha} no longer validates: {exc}",
            rule="stored_manifest_invalid",
        ) from exc
    if manifest.sha256 != sha:
        raise IntegrityError(
            f"stored manifest of {sha} hashes to {manifest.sha256}: altered in the database",
            rule="stored_manifest_altered",
            expected=sha,
            actual=manifest.sha256,
        )
    return manifest


def stored_release(row: sa.Row[Any], manifest: str | None) -> StoredRelease:
    """A tenant's release from its ``tenant_releases`` row and the stored manifest text."""
    if manifest is None:
        raise IntegrityError(
            f"release {row.sha256} of tenant {row.tenant} has no stored manifest",
            rule="stored_manifest_missing",
        )
    return StoredRelease(
        sha256=row.sha256,
        release_id=row.release_id,
        manifest=parse_stored_manifest(row.sha256, manifest),
        tenant=row.tenant,
        actor=row.actor,
        created_at=row.created_at,
    )


def receipt_from_row(row: sa.Row[Any]) -> Receipt:
    body = json.loads(row.body)
    return Receipt(
        kind=body["kind"],
        tenant=body["tenant"],
        release_sha256=body["release_sha256"],
        evidence=body["evidence"],
        actor=body["actor"],
        reason=body["reason"],
        time=body["time"],
        prev_receipt_sha256=body["prev_receipt_sha256"],
        prev_release_receipt_sha256=body["prev_release_receipt_sha256"],
        receipt_sha256=row.receipt_sha256,
        seq=row.seq,
    )
