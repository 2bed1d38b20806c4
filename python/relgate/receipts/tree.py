"""The receipts' Merkle tree (RFC 6962, SHA-256) and its signed tree heads (Ed25519).

Leaf ``i`` of a tenant's tree is ``H(0x00 || receipt_sha256 bytes)`` for the tenant's receipt
with ``seq == i``: the receipt sha already commits to the whole body, so a single receipt can be
checked against a tree head from its sha and inclusion proof alone.

A signed tree head (STH) signs the canonical JSON of ``{"kind": "relgate.tree_head.v1",
"algo": "sha256", "tenant", "tree_size", "root_hex", "timestamp"}`` with the deployment's
Ed25519 key, kept at ``DATA_DIR/receipt_signing.key`` (PKCS#8 PEM, created on first use with
mode 0600; a key readable by group or others is refused).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from relgate import merkle
from relgate.canonical import canonical_json
from relgate.errors import IntegrityError, InvalidInputError

__all__ = [
    "KEY_FILE",
    "TREE_HEAD_KIND",
    "MerkleLevels",
    "SignedTreeHead",
    "TreeHeadSigner",
    "leaf_hashes",
]

KEY_FILE = "receipt_signing.key"
TREE_HEAD_KIND = "relgate.tree_head.v1"


def leaf_hashes(receipt_shas: Sequence[str]) -> list[bytes]:
    """Leaf hashes of receipts given by their hex ``receipt_sha256`` (in Rust, in parallel)."""
    try:
        raw = [bytes.fromhex(s) for s in receipt_shas]
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"receipt_sha256 is not hex: {exc}") from exc
    return merkle.leaf_hashes_sha256(raw)


class MerkleLevels:
    """Every level of the RFC 6962 tree over ``leaves``, built bottom-up.

    Building bottom-up and carrying a level's odd last node up unchanged gives exactly the
    RFC 6962 tree (which splits at the largest power of two), so all inclusion proofs and
    every prefix root come out of one O(n) pass instead of O(n) per proof.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        level = list(leaves)
        self.levels: list[list[bytes]] = [level]
        while len(level) > 1:
            nxt = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self.levels.append(nxt)
            level = nxt

    def root(self) -> bytes:
        """The Merkle Tree Hash of all leaves (``H("")`` for none)."""
        return self.levels[-1][0] if self.size else merkle.root([])

    def prefix_root(self, size: int) -> bytes:
        """The Merkle Tree Hash of the first ``size`` leaves, in O(log n).

        The first ``size`` leaves split into perfect subtrees, one per set bit of ``size``
        from the largest; each is a node of these levels, and RFC 6962 folds them from the
        right.
        """
        if not 0 <= size <= self.size:
            raise InvalidInputError(f"tree size {size} outside 0..{self.size}")
        if size == 0:
            return merkle.root([])
        return self._range_root(0, size)

    def _range_root(self, start: int, end: int) -> bytes:
        """MTH of leaves ``start..end`` where ``start`` is a multiple of a power of two at
        least ``end - start`` (every range RFC 6962's recursion asks for is)."""
        parts: list[bytes] = []
        length = end - start
        for height in range(length.bit_length() - 1, -1, -1):
            if length & (1 << height):
                parts.append(self.levels[height][start >> height])
                start += 1 << height
        acc = parts[-1]
        for part in reversed(parts[:-1]):
            acc = _node(part, acc)
        return acc

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 6962 (section 2.1.2) consistency proof between the trees of the first
        ``old_size`` and ``new_size`` leaves, in O(log^2 n) from these levels (empty when
        ``old_size`` is 0 or equals ``new_size``)."""
        if not 0 <= old_size <= new_size <= self.size:
            raise InvalidInputError(
                f"consistency proof {old_size} -> {new_size} outside the tree of {self.size}"
            )
        if old_size in (0, new_size):
            return []
        # SUBPROOF(m, D[start:start+n], whole), unrolled: each step appends the sibling it
        # will end with; the items come out deepest first.
        tail: list[bytes] = []
        start, n, m, whole = 0, new_size, old_size, True
        while m != n:
            k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two below n
            if m <= k:
                tail.append(self._range_root(start + k, start + n))
                n = k
            else:
                tail.append(self._range_root(start, start + k))
                start, n, m, whole = start + k, n - k, m - k, False
        if not whole:
            tail.append(self._range_root(start, start + m))
        return tail[::-1]

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The RFC 6962 audit path of leaf ``index`` in the full tree."""
        if not 0 <= index < self.size:
            raise InvalidInputError(f"leaf {index} outside the tree of {self.size}")
        proof = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    """A tree head of one tenant's receipt tree, signed with Ed25519."""

    tenant: str
    tree_size: int
    root_hex: str
    timestamp: str
    signature_b64: str
    public_key_b64: str

    def message(self) -> bytes:
        """The signed bytes: canonical JSON of the head without signature and key."""
        return tree_head_message(
            tenant=self.tenant,
            tree_size=self.tree_size,
            root_hex=self.root_hex,
            timestamp=self.timestamp,
        )

    def verify(self, public_key_b64: str | None = None) -> bool:
        """True when the signature checks out under ``public_key_b64`` (default: the key the
        head names, which only proves self-consistency: pin the key to trust it)."""
        try:
            key = Ed25519PublicKey.from_public_bytes(
                base64.b64decode(public_key_b64 or self.public_key_b64, validate=True)
            )
            key.verify(base64.b64decode(self.signature_b64, validate=True), self.message())
        except (InvalidSignature, ValueError, binascii.Error):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SignedTreeHead:
        """Rebuild from ``to_dict()``; ``InvalidInputError`` on missing or mistyped fields."""
        try:
            head = cls(**{k: data[k] for k in cls.__slots__})
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"tree head lacks field {exc}") from exc
        if not isinstance(head.tree_size, int) or isinstance(head.tree_size, bool):
            raise InvalidInputError("tree head tree_size must be an integer")
        if head.tree_size < 0:
            raise InvalidInputError("tree head tree_size must not be negative")
        for name in ("tenant", "root_hex", "timestamp", "signature_b64", "public_key_b64"):
            if not isinstance(getattr(head, name), str):
                raise InvalidInputError(f"tree head {name} must be a string")
        return head


def tree_head_message(*, tenant: str, tree_size: int, root_hex: str, timestamp: str) -> bytes:
    """The bytes an STH signature covers."""
    return canonical_json(
        {
            "kind": TREE_HEAD_KIND,
            "algo": "sha256",
            "tenant": tenant,
            "tree_size": tree_size,
            "root_hex": root_hex,
            "timestamp": timestamp,
        }
    )


class TreeHeadSigner:
    """The deployment's Ed25519 tree-head key at ``DATA_DIR/receipt_signing.key``, created on
    first use with mode 0600 (atomically: concurrent first uses agree on one key)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / KEY_FILE
        self._key = _load_or_create(self.path)
        raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key_b64 = base64.b64encode(raw).decode("ascii")

    def sign(self, *, tenant: str, tree_size: int, root_hex: str, timestamp: str) -> SignedTreeHead:
        """Sign a tree head."""
        message = tree_head_message(
            tenant=tenant, tree_size=tree_size, root_hex=root_hex, timestamp=timestamp
        )
        signature = base64.b64encode(self._key.sign(message)).decode("ascii")
        return SignedTreeHead(
            tenant=tenant,
            tree_size=tree_size,
            root_hex=root_hex,
            timestamp=timestamp,
            signature_b64=signature,
            public_key_b64=self.public_key_b64,
        )


def _load_or_create(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        _create_key(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise IntegrityError(
            f"signing key {path} is readable by others (mode {mode:o}); chmod 600 it",
            path=str(path),
            rule="signing_key_permissions",
            expected="600",
            actual=f"{mode:o}",
        )
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise IntegrityError(
            f"{path} does not hold an Ed25519 private key", path=str(path), rule="signing_key_type"
        )
    return loaded


def _create_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{id(key)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() fails if the key exists, so two first starts cannot overwrite each other.
        os.link(tmp, path)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
    finally:
        tmp.unlink()
