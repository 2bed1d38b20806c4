"""Receipts: hash-chained records of every decision (docs/design.md §6).

- ``model``: the receipt value and its canonical body (``Receipt``, ``RECEIPT_KINDS``).
- ``tree``: the tenant's RFC 6962 Merkle tree over receipts and Ed25519 signed tree heads.
- ``bundle``: export a self-contained bundle and verify it offline.
"""

from __future__ import annotations

from relgate.receipts.bundle import (
    BUNDLE_FORMAT,
    REASONS,
    BrokenLink,
    BundleReport,
    verify_bundle,
)
from relgate.receipts.model import (
    BODY_FIELDS,
    RECEIPT_KINDS,
    Receipt,
    format_time,
    make_receipt,
    receipt_from_dict,
    weights_evidence,
)
from relgate.receipts.tree import (
    MerkleLevels,
    SignedTreeHead,
    TreeHeadSigner,
    leaf_hashes,
)

__all__ = [
    "BODY_FIELDS",
    "BUNDLE_FORMAT",
    "REASONS",
    "RECEIPT_KINDS",
    "BrokenLink",
    "BundleReport",
    "MerkleLevels",
    "Receipt",
    "SignedTreeHead",
    "TreeHeadSigner",
    "format_time",
    "leaf_hashes",
    "make_receipt",
    "receipt_from_dict",
    "verify_bundle",
    "weights_evidence",
]
