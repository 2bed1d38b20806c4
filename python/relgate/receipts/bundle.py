"""Receipt bundles: assemble one from stored rows (docs/design.md §6).

The bundle's format is described in ``relgate.receipts.document``; verifying one against
trust the verifier holds is ``relgate.receipts.verify`` (``verify_bundle``, re-exported here).
The exporter writes format v2: the newest head over every receipt (the stored one when it
covers exactly these receipts, else a fresh one the caller stores), every stored head an
exported anchor names, the ``MAX_OLD_HEADS`` most recent other heads, a consistency proof
between each pair of consecutive heads, and the ``MAX_ANCHORS`` most recent anchor records.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

from relgate.receipts.chain import REASONS, BrokenLink
from relgate.receipts.document import BUNDLE_FORMAT, Limits
from relgate.receipts.tree import MerkleLevels, SignedTreeHead, TreeHeadSigner, leaf_hashes
from relgate.receipts.verify import BundleReport, verify_bundle

__all__ = [
    "BUNDLE_FORMAT",
    "MAX_ANCHORS",
    "MAX_OLD_HEADS",
    "REASONS",
    "BrokenLink",
    "BundleReport",
    "Limits",
    "assemble_bundle",
    "verify_bundle",
]

#: Older signed heads carried besides the anchored ones (most recent first).
MAX_OLD_HEADS = 32
#: Anchor records carried (most recent); every head they name travels with them.
MAX_ANCHORS = 256


# ---- export ---------------------------------------------------------------------------------


def assemble_bundle(
    *,
    tenant: str,
    rows: Sequence[tuple[int, str, str]],
    signer: TreeHeadSigner,
    stored_heads: Sequence[dict[str, Any]],
    anchors: Sequence[dict[str, Any]],
    timestamp: str,
    inclusion_proofs: bool = True,
) -> tuple[dict[str, Any], SignedTreeHead | None]:
    """The bundle for ``rows`` (``(seq, receipt_sha256, canonical body)`` in chain order),
    and the tree head it had to sign, if any (the caller stores it)."""
    shas = [sha for _seq, sha, _body in rows]
    levels = MerkleLevels(leaf_hashes(shas))
    root_hex = levels.root().hex()
    current = [
        h
        for h in stored_heads
        if (h["tree_size"], h["root_hex"], h["public_key_b64"])
        == (len(shas), root_hex, signer.public_key_b64)
    ]
    fresh = None
    if current:
        head = SignedTreeHead.from_dict(current[-1])
    else:
        head = fresh = signer.sign(
            tenant=tenant, tree_size=len(shas), root_hex=root_hex, timestamp=timestamp
        )

    receipts = []
    for index, (seq, sha, body) in enumerate(rows):
        entry = json.loads(body)
        entry["receipt_sha256"] = sha
        entry["seq"] = seq
        if inclusion_proofs:
            entry["inclusion_proof"] = b"".join(levels.inclusion_proof(index)).hex()
        receipts.append(entry)

    kept_anchors = [dict(a) for a in anchors if a["tree_size"] <= head.tree_size][-MAX_ANCHORS:]
    heads = _older_heads(
        stored_heads, head, {(a["tree_size"], a["root_hex"]) for a in kept_anchors}
    )
    heads.append(head.to_dict())
    # One proof per pair of consecutive sizes (RFC 6962 2.1.2), from this tree's leaves: a
    # stored head that is not a prefix of it gets a proof that fails, as it should.
    sizes = sorted({h["tree_size"] for h in heads} - {0})
    consistency = [
        {
            "old_size": old,
            "new_size": new,
            "proof": b"".join(levels.consistency_proof(old, new)).hex(),
        }
        for old, new in itertools.pairwise(sizes)
    ]
    bundle = {
        "format": BUNDLE_FORMAT,
        "tenant": tenant,
        "exported_at": timestamp,
        "public_key_b64": signer.public_key_b64,
        "leaf": "sha256(0x00 || bytes.fromhex(receipt_sha256)); RFC 6962 tree in seq order",
        "receipts": receipts,
        "tree_heads": heads,
        "consistency_proofs": consistency,
        "anchors": kept_anchors,
    }
    return bundle, fresh


def _older_heads(
    stored: Sequence[dict[str, Any]], final: SignedTreeHead, anchored: set[tuple[int, str]]
) -> list[dict[str, Any]]:
    """Stored heads to carry besides ``final``, ascending by size: every head of an anchored
    (size, root) (a TSA token covers one head's exact bytes), and the most recent head of
    each of the ``MAX_OLD_HEADS`` most recent other states. Heads beyond ``final``'s size
    cannot be of this tree and are left out."""
    chosen: list[dict[str, Any]] = []
    recent: set[tuple[int, str]] = set()
    taken = {tuple(sorted(final.to_dict().items()))}
    for h in reversed(stored):
        state = (h["tree_size"], h["root_hex"])
        exact = tuple(sorted(h.items()))
        if h["tree_size"] > final.tree_size or exact in taken:
            continue
        if state in anchored:
            chosen.append(dict(h))
            taken.add(exact)
        elif (
            state not in recent
            and state != (final.tree_size, final.root_hex)
            and len(recent) < MAX_OLD_HEADS
        ):
            recent.add(state)
            chosen.append(dict(h))
            taken.add(exact)
    chosen.sort(key=lambda h: (h["tree_size"], h["timestamp"]))
    return chosen
