"""The receipts' Merkle tree, the signing key and signed tree heads."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relgate import merkle
from relgate.app.receipts import sign_tree_head
from relgate.errors import IntegrityError, InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.receipts import (
    MerkleLevels,
    SignedTreeHead,
    TreeHeadSigner,
    leaf_hashes,
    make_receipt,
    receipt_from_dict,
)
from relgate.store import Store


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=300), st.data())
def test_levels_agree_with_the_rust_core(n: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    levels = MerkleLevels(leaves)
    assert levels.root() == merkle.root(leaves)
    size = data.draw(st.integers(min_value=0, max_value=n))
    assert levels.prefix_root(size) == merkle.root(leaves[:size])
    if n:
        index = data.draw(st.integers(min_value=0, max_value=n - 1))
        proof = levels.inclusion_proof(index)
        assert proof == merkle.inclusion_proof(leaves, index)
        assert merkle.verify_inclusion(leaves[index], index, n, proof, levels.root())


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=300), st.data())
def test_consistency_proofs_agree_with_the_rust_core(n: int, data: st.DataObject) -> None:
    """The exporter's O(log^2 n) proofs are RFC 6962's, and verify (RFC 9162)."""
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]
    levels = MerkleLevels(leaves)
    new = data.draw(st.integers(min_value=0, max_value=n))
    old = data.draw(st.integers(min_value=0, max_value=new))
    proof = levels.consistency_proof(old, new)
    assert proof == merkle.consistency_proof(leaves[:new], old)
    if old > 0:
        roots = levels.prefix_root(old), levels.prefix_root(new)
        assert merkle.verify_consistency(old, new, *roots, proof)
        if old < new:  # a proof for another old tree does not verify
            other = merkle.leaf_hash(b"x")
            assert not merkle.verify_consistency(old, new, other, roots[1], proof)
    for bad in ((0, n + 1), (n, n - 1), (-1, n)):  # beyond the tree, shrinking, negative
        with pytest.raises(InvalidInputError):
            levels.consistency_proof(*bad)


def test_levels_reject_out_of_range() -> None:
    levels = MerkleLevels([merkle.leaf_hash(b"x")])
    with pytest.raises(InvalidInputError):
        levels.prefix_root(2)
    with pytest.raises(InvalidInputError):
        levels.inclusion_proof(1)


def test_leaf_is_the_receipt_sha() -> None:
    sha = "ab" * 32
    assert leaf_hashes([sha]) == [merkle.leaf_hash(bytes.fromhex(sha))]
    with pytest.raises(InvalidInputError):
        leaf_hashes(["not hex"])


def test_key_created_once_with_mode_0600(tmp_path: Path) -> None:
    signer = TreeHeadSigner(tmp_path)
    assert signer.path == tmp_path / "receipt_signing.key"
    assert signer.path.stat().st_mode & 0o777 == 0o600
    assert TreeHeadSigner(tmp_path).public_key_b64 == signer.public_key_b64
    assert [p.name for p in tmp_path.iterdir()] == ["receipt_signing.key"]


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    keys: list[str] = []
    barrier = threading.Barrier(6)

    def make() -> None:
        barrier.wait()
        keys.append(TreeHeadSigner(tmp_path).public_key_b64)

    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 6
    assert len(set(keys)) == 1


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    TreeHeadSigner(tmp_path)
    os.chmod(tmp_path / "receipt_signing.key", 0o644)
    with pytest.raises(IntegrityError, match="readable by others") as info:
        TreeHeadSigner(tmp_path)
    assert info.value.rule == "signing_key_permissions"


def test_sign_tree_head(store: Store, api_manifest: dict[str, Any]) -> None:
    signer = TreeHeadSigner(store.data_dir)
    empty = sign_tree_head(store, signer)
    assert (empty.tree_size, empty.root_hex) == (0, merkle.root([]).hex())
    store.register_release(ReleaseManifest.parse(api_manifest), actor="alice")
    head = sign_tree_head(store, signer)
    assert head.tree_size == 1
    assert head.root_hex == merkle.root(leaf_hashes(store.receipt_shas())).hex()
    assert head.verify()
    assert head.verify(signer.public_key_b64)
    assert not head.verify(TreeHeadSigner(store.data_dir / "other").public_key_b64)
    assert SignedTreeHead.from_dict(head.to_dict()) == head
    assert [h["tree_size"] for h in store.audit.tree_heads()] == [0, 1]
    forged = SignedTreeHead(**{**head.to_dict(), "tree_size": 2})
    assert not forged.verify()


def test_tree_head_from_bad_dict() -> None:
    with pytest.raises(InvalidInputError):
        SignedTreeHead.from_dict({"tree_size": 1})
    good = {
        "tenant": "t",
        "tree_size": "1",
        "root_hex": "",
        "timestamp": "",
        "signature_b64": "",
        "public_key_b64": "",
    }
    with pytest.raises(InvalidInputError, match="integer"):
        SignedTreeHead.from_dict(good)
    with pytest.raises(InvalidInputError, match="negative"):
        SignedTreeHead.from_dict({**good, "tree_size": -1})


def test_receipt_round_trip_and_validation() -> None:
    fields: dict[str, Any] = {
        "kind": "gate_fail",
        "tenant": "default",
        "release_sha256": "ab" * 32,
        "evidence": {"worst": {"slice": "law", "q": -0.25}},
        "actor": "gate",
        "reason": "law below floor",
        "time": "2026-11-26T12:00:00.000000Z",
        "prev_receipt_sha256": None,
        "prev_release_receipt_sha256": None,
        "seq": 0,
    }
    receipt = make_receipt(**fields)
    assert receipt_from_dict(receipt.to_dict()) == receipt
    assert set(receipt.body()) == set(fields) - {"seq"}
    for bad in (
        {"kind": "nope"},
        {"release_sha256": "AB" * 32},
        {"prev_receipt_sha256": "x"},
        {"actor": " "},
        {"evidence": [1]},
        {"tenant": ""},
    ):
        with pytest.raises(InvalidInputError):
            make_receipt(**{**fields, **bad})
    with pytest.raises(InvalidInputError, match="lacks"):
        receipt_from_dict({"kind": "gate_fail"})
    with pytest.raises(InvalidInputError, match="exceeds"):
        make_receipt(**{**fields, "evidence": {"rows": "x" * (5 * 1024 * 1024)}})
