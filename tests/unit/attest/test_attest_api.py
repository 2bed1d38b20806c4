"""relgate.attest through the public API, against an independent Python reference of the
tensor-merkle-blake3-v1 scheme (blake3-py, json, struct)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import blake3
import numpy as np
import pytest
import relgate
from relgate import intoto
from relgate.attest import Attestation, InclusionProof, load_attestation
from relgate.errors import IntegrityError, InvalidInputError, NotFoundError
from safetensors.numpy import save_file


def _h(b: bytes) -> bytes:
    return blake3.blake3(b).digest()


def _mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return d[0]
    k = 1
    while k * 2 < len(d):
        k *= 2
    return _h(b"\x01" + _mth(d[:k]) + _mth(d[k:]))


def reference_root(files: list[Path]) -> str:
    """The scheme, computed the obvious way from the files' own headers."""
    leaves = {}
    for path in files:
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        header.pop("__metadata__", None)
        for name, e in header.items():
            b, end = e["data_offsets"]
            data = raw[8 + n + b : 8 + n + end]
            obj = {
                "data_blake3": _h(data).hex(),
                "dtype": e["dtype"],
                "name": name,
                "shape": e["shape"],
            }
            # For these objects RFC 8785 is: sorted keys, no whitespace, UTF-8.
            jcs = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            leaves[name.encode()] = _h(b"\x00" + jcs.encode())
    return _mth([leaves[k] for k in sorted(leaves)]).hex()


def shard(tensors: dict[str, np.ndarray], out: Path, n: int, with_index: bool = True) -> None:
    out.mkdir()
    names = sorted(tensors, reverse=True)
    weight_map = {}
    for i in range(n):
        part = {k: tensors[k] for k in names[i::n]}
        fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        save_file(part, str(out / fname))
        weight_map.update(dict.fromkeys(part, fname))
    if with_index:
        (out / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))


def test_attestation_matches_reference_and_records_files(checkpoint: Path) -> None:
    assert relgate.attest(checkpoint).files[0].blake3 is None  # the tree alone by default
    att = relgate.attest(checkpoint, file_digests=True)
    assert att.scheme == "tensor-merkle-blake3-v1"
    assert att.root == reference_root([checkpoint])
    assert att.tensors == 7
    assert att.bytes == checkpoint.stat().st_size
    (f,) = att.files
    raw = checkpoint.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert f.path == "model.safetensors"
    assert f.blake3 == _h(raw).hex()
    assert f.header_blake3 == _h(raw[: 8 + n]).hex()
    assert [t.name for t in att.leaves] == sorted(t.name for t in att.leaves)
    assert att.tensor("scale").shape == ()
    assert att.tensor("layer.1.mask").dtype == "BOOL"
    with pytest.raises(NotFoundError):
        att.tensor("nope")


@pytest.mark.parametrize(("n", "with_index"), [(1, True), (2, True), (3, True), (3, False)])
def test_root_survives_resharding(
    tmp_path: Path, checkpoint: Path, tensors: dict[str, np.ndarray], n: int, with_index: bool
) -> None:
    out = tmp_path / "sharded"
    shard(tensors, out, n, with_index)
    att = relgate.attest(out)
    assert att.root == relgate.attest(checkpoint).root
    assert len(att.files) == n
    assert att.root == reference_root(sorted(out.glob("*.safetensors")))


@pytest.mark.parametrize(
    "change",
    ["data", "dtype", "shape", "name"],
)
def test_root_changes_with_any_tensor_field(
    tmp_path: Path, checkpoint: Path, tensors: dict[str, np.ndarray], change: str
) -> None:
    t = dict(tensors)
    w = t["layer.0.weight"]
    if change == "data":
        w = w.copy()
        w[3, 3] += 1
        t["layer.0.weight"] = w
    elif change == "dtype":
        t["layer.0.weight"] = w.view(np.uint64)
    elif change == "shape":
        t["layer.0.weight"] = w.reshape(4, 16)
    else:
        t["layer.0.weightt"] = t.pop("layer.0.weight")
    other = tmp_path / "other.safetensors"
    save_file(t, str(other))
    assert relgate.attest(other).root != relgate.attest(checkpoint).root


def test_dict_round_trip_and_tamper_detection(checkpoint: Path) -> None:
    att = relgate.attest(checkpoint)
    d = json.loads(json.dumps(att.to_dict()))
    assert d["root"] == att.root and d["tensors"] == 7 and len(d["files"]) == 1
    assert Attestation.from_dict(d) == att
    forged = json.loads(json.dumps(d))
    forged["leaves"][2]["data_blake3"] = "00" * 32
    with pytest.raises(IntegrityError) as err:
        Attestation.from_dict(forged)
    assert err.value.rule == "leaf"
    forged = json.loads(json.dumps(d))
    forged["root"] = "11" * 32
    with pytest.raises(IntegrityError) as err:
        Attestation.from_dict(forged)
    assert err.value.rule == "root"
    with pytest.raises(InvalidInputError):
        Attestation.from_dict({**d, "scheme": "other"})


def test_proofs(checkpoint: Path, tmp_path: Path) -> None:
    att = relgate.attest(checkpoint)
    assert att.root is not None
    for t in att.leaves:
        proof = att.prove(t.name)
        assert proof.leaf == t.leaf
        assert relgate.verify_inclusion(proof, att.root)
        assert relgate.verify_inclusion(proof.to_dict(), att.root)
        assert relgate.verify_tensor(checkpoint, t.name, proof, att.root)
        assert not relgate.verify_inclusion(proof, "ab" * 32)
    proof = att.prove("embed.weight")
    # Change another tensor's bytes: this tensor still checks out against the old root.
    raw = bytearray(checkpoint.read_bytes())
    other = att.tensor("layer.0.weight")
    raw[other.offset] ^= 0xFF
    tampered = tmp_path / "t.safetensors"
    tampered.write_bytes(bytes(raw))
    assert relgate.verify_tensor(tampered, "embed.weight", proof, att.root)
    assert not relgate.verify_tensor(
        tampered, "layer.0.weight", att.prove("layer.0.weight"), att.root
    )
    with pytest.raises(InvalidInputError):
        relgate.verify_tensor(checkpoint, "scale", proof, att.root)
    bad = proof.to_dict()
    bad["leaf"] = "00" * 32
    with pytest.raises(InvalidInputError):
        InclusionProof.from_dict(bad)


def test_verify_attestation_names_changed_tensors(checkpoint: Path, tmp_path: Path) -> None:
    att = relgate.attest(checkpoint)
    assert att.root is not None
    assert relgate.verify_attestation(checkpoint, att.root).ok
    raw = bytearray(checkpoint.read_bytes())
    raw[att.tensor("layer.0.bias").offset + 1] ^= 0x10
    tampered = tmp_path / "t.safetensors"
    tampered.write_bytes(bytes(raw))
    res = relgate.verify_attestation(tampered, att.root)
    assert not res.ok and res.differing == () and not res.reference_used
    ref_file = tmp_path / "att.json"
    ref_file.write_text(json.dumps(att.to_dict()))
    res = relgate.verify_attestation(tampered, att.root, reference=ref_file)
    assert not res.ok and res.reference_used
    assert res.changed == ("layer.0.bias",) and res.differing == ("layer.0.bias",)
    assert res.actual_root == relgate.attest(tampered).root
    # A reference of another root is not used to name anything.
    res = relgate.verify_attestation(tampered, "cd" * 32, reference=att)
    assert not res.ok and not res.reference_used and res.changed == ()
    with pytest.raises(InvalidInputError):
        relgate.verify_attestation(tampered, "not-hex")


def test_spot_check(checkpoint: Path, tmp_path: Path) -> None:
    att = relgate.attest(checkpoint)
    assert att.root is not None
    spot = relgate.attest(checkpoint, spot_check=3, seed=11)
    assert spot.root is None and not spot.complete and spot.seed == 11
    assert sum(t.leaf is not None for t in spot.leaves) == 3
    assert relgate.attest(checkpoint, spot_check=3, seed=11) == spot
    with pytest.raises(InvalidInputError):
        spot.prove("scale")
    res = relgate.verify_attestation(checkpoint, att.root, reference=att, spot_check=3)
    assert res.ok and res.checked == 3 and res.actual_root is None
    # Sampling every tensor of a tampered copy finds the change.
    raw = bytearray(checkpoint.read_bytes())
    raw[att.tensor("embed.weight").offset] ^= 1
    tampered = tmp_path / "t.safetensors"
    tampered.write_bytes(bytes(raw))
    res = relgate.verify_attestation(tampered, att.root, reference=att, spot_check=att.tensors)
    assert not res.ok and res.changed == ("embed.weight",)
    with pytest.raises(InvalidInputError):
        relgate.verify_attestation(checkpoint, att.root, spot_check=2)
    assert Attestation.from_dict(json.loads(json.dumps(spot.to_dict()))) == spot


def test_pickle_weights_are_reported_not_opened(checkpoint: Path) -> None:
    (checkpoint.parent / "pytorch_model.bin").write_bytes(b"\x80\x04 definitely not safe")
    att = relgate.attest(checkpoint.parent)
    assert att.unattested == ("pytorch_model.bin",)
    assert att.root == relgate.attest(checkpoint).root
    with pytest.raises(IntegrityError) as err:
        relgate.attest(checkpoint.parent / "pytorch_model.bin")
    assert err.value.rule == "not-attestable"


def test_in_toto_statement(checkpoint: Path, tmp_path: Path) -> None:
    att = relgate.attest(checkpoint, file_digests=True)
    st = intoto.statement(att, name="minilm")
    assert st["_type"] == "https://in-toto.io/Statement/v1"
    assert st["subject"][0] == {"name": "minilm", "digest": {"tensorMerkleBlake3V1": att.root}}
    assert st["subject"][1]["digest"] == {"blake3": att.files[0].blake3}
    assert st["predicateType"].startswith("https://relgate.dev/")
    assert st["predicate"] == att.to_dict()
    assert intoto.statement(att, digest_key="blake3")["subject"][0]["digest"] == {
        "blake3": att.root
    }
    path = tmp_path / "st.json"
    path.write_text(json.dumps(st))
    assert load_attestation(path) == att
    with pytest.raises(InvalidInputError):
        intoto.statement(relgate.attest(checkpoint, spot_check=1))
