"""relgate._native.MerkleTree (every level kept, built in Rust) against the pure-Python
MerkleLevels of the receipts tree and the one-shot functions of relgate.merkle."""

from __future__ import annotations

import hashlib

import blake3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relgate import _native, merkle
from relgate.errors import InvalidInputError
from relgate.receipts.tree import MerkleLevels

MerkleTree = _native.MerkleTree


def leaves(n: int, algo: str = "sha256", salt: int = 0) -> list[bytes]:
    h = hashlib.sha256 if algo == "sha256" else blake3.blake3
    return [h(b"\x00" + f"receipt {i} {salt}".encode()).digest() for i in range(n)]


@pytest.mark.parametrize("n", [*range(0, 40), 63, 64, 65, 127, 128, 129, 300])
def test_same_answers_as_merkle_levels(n: int) -> None:
    ls = leaves(n)
    tree, levels = MerkleTree(ls), MerkleLevels(ls)
    assert tree.size == len(tree) == levels.size == n
    assert tree.algo == "sha256"
    assert tree.root() == levels.root() == merkle.root(ls)
    assert [tree.prefix_root(m) for m in range(n + 1)] == [
        levels.prefix_root(m) for m in range(n + 1)
    ]
    all_proofs = tree.inclusion_proofs()
    assert all_proofs == [levels.inclusion_proof(i) for i in range(n)]
    assert all_proofs == [tree.inclusion_proof(i) for i in range(n)]
    assert tree.inclusion_proofs_joined() == [b"".join(p) for p in all_proofs]


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(0, 300),
    algo=st.sampled_from(["sha256", "blake3"]),
    data=st.data(),
)
def test_prefix_proofs_match_the_one_shot_functions(
    n: int, algo: merkle.Algo, data: st.DataObject
) -> None:
    ls = leaves(n, algo)
    tree = MerkleTree(ls, algo)
    m = data.draw(st.integers(0, n))
    old = data.draw(st.integers(0, m))
    root_m = tree.prefix_root(m)
    assert root_m == merkle.root(ls[:m], algo)
    proof = tree.consistency_proof(old, m)
    assert proof == merkle.consistency_proof(ls[:m], old, algo)
    assert merkle.verify_consistency(old, m, tree.prefix_root(old), root_m, proof, algo)
    if m:
        i = data.draw(st.integers(0, m - 1))
        path = tree.inclusion_proof(i, m)
        assert path == merkle.inclusion_proof(ls[:m], i, algo)
        assert merkle.verify_inclusion(ls[i], i, m, path, root_m, algo)
    assert tree.consistency_proof(old) == merkle.consistency_proof(ls, old, algo)


def test_bad_arguments_are_invalid_input() -> None:
    tree = MerkleTree(leaves(5))
    for call in (
        lambda: tree.prefix_root(6),
        lambda: tree.prefix_root(-1),
        lambda: tree.inclusion_proof(5),
        lambda: tree.inclusion_proof(0, 6),
        lambda: tree.inclusion_proof(-1),
        lambda: tree.consistency_proof(4, 3),
        lambda: tree.consistency_proof(1, 6),
        lambda: MerkleTree([b"short"]),
        lambda: MerkleTree(leaves(2), "md5"),
    ):
        with pytest.raises(InvalidInputError):
            call()
    empty = MerkleTree([])
    assert empty.root() == hashlib.sha256(b"").digest() and empty.inclusion_proofs() == []
    assert repr(tree) == 'MerkleTree(size=5, algo="sha256")'
    with pytest.raises(AttributeError):
        tree.size = 3  # type: ignore[misc]


def test_rfc6962_example() -> None:
    # RFC 6962 section 2.1.3, the 7-leaf tree: audit path of d3 is [c, g, l].
    ls = leaves(7)

    def h(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    a, b, c, d, e, f, j = ls
    g, l_ = h(a, b), h(h(e, f), j)
    tree = MerkleTree(ls)
    assert tree.inclusion_proof(3) == [c, g, l_]
    assert tree.consistency_proof(4) == [l_]
    assert tree.root() == h(h(g, h(c, d)), l_)
