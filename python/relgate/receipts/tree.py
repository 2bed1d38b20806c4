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
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from relgate import _native, merkle
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
    """The RFC 6962 tree over ``leaves`` (SHA-256), built once with every level kept: all
    inclusion proofs, prefix roots and consistency proofs come out of one O(n) build.

    The tree is the Rust core's (``relgate._native.MerkleTree``, the same code that roots
    weight attestations, there with BLAKE3); this class fixes the hash to SHA-256 and maps its
    errors to ``InvalidInputError``.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._tree = _native.MerkleTree(list(leaves), "sha256")
        self.size = self._tree.size

    def root(self) -> bytes:
        """The Merkle Tree Hash of all leaves (``H("")`` for none)."""
        return self._tree.root()

    def prefix_root(self, size: int) -> bytes:
        """The Merkle Tree Hash of the first ``size`` leaves, in O(log n)."""
        if not 0 <= size <= self.size:
            raise InvalidInputError(f"tree size {size} outside 0..{self.size}")
        return self._tree.prefix_root(size)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 6962 (section 2.1.2) consistency proof between the trees of the first
        ``old_size`` and ``new_size`` leaves (empty when ``old_size`` is 0 or equals
        ``new_size``)."""
        if not 0 <= old_size <= new_size <= self.size:
            raise InvalidInputError(
                f"consistency proof {old_size} -> {new_size} outside the tree of {self.size}"
            )
        if old_size in (0, new_size):
            return []
        return self._tree.consistency_proof(old_size, new_size)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The RFC 6962 audit path of leaf ``index`` in the full tree."""
        if not 0 <= index < self.size:
            raise InvalidInputError(f"leaf {index} outside the tree of {self.size}")
        return self._tree.inclusion_proof(index)


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
