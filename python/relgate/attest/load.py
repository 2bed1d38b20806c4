"""Verify on load: tensors read through ``safetensors`` (or gguf-py), each checked against
the registered root with its inclusion proof before it is handed over.

A tensor-parallel worker reads only its own tensors; it hashes exactly those bytes (the
buffer it is about to use, not a second read of the file) and checks each one's leaf
``(name, dtype, shape, BLAKE3(data))`` against the root with an RFC 6962 audit path. The
proofs come from the registered attestation (its leaves are re-checked against the root
once) or are given one by one (``relgate attest prove``). Nothing else of the checkpoint is
read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import blake3

from relgate import _native
from relgate.attest.core import (
    Attestation,
    InclusionProof,
    PathLike,
    _hex32,
    load_attestation,
)
from relgate.errors import IntegrityError, InvalidInputError, NotFoundError

__all__ = ["verified_tensors"]

# Tensors at least this large are hashed with all cores.
_THREADED_BYTES = 1 << 20


def _digest(buffer: Any) -> str:
    mv = memoryview(buffer).cast("B")
    threads = blake3.blake3.AUTO if mv.nbytes >= _THREADED_BYTES else 1
    return blake3.blake3(mv, max_threads=threads).hexdigest()


class _Proofs:
    """Inclusion proofs by tensor name, from given proofs or a trusted attestation."""

    def __init__(
        self,
        root: str,
        attestation: PathLike | Mapping[str, Any] | Attestation | None,
        proofs: Mapping[str, InclusionProof | Mapping[str, Any]] | None,
    ) -> None:
        self.root = root
        self.given = {
            n: p if isinstance(p, InclusionProof) else InclusionProof.from_dict(p)
            for n, p in (proofs or {}).items()
        }
        self.att: Attestation | None = None
        self.tree: Any = None
        if attestation is not None:
            att = load_attestation(attestation)  # recomputes every leaf and the root
            if att.root != root:
                raise IntegrityError(
                    "the attestation given is not the one of the expected root",
                    rule="root",
                    expected=root,
                    actual=att.root,
                )
            self.att = att
            self.tree = _native.MerkleTree(
                [bytes.fromhex(t.leaf or "") for t in att.leaves], "blake3"
            )
        elif not self.given:
            raise InvalidInputError("verified_tensors needs the registered attestation or proofs")

    def names(self) -> list[str]:
        if self.att is not None:
            return [t.name for t in self.att.leaves]
        return sorted(self.given)

    def get(self, name: str) -> InclusionProof:
        if name in self.given:
            return self.given[name]
        if self.att is None:
            raise NotFoundError(f"no inclusion proof for tensor {name!r}")
        t = self.att.tensor(name)  # NotFoundError: not in the registered checkpoint
        index = self.att._by_name[name]
        path = self.tree.inclusion_proof(index)
        return InclusionProof(
            name=t.name,
            dtype=t.dtype,
            shape=t.shape,
            data_blake3=t.data_blake3 or "",
            index=index,
            tree_size=self.att.tensors,
            path=tuple(bytes(h).hex() for h in path),
            root=self.root,
        )


def _check(
    name: str, dtype: str, shape: tuple[int, ...], data: str, proof: InclusionProof, root: str
) -> None:
    if proof.name != name:
        raise InvalidInputError(f"the proof is for tensor {proof.name!r}, not {name!r}")
    for what, got, want in (
        ("dtype", dtype, proof.dtype),
        ("shape", shape, proof.shape),
        ("data_blake3", data, proof.data_blake3),
    ):
        if got != want:
            raise IntegrityError(
                f"tensor {name!r} does not match the registered root: its {what} differs",
                rule="tensor",
                expected=str(want),
                actual=str(got),
            )
    if not proof.verify(root):
        raise IntegrityError(
            f"tensor {name!r}: its inclusion proof does not lead to the registered root",
            rule="inclusion",
            expected=root,
        )


def _safetensors_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".safetensors")
    if path.name.endswith(".index.json"):
        return sorted(p for p in path.parent.iterdir() if p.suffix == ".safetensors")
    return [path]


def verified_tensors(
    path: PathLike,
    *,
    root: str,
    attestation: PathLike | Mapping[str, Any] | Attestation | None = None,
    proofs: Mapping[str, InclusionProof | Mapping[str, Any]] | None = None,
    names: Iterable[str] | None = None,
    framework: str = "numpy",
) -> dict[str, Any]:
    """Load tensors ``names`` (default: every tensor of the registered checkpoint) from the
    checkpoint at ``path``, each verified against ``root`` before it is returned.

    Proofs come from ``proofs`` (name -> :class:`InclusionProof` or its dict) or are derived
    from ``attestation``, the registered attestation, whose leaves must reproduce ``root``.
    Safetensors files load with ``safetensors.safe_open`` (``framework`` as there: ``"numpy"``
    or ``"pt"``); a ``.gguf`` file loads with gguf-py (numpy arrays of the raw blocks, the
    bytes the leaf hashes). A tensor whose dtype, shape or bytes differ raises
    :class:`IntegrityError` naming it (rule ``tensor``), as does a proof that does not lead
    to ``root`` (rule ``inclusion``); a name neither the proofs nor the attestation know is
    :class:`NotFoundError`.
    """
    root = _hex32(root, "root")
    source = _Proofs(root, attestation, proofs)
    wanted = list(source.names() if names is None else names)
    p = Path(os.fspath(path))
    if p.suffix == ".gguf":
        return _gguf(p, wanted, source)
    from safetensors import safe_open

    out: dict[str, Any] = {}
    left = set(wanted)
    for file in _safetensors_files(p):
        if not left:
            break
        with safe_open(str(file), framework=framework) as f:
            for name in sorted(left & set(f.keys())):
                dtype = f.get_slice(name).get_dtype()
                tensor = f.get_tensor(name)
                raw = (
                    tensor.contiguous().view(-1).view(torch_uint8()).numpy()
                    if framework == "pt"
                    else tensor
                )
                _check(
                    name,
                    dtype,
                    tuple(int(x) for x in tensor.shape),
                    _digest(raw),
                    source.get(name),
                    root,
                )
                out[name] = tensor
                left.discard(name)
    if left:
        raise NotFoundError(f"no tensor named {sorted(left)[0]!r} in {p}")
    return {n: out[n] for n in wanted}


def torch_uint8() -> Any:
    import torch

    return torch.uint8


def _gguf(path: Path, wanted: list[str], source: _Proofs) -> dict[str, Any]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    out: dict[str, Any] = {}
    for name in wanted:
        t = by_name.get(name)
        if t is None:
            raise NotFoundError(f"no tensor named {name!r} in {path}")
        shape = tuple(int(x) for x in t.shape)
        _check(name, t.tensor_type.name, shape, _digest(t.data), source.get(name), source.root)
        out[name] = t.data
    return out
