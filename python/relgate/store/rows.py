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

__all__ = ["receipt_from_row", "release_row", "stored_release"]


def release_row(conn: Connection, sha: str) -> sa.Row[Any] | None:
    return conn.execute(
        sa.select(schema.releases).where(schema.releases.c.sha256 == sha)
    ).one_or_none()


def stored_release(row: sa.Row[Any]) -> StoredRelease:
    try:
        manifest = ReleaseManifest.parse(row.manifest, fmt="json")
    except RelgateError as exc:
        raise IntegrityError(
            f"stored manifest of {row.sha256} no longer validates: {exc}",
            rule="stored_manifest_invalid",
        ) from exc
    if manifest.sha256 != row.sha256:
        raise IntegrityError(
            f"stored manifest of {row.sha256} hashes to {manifest.sha256}: altered in the database",
            rule="stored_manifest_altered",
            expected=row.sha256,
            actual=manifest.sha256,
        )
    return StoredRelease(
        sha256=row.sha256,
        release_id=row.release_id,
        manifest=manifest,
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
