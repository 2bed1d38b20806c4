"""Store values to API messages."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING

from relgate._proto.relgate.v1 import common_pb2, release_pb2
from relgate.canonical import canonical_json

if TYPE_CHECKING:
    from relgate.receipts.model import Receipt
    from relgate.store.records import StoredRelease


def timestamp(value: object) -> str:
    """RFC 3339 text for a datetime (UTC when naive) or a value that already is text."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value.isoformat()
    return str(value)


def receipt_pb(receipt: Receipt) -> common_pb2.Receipt:
    """A receipt as sent to clients; evidence as canonical JSON, exactly as hashed."""
    return common_pb2.Receipt(
        kind=receipt.kind,
        tenant=receipt.tenant,
        release_sha256=receipt.release_sha256,
        evidence_json=canonical_json(receipt.evidence).decode("utf-8"),
        actor=receipt.actor,
        reason=receipt.reason,
        time=timestamp(receipt.time),
        prev_receipt_sha256=receipt.prev_receipt_sha256 or "",
        prev_release_receipt_sha256=receipt.prev_release_receipt_sha256 or "",
        receipt_sha256=receipt.receipt_sha256,
        seq=receipt.seq,
    )


def release_pb(stored: StoredRelease) -> release_pb2.Release:
    """A stored release as sent to clients: the canonical manifest plus its metadata."""
    manifest = stored.manifest
    return release_pb2.Release(
        sha256=stored.sha256,
        release_id=stored.release_id,
        manifest_json=manifest.canonical_bytes().decode("utf-8"),
        tenant=stored.tenant,
        actor=stored.actor,
        created_at=timestamp(stored.created_at),
        previous_release=manifest.previous_release or "",
    )
