"""Weight attestation: the ``tensor-merkle-blake3-v1`` identity of a checkpoint.

For every tensor of a checkpoint (one ``.safetensors`` file, a directory of them, or a
sharded checkpoint with ``model.safetensors.index.json``; one ``.gguf`` file or the shards of
a split GGUF model):

- ``data_blake3 = BLAKE3(raw data bytes)``;
- ``leaf = BLAKE3(0x00 || JCS({"data_blake3": hex, "dtype": dtype, "name": name,
  "shape": [ints]}))`` with JCS the RFC 8785 canonical JSON;
- leaves ordered by name (bytewise UTF-8), root = RFC 6962 Merkle tree hash with BLAKE3
  (node prefix 0x01, empty tree ``BLAKE3("")``).

For GGUF files ``dtype`` is the ggml type name as gguf-py spells it (``Q4_K``, ``F32``) and
``shape`` the dims in GGUF order (ne[0] first, as ``gguf-dump`` prints them).

The root does not change when the same tensors are re-sharded and changes when any data
byte, dtype, shape or name does. Header digests are recorded beside it, for GGUF files the
digest of the metadata (KV) section too (tokenizer, chat template: outside the root, compared
by :func:`verify_attestation` against a reference), and with ``file_digests=True`` per-file
BLAKE3 digests (what ``b3sum`` prints).

Every header is validated without trusting it; a malformed file raises
:class:`relgate.errors.IntegrityError` with ``path`` and a stable ``rule``. Pickle weights
(``.bin``, ``.pt``, ...) are reported as not attestable at tensor level and never opened.
The hashing runs in the Rust core, in parallel, with the GIL released.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relgate import _native, merkle
from relgate.errors import IntegrityError, InvalidInputError, NotFoundError

SCHEME = _native.ATTEST_SCHEME

PathLike = str | os.PathLike[str]

__all__ = [
    "SCHEME",
    "Attestation",
    "FileRecord",
    "InclusionProof",
    "TensorRecord",
    "VerifyResult",
    "attest",
    "load_attestation",
    "verify_attestation",
    "verify_inclusion",
    "verify_tensor",
]


def _hex32(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 64:
        raise InvalidInputError(f"{what} must be 64 hex characters, got {value!r}")
    try:
        bytes.fromhex(value)
    except ValueError:
        raise InvalidInputError(f"{what} must be 64 hex characters, got {value!r}") from None
    return value.lower()


def _leaf(name: str, dtype: str, shape: Sequence[int], data_blake3: str) -> str:
    return _native.attest_leaf_hash(name, dtype, list(shape), bytes.fromhex(data_blake3)).hex()


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One weight file: its path relative to the checkpoint, size, BLAKE3 of the whole file
    (``None`` when not computed), BLAKE3 of its header and, for GGUF, of its metadata (KV)
    section."""

    path: str
    bytes: int
    blake3: str | None
    header_blake3: str
    tensors: int
    metadata_blake3: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "path": self.path,
            "bytes": self.bytes,
            "blake3": self.blake3,
            "header_blake3": self.header_blake3,
            "tensors": self.tensors,
        }
        if self.metadata_blake3 is not None:
            d["metadata_blake3"] = self.metadata_blake3
        return d


@dataclass(frozen=True, slots=True)
class TensorRecord:
    """One tensor: where it lives and, unless a spot check skipped it, its digests."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: str
    offset: int
    bytes: int
    data_blake3: str | None
    leaf: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "file": self.file,
            "offset": self.offset,
            "bytes": self.bytes,
            "data_blake3": self.data_blake3,
            "leaf": self.leaf,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TensorRecord:
        data = d.get("data_blake3")
        return cls(
            name=str(d["name"]),
            dtype=str(d["dtype"]),
            shape=tuple(int(x) for x in d["shape"]),
            file=str(d.get("file", "")),
            offset=int(d.get("offset", 0)),
            bytes=int(d.get("bytes", 0)),
            data_blake3=None if data is None else _hex32(data, "data_blake3"),
            leaf=None if d.get("leaf") is None else _hex32(d["leaf"], "leaf"),
        )


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that one tensor (its name, dtype, shape and data digest) is a leaf of the
    tree with root ``root``: the leaf index, the tree size and the RFC 6962 audit path."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    data_blake3: str
    index: int
    tree_size: int
    path: tuple[str, ...]
    root: str
    scheme: str = SCHEME

    @property
    def leaf(self) -> str:
        """The leaf hash, recomputed from the tensor fields."""
        return _leaf(self.name, self.dtype, self.shape, self.data_blake3)

    def verify(self, root: str) -> bool:
        """True when this proof places its tensor under ``root``."""
        return merkle.verify_inclusion(
            bytes.fromhex(self.leaf),
            self.index,
            self.tree_size,
            [bytes.fromhex(h) for h in self.path],
            bytes.fromhex(_hex32(root, "root")),
            "blake3",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "root": self.root,
            "name": self.name,
            "dtype": self.dtype,
            "shape": list(self.shape),
            "data_blake3": self.data_blake3,
            "leaf": self.leaf,
            "index": self.index,
            "tree_size": self.tree_size,
            "path": list(self.path),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InclusionProof:
        """Parse a proof; a recorded ``leaf`` that the fields do not produce is refused."""
        if d.get("scheme", SCHEME) != SCHEME:
            raise InvalidInputError(f"unknown attestation scheme {d.get('scheme')!r}")
        try:
            proof = cls(
                name=str(d["name"]),
                dtype=str(d["dtype"]),
                shape=tuple(int(x) for x in d["shape"]),
                data_blake3=_hex32(d["data_blake3"], "data_blake3"),
                index=int(d["index"]),
                tree_size=int(d["tree_size"]),
                path=tuple(_hex32(h, "proof hash") for h in d["path"]),
                root=_hex32(d["root"], "root"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed inclusion proof: {exc!r}") from None
        if "leaf" in d and d["leaf"] != proof.leaf:
            raise InvalidInputError("the proof's leaf does not match its tensor fields")
        return proof


@dataclass(frozen=True, slots=True)
class Attestation:
    """The attestation of a checkpoint. ``root`` is ``None`` for a spot check, which hashes
    only a sample of the tensors (``leaves`` then carry digests for the sample only).

    ``tensor_bytes_hashed`` and ``files_from_cache`` say what this run did (read and hashed
    that many tensor bytes; took that many files' digests from the leaf cache); they are
    not part of the attestation's value, its dict or its equality."""

    root: str | None
    files: tuple[FileRecord, ...]
    leaves: tuple[TensorRecord, ...]
    bytes: int
    unattested: tuple[str, ...] = ()
    spot_check: int | None = None
    seed: int | None = None
    scheme: str = SCHEME
    tensor_bytes_hashed: int = field(default=0, compare=False)
    files_from_cache: int = field(default=0, compare=False)
    _by_name: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({t.name: i for i, t in enumerate(self.leaves)})

    @property
    def tensors(self) -> int:
        """Number of tensors in the checkpoint."""
        return len(self.leaves)

    @property
    def complete(self) -> bool:
        """True for a full attestation (every tensor hashed, root known)."""
        return self.root is not None

    def tensor(self, name: str) -> TensorRecord:
        """The record of tensor ``name`` (:class:`NotFoundError` if there is none)."""
        try:
            return self.leaves[self._by_name[name]]
        except KeyError:
            raise NotFoundError(f"no tensor named {name!r}") from None

    def prove(self, name: str) -> InclusionProof:
        """Inclusion proof of tensor ``name``; needs a full attestation."""
        record = self.tensor(name)
        if self.root is None or record.data_blake3 is None:
            raise InvalidInputError("a spot check does not know every leaf; attest fully")
        leaves = [bytes.fromhex(t.leaf or "") for t in self.leaves]
        index = self._by_name[name]
        path = merkle.inclusion_proof(leaves, index, "blake3")
        return InclusionProof(
            name=record.name,
            dtype=record.dtype,
            shape=record.shape,
            data_blake3=record.data_blake3,
            index=index,
            tree_size=len(leaves),
            path=tuple(h.hex() for h in path),
            root=self.root,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; :meth:`from_dict` reads it back."""
        d: dict[str, Any] = {
            "scheme": self.scheme,
            "root": self.root,
            "tensors": self.tensors,
            "bytes": self.bytes,
            "files": [f.to_dict() for f in self.files],
            "leaves": [t.to_dict() for t in self.leaves],
            "unattested": list(self.unattested),
        }
        if self.spot_check is not None:
            d["spot_check"] = {"k": self.spot_check, "seed": self.seed}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Attestation:
        """Read an attestation back, trusting nothing: every leaf is recomputed from its
        fields and the root from the leaves; a mismatch is an :class:`IntegrityError`."""
        if d.get("scheme") != SCHEME:
            raise InvalidInputError(f"unknown attestation scheme {d.get('scheme')!r}")
        try:
            leaves = tuple(TensorRecord.from_dict(t) for t in d["leaves"])
            files = tuple(
                FileRecord(
                    path=str(f["path"]),
                    bytes=int(f["bytes"]),
                    blake3=None if f.get("blake3") is None else _hex32(f["blake3"], "blake3"),
                    header_blake3=_hex32(f["header_blake3"], "header_blake3"),
                    tensors=int(f["tensors"]),
                    metadata_blake3=None
                    if f.get("metadata_blake3") is None
                    else _hex32(f["metadata_blake3"], "metadata_blake3"),
                )
                for f in d["files"]
            )
            root = None if d.get("root") is None else _hex32(d["root"], "root")
            spot = d.get("spot_check") or {}
            att = cls(
                root=root,
                files=files,
                leaves=leaves,
                bytes=int(d["bytes"]),
                unattested=tuple(str(u) for u in d.get("unattested", ())),
                spot_check=None if not spot else int(spot["k"]),
                seed=None if not spot else int(spot["seed"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed attestation: {exc!r}") from None
        names = [t.name.encode() for t in leaves]
        if names != sorted(names) or len(set(names)) != len(names):
            raise IntegrityError("attestation leaves are not sorted unique names", rule="order")
        for t in leaves:
            if t.data_blake3 is not None:
                want = _leaf(t.name, t.dtype, t.shape, t.data_blake3)
                if t.leaf != want:
                    raise IntegrityError(
                        f"leaf of {t.name!r} does not match its fields",
                        rule="leaf",
                        expected=want,
                        actual=t.leaf,
                    )
        if root is not None:
            if any(t.leaf is None for t in leaves):
                raise IntegrityError("a root without every leaf", rule="root")
            actual = merkle.root([bytes.fromhex(t.leaf or "") for t in leaves], "blake3").hex()
            if actual != root:
                raise IntegrityError(
                    "root does not match the leaves", rule="root", expected=root, actual=actual
                )
        return att


def _from_native(d: Mapping[str, Any], spot_check: int | None, seed: int | None) -> Attestation:
    return Attestation(
        root=d["root"],
        files=tuple(FileRecord(**f) for f in d["files"]),
        leaves=tuple(TensorRecord(**{**t, "shape": tuple(t["shape"])}) for t in d["tensors"]),
        bytes=d["bytes"],
        unattested=tuple(d["unattested"]),
        spot_check=spot_check,
        seed=seed,
        tensor_bytes_hashed=d["tensor_bytes_hashed"],
        files_from_cache=d["files_from_cache"],
    )


def attest(
    path: PathLike,
    *,
    spot_check: int | None = None,
    seed: int | None = None,
    file_digests: bool = False,
    cache_dir: PathLike | None = None,
) -> Attestation:
    """Attest the checkpoint at ``path`` (a ``.safetensors`` file, a directory, an index, a
    ``.gguf`` file or a directory holding one GGUF model).

    ``spot_check=k`` validates every header but hashes only ``k`` randomly chosen tensors
    (``seed`` makes the choice reproducible; a random one is drawn and recorded otherwise):
    a partial attestation without a root, for :func:`verify_attestation` against a trusted
    full one. A spot check always hashes the bytes on disk, never the cache.
    ``file_digests=True`` adds the whole-file BLAKE3 digests (what an in-toto export lists),
    which cost a second hash of every byte.

    ``cache_dir`` is a leaf-cache directory shared by any number of processes: a file whose
    (device, inode, size, mtime, ctime, header) did not change since it was last attested
    has its tensor digests taken from there and its data not read. A change that leaves all
    of those as they were (e.g. a write through a mapping into an already dirty page) is
    not seen through the cache; ``cache_dir=None`` (the default) hashes every byte. Files
    modified less than 2 s before they are attested are not recorded (a later write could
    share their timestamp). Whoever can write the cache directory can choose the digests
    it reports: give it the permissions of the attestations.
    """
    if spot_check is not None:
        if spot_check < 0:
            raise InvalidInputError(f"spot_check must be >= 0, got {spot_check}")
        if seed is None:
            seed = secrets.randbits(63)
    if seed is not None and not 0 <= seed < 2**64:
        raise InvalidInputError(f"seed must be in [0, 2**64), got {seed}")
    d = _native.attest_checkpoint(
        os.fspath(path),
        file_digests and spot_check is None,
        spot_check,
        seed or 0,
        None if cache_dir is None else os.fspath(cache_dir),
    )
    return _from_native(d, spot_check, seed if spot_check is not None else None)


def load_attestation(source: PathLike | Mapping[str, Any] | Attestation) -> Attestation:
    """An attestation from a JSON file, an in-toto Statement file, a dict, or as is."""
    if isinstance(source, Attestation):
        return source
    if isinstance(source, Mapping):
        d: Mapping[str, Any] = source
    else:
        try:
            d = json.loads(Path(source).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{os.fspath(source)}: not JSON: {exc}") from None
    if not isinstance(d, Mapping):
        raise InvalidInputError("an attestation is a JSON object")
    if "predicate" in d and isinstance(d["predicate"], Mapping):
        d = d["predicate"]  # an in-toto Statement wrapping one
    return Attestation.from_dict(d)


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of :func:`verify_attestation`.

    ``changed`` / ``missing`` / ``added`` name the tensors that differ from the reference
    (empty without a usable reference). ``reference_used`` is False when no reference was
    given or its root is not the expected one (then it cannot name anything safely).
    ``metadata_changed`` names the GGUF files whose metadata (tokenizer, chat template...)
    differs from the reference's: outside the root, so only a reference can show it.
    """

    ok: bool
    expected_root: str
    actual_root: str | None
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    reference_used: bool = False
    checked: int = 0
    spot_check: int | None = None
    metadata_changed: tuple[str, ...] = ()

    @property
    def differing(self) -> tuple[str, ...]:
        """All tensor names that differ, sorted."""
        return tuple(sorted({*self.changed, *self.missing, *self.added}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "expected_root": self.expected_root,
            "actual_root": self.actual_root,
            "changed": list(self.changed),
            "missing": list(self.missing),
            "added": list(self.added),
            "reference_used": self.reference_used,
            "checked": self.checked,
            "spot_check": self.spot_check,
            "metadata_changed": list(self.metadata_changed),
        }


def _diff(
    actual: Attestation, reference: Attestation, *, sampled_only: bool
) -> tuple[list[str], list[str], list[str]]:
    ref = {t.name: t for t in reference.leaves}
    got = {t.name: t for t in actual.leaves}
    missing = sorted(ref.keys() - got.keys())
    added = sorted(got.keys() - ref.keys())
    changed = []
    for name in sorted(ref.keys() & got.keys()):
        a, r = got[name], ref[name]
        shape_differs = (a.dtype, a.shape) != (r.dtype, r.shape)
        # A tensor a spot check did not hash is only "changed" in a full comparison.
        data_differs = a.leaf != r.leaf if a.leaf is not None else not sampled_only
        if shape_differs or data_differs:
            changed.append(name)
    return changed, missing, added


def _metadata_changed(actual: Attestation, reference: Attestation) -> list[str]:
    """Files whose metadata digest the reference records and the checkpoint does not match."""
    got = {f.path: f.metadata_blake3 for f in actual.files}
    return sorted(
        f.path
        for f in reference.files
        if f.metadata_blake3 is not None and got.get(f.path) != f.metadata_blake3
    )


def verify_attestation(
    path: PathLike,
    root: str,
    *,
    reference: PathLike | Mapping[str, Any] | Attestation | None = None,
    spot_check: int | None = None,
    seed: int | None = None,
) -> VerifyResult:
    """Check that the checkpoint at ``path`` has the expected ``root``.

    With a ``reference`` attestation (file, dict or value) whose root is ``root``, the
    result also names the tensors that differ, and the GGUF metadata (tokenizer, chat
    template) is compared with the reference's: a different one fails verification even
    with the same root. With ``spot_check=k`` (reference required) only ``k`` random
    tensors are hashed and compared with the reference's leaves, plus every tensor's name,
    dtype and shape: a fast probabilistic re-attestation.
    """
    root = _hex32(root, "root")
    ref = None if reference is None else load_attestation(reference)
    usable = ref if ref is not None and ref.root == root else None
    if spot_check is not None:
        if usable is None:
            raise InvalidInputError(
                "a spot check needs a reference attestation whose root is the expected one"
            )
        att = attest(path, spot_check=spot_check, seed=seed)
        changed, missing, added = _diff(att, usable, sampled_only=True)
        meta = _metadata_changed(att, usable)
        return VerifyResult(
            ok=not (changed or missing or added or meta),
            expected_root=root,
            actual_root=None,
            changed=tuple(changed),
            missing=tuple(missing),
            added=tuple(added),
            reference_used=True,
            checked=sum(t.leaf is not None for t in att.leaves),
            spot_check=spot_check,
            metadata_changed=tuple(meta),
        )
    att = attest(path, file_digests=False)
    ok = att.root == root
    changed, missing, added = [], [], []
    if not ok and usable is not None:
        changed, missing, added = _diff(att, usable, sampled_only=False)
    meta = [] if usable is None else _metadata_changed(att, usable)
    return VerifyResult(
        ok=ok and not meta,
        expected_root=root,
        actual_root=att.root,
        changed=tuple(changed),
        missing=tuple(missing),
        added=tuple(added),
        reference_used=usable is not None,
        checked=att.tensors,
        metadata_changed=tuple(meta),
    )


def verify_inclusion(proof: InclusionProof | Mapping[str, Any], root: str) -> bool:
    """True when ``proof`` shows its tensor under ``root`` (no file is read)."""
    p = proof if isinstance(proof, InclusionProof) else InclusionProof.from_dict(proof)
    return p.verify(root)


def verify_tensor(
    path: PathLike, name: str, proof: InclusionProof | Mapping[str, Any], root: str
) -> bool:
    """Check tensor ``name`` of the checkpoint at ``path`` against ``proof`` and ``root``.

    Validates the headers and hashes that one tensor's bytes only (the rest of the data is
    never read). False when its bytes, dtype or shape differ from the proof or the proof
    does not lead to ``root``.
    """
    p = proof if isinstance(proof, InclusionProof) else InclusionProof.from_dict(proof)
    if p.name != name:
        raise InvalidInputError(f"the proof is for tensor {p.name!r}, not {name!r}")
    d = _native.attest_tensor_digest(os.fspath(path), name)
    same = (d["dtype"], tuple(d["shape"]), d["data_blake3"]) == (p.dtype, p.shape, p.data_blake3)
    return same and p.verify(root)
