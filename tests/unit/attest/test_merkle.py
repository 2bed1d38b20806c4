"""relgate.merkle against a straightforward recursive RFC 6962 reference written here."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import blake3
import pytest
from relgate import merkle
from relgate.errors import InvalidInputError

HashFn = Callable[[bytes], bytes]
ALGOS: dict[str, HashFn] = {
    "sha256": lambda b: hashlib.sha256(b).digest(),
    "blake3": lambda b: blake3.blake3(b).digest(),
}


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_root(h: HashFn, d: list[bytes]) -> bytes:
    if not d:
        return h(b"")
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return h(b"\x01" + ref_root(h, d[:k]) + ref_root(h, d[k:]))


def ref_path(h: HashFn, m: int, d: list[bytes]) -> list[bytes]:
    if len(d) <= 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(h, m, d[:k]), ref_root(h, d[k:])]
    return [*ref_path(h, m - k, d[k:]), ref_root(h, d[:k])]


def ref_subproof(h: HashFn, m: int, d: list[bytes], complete: bool) -> list[bytes]:
    if m == len(d):
        return [] if complete else [ref_root(h, d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_subproof(h, m, d[:k], complete), ref_root(h, d[k:])]
    return [*ref_subproof(h, m - k, d[k:], False), ref_root(h, d[:k])]


def leaves(algo: str, n: int) -> list[bytes]:
    return [ALGOS[algo](b"\x00" + f"record {i}".encode()) for i in range(n)]


def test_sha256_empty_root_is_hash_of_nothing() -> None:
    assert merkle.root([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.root([], algo="blake3") == blake3.blake3(b"").digest()


@pytest.mark.parametrize("algo", ["sha256", "blake3"])
def test_leaf_hash_is_prefixed_hash(algo: merkle.Algo) -> None:
    assert merkle.leaf_hash(b"abc", algo) == ALGOS[algo](b"\x00abc")


def test_batch_leaf_hashes_match_single() -> None:
    datas = [f"receipt {i}".encode() * (i % 7) for i in range(3000)]
    assert merkle.leaf_hashes_sha256(datas) == [merkle.leaf_hash(d) for d in datas]
    assert merkle.leaf_hashes_sha256([]) == []


@pytest.mark.parametrize("algo", ["sha256", "blake3"])
def test_root_and_proofs_match_reference(algo: merkle.Algo) -> None:
    h = ALGOS[algo]
    for n in range(0, 34):
        d = leaves(algo, n)
        r = merkle.root(d, algo)
        assert r == ref_root(h, d)
        for i in range(n):
            p = merkle.inclusion_proof(d, i, algo)
            assert p == ref_path(h, i, d)
            assert merkle.verify_inclusion(d[i], i, n, p, r, algo)
            if n > 1:
                assert not merkle.verify_inclusion(d[(i + 1) % n], i, n, p, r, algo)
        for m in range(1, n):
            p = merkle.consistency_proof(d, m, algo)
            assert p == ref_subproof(h, m, d, True)
            old = ref_root(h, d[:m])
            assert merkle.verify_consistency(m, n, old, r, p, algo)
            assert not merkle.verify_consistency(m, n, r, old, p, algo)


def test_consistency_edge_sizes() -> None:
    d = leaves("sha256", 5)
    r = merkle.root(d)
    assert merkle.consistency_proof(d, 0) == []
    assert merkle.consistency_proof(d, 5) == []
    assert merkle.verify_consistency(0, 5, merkle.root([]), r, [])
    assert merkle.verify_consistency(5, 5, r, r, [])
    assert not merkle.verify_consistency(5, 5, r, merkle.root(d[:4]), [])
    assert not merkle.verify_consistency(6, 5, r, r, [])


def test_bad_arguments_raise_invalid_input() -> None:
    d = leaves("sha256", 3)
    with pytest.raises(InvalidInputError):
        merkle.root(d, algo="md5")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        merkle.root([b"short"])
    with pytest.raises(InvalidInputError):
        merkle.inclusion_proof(d, 3)
    with pytest.raises(InvalidInputError):
        merkle.inclusion_proof(d, -1)
    with pytest.raises(InvalidInputError):
        merkle.consistency_proof(d, 4)
    with pytest.raises(InvalidInputError):
        merkle.verify_inclusion(d[0], 0, 3, [b"x"], merkle.root(d))
    assert not merkle.verify_inclusion(d[0], 3, 3, [], merkle.root(d))
