"""RFC 6962 Merkle trees (Certificate Transparency) over SHA-256 or BLAKE3.

Leaves are ``H(0x00 || data)``, interior nodes ``H(0x01 || left || right)``, a tree of
``n > 1`` leaves splits at the largest power of two below ``n`` and the empty tree hashes to
``H("")``. Inclusion and consistency proofs are those of RFC 6962 section 2.1; verification
follows RFC 9162. The work runs in the Rust core with the GIL released.

Hashes are 32-byte ``bytes``; ``algo`` is ``"sha256"`` (default) or ``"blake3"``. Bad
arguments (unknown algorithm, a hash that is not 32 bytes, an index outside the tree, a
negative size) raise :class:`relgate.errors.InvalidInputError`; a proof that does not check
out is ``False``, not an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from relgate import _native

Algo = Literal["sha256", "blake3"]

__all__ = [
    "Algo",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "leaf_hashes_sha256",
    "root",
    "verify_consistency",
    "verify_inclusion",
]


def leaf_hash(data: bytes, algo: Algo = "sha256") -> bytes:
    """``H(0x00 || data)``: the hash of one leaf record."""
    return _native.merkle_leaf_hash(data, algo)


def leaf_hashes_sha256(datas: Sequence[bytes]) -> list[bytes]:
    """SHA-256 leaf hashes of many records, computed in parallel in Rust without the GIL."""
    return _native.merkle_leaf_hashes(list(datas), "sha256")


def root(leaf_hashes: Sequence[bytes], algo: Algo = "sha256") -> bytes:
    """RFC 6962 Merkle Tree Hash over ``leaf_hashes`` (already leaf-hashed)."""
    return _native.merkle_root(list(leaf_hashes), algo)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, algo: Algo = "sha256") -> list[bytes]:
    """Audit path of leaf ``index``: sibling subtree hashes from the leaf up to the root."""
    return _native.merkle_inclusion_proof(list(leaf_hashes), index, algo)


def verify_inclusion(
    leaf_hash: bytes,
    index: int,
    tree_size: int,
    proof: Sequence[bytes],
    root: bytes,
    algo: Algo = "sha256",
) -> bool:
    """True when ``proof`` shows ``leaf_hash`` at ``index`` of the tree of ``tree_size``
    leaves whose hash is ``root``."""
    return _native.merkle_verify_inclusion(leaf_hash, index, tree_size, list(proof), root, algo)


def consistency_proof(
    leaf_hashes: Sequence[bytes], old_size: int, algo: Algo = "sha256"
) -> list[bytes]:
    """Proof that the tree of the first ``old_size`` leaves is a prefix of the whole tree
    (empty when ``old_size`` is 0 or the full size)."""
    return _native.merkle_consistency_proof(list(leaf_hashes), old_size, algo)


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
    algo: Algo = "sha256",
) -> bool:
    """True when ``proof`` shows the ``new_size`` tree (``new_root``) extends the
    ``old_size`` tree (``old_root``). An ``old_size`` of 0 needs an empty proof and the
    empty-tree hash as ``old_root``."""
    return _native.merkle_verify_consistency(
        old_size, new_size, old_root, new_root, list(proof), algo
    )
