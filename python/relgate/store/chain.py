"""Appending to a tenant's receipt chain, inside a caller's transaction.

Every decision of the store (a registration, a gate or rollout decision, a key created or
revoked) appends its receipt here, so the chain has one writer and one rule: the next receipt
links the tenant's head and the release's last receipt, and gets the next ``seq``. Callers hold
the tenant's write lock (``Database.transaction(lock_key=tenant)``), so concurrent decisions
never fork a chain.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from relgate.receipts.model import Receipt, make_receipt
from relgate.store import schema

__all__ = ["append_receipt"]


def append_receipt(
    conn: Connection,
    *,
    kind: str,
    tenant: str,
    subject: str,
    evidence: dict[str, Any],
    actor: str,
    reason: str,
    now: str,
) -> Receipt:
    """Make the tenant's next receipt about ``subject`` (a release's sha256, or
    ``TENANT_SUBJECT``) and insert it; returns it."""
    r = schema.receipts.c
    head = conn.execute(
        sa.select(r.receipt_sha256, r.seq).where(r.tenant == tenant).order_by(r.seq.desc()).limit(1)
    ).one_or_none()
    subject_head = conn.execute(
        sa.select(r.receipt_sha256)
        .where(r.tenant == tenant, r.release_sha256 == subject)
        .order_by(r.seq.desc())
        .limit(1)
    ).scalar_one_or_none()
    receipt = make_receipt(
        kind=kind,
        tenant=tenant,
        release_sha256=subject,
        evidence=evidence,
        actor=actor,
        reason=reason,
        time=now,
        prev_receipt_sha256=head.receipt_sha256 if head is not None else None,
        prev_release_receipt_sha256=subject_head,
        seq=head.seq + 1 if head is not None else 0,
    )
    conn.execute(
        schema.receipts.insert().values(
            receipt_sha256=receipt.receipt_sha256,
            tenant=receipt.tenant,
            seq=receipt.seq,
            kind=receipt.kind,
            release_sha256=receipt.release_sha256,
            prev_receipt_sha256=receipt.prev_receipt_sha256 or schema.GENESIS,
            prev_release_receipt_sha256=receipt.prev_release_receipt_sha256 or schema.GENESIS,
            body=receipt.canonical_body().decode("utf-8"),
            created_at=now,
        )
    )
    return receipt
