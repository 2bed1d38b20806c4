"""Receipts: hash-chained records of every decision (docs/design.md §6).

- ``model``: the receipt value and its canonical body (``Receipt``, ``RECEIPT_KINDS``).
- ``tree``: the tenant's RFC 6962 Merkle tree over receipts and Ed25519 signed tree heads.
- ``bundle``: export a self-contained bundle (``document``: its format, read with bounds).
- ``verify``: verify a bundle offline against trust the verifier holds: ``trust`` (pinned
  keys), ``witness`` (the last head it accepted), ``anchors`` (its anchor copies and TSA
  roots); ``chain`` holds the receipt-by-receipt checks.
"""

from __future__ import annotations

from relgate.receipts.anchors import AnchorCheck, AnchorPolicy
from relgate.receipts.bundle import (
    BUNDLE_FORMAT,
    REASONS,
    BrokenLink,
    BundleReport,
    verify_bundle,
)
from relgate.receipts.document import Limits
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
from relgate.receipts.trust import Trust, TrustedKey, key_fingerprint
from relgate.receipts.witness import WitnessState

__all__ = [
    "BODY_FIELDS",
    "BUNDLE_FORMAT",
    "REASONS",
    "RECEIPT_KINDS",
    "AnchorCheck",
    "AnchorPolicy",
    "BrokenLink",
    "BundleReport",
    "Limits",
    "MerkleLevels",
    "Receipt",
    "SignedTreeHead",
    "TreeHeadSigner",
    "Trust",
    "TrustedKey",
    "WitnessState",
    "format_time",
    "key_fingerprint",
    "leaf_hashes",
    "make_receipt",
    "receipt_from_dict",
    "verify_bundle",
    "weights_evidence",
]
