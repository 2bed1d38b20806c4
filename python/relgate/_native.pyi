# Hand-written stub of the PyO3 module `relgate._native`; checked by `python -m mypy.stubtest`.
# Each section belongs to one wrapper file of rust/relgate-py/src; edit only your section.

__version__: str

# --- attest (rust/relgate-py/src/attest.rs) ---

import os as _os
from typing import Any as _Any
from typing import final as _final

def merkle_leaf_hash(data: bytes, algo: str = "sha256") -> bytes: ...
def merkle_leaf_hashes(datas: list[bytes], algo: str = "sha256") -> list[bytes]: ...
def merkle_root(leaf_hashes: list[bytes], algo: str = "sha256") -> bytes: ...
def merkle_inclusion_proof(
    leaf_hashes: list[bytes], index: int, algo: str = "sha256"
) -> list[bytes]: ...
def merkle_verify_inclusion(
    leaf_hash: bytes,
    index: int,
    tree_size: int,
    proof: list[bytes],
    root: bytes,
    algo: str = "sha256",
) -> bool: ...
def merkle_consistency_proof(
    leaf_hashes: list[bytes], old_size: int, algo: str = "sha256"
) -> list[bytes]: ...
def merkle_verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: list[bytes],
    algo: str = "sha256",
) -> bool: ...

@_final
class MerkleTree:
    """An RFC 6962 tree built once from leaf hashes, every level kept."""

    def __new__(cls, leaf_hashes: list[bytes], algo: str = "sha256") -> MerkleTree: ...
    @property
    def size(self) -> int: ...
    @property
    def algo(self) -> str: ...
    def __len__(self) -> int: ...
    def root(self) -> bytes: ...
    def prefix_root(self, size: int) -> bytes: ...
    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]: ...
    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]: ...
    def inclusion_proofs(self) -> list[list[bytes]]: ...
    def inclusion_proofs_joined(self) -> list[bytes]: ...

ATTEST_SCHEME: str

def attest_checkpoint(
    path: str | _os.PathLike[str],
    file_digests: bool = False,
    spot_check: int | None = None,
    seed: int = 0,
    cache_dir: str | _os.PathLike[str] | None = None,
) -> dict[str, _Any]: ...
def attest_tensor_digest(path: str | _os.PathLike[str], name: str) -> dict[str, _Any]: ...
def attest_leaf_hash(name: str, dtype: str, shape: list[int], data_blake3: bytes) -> bytes: ...

# --- end attest ---

# --- stats (rust/relgate-py/src/stats.rs) ---

import numpy as _np  # noqa: E402 (imports kept inside this section)
import numpy.typing as _npt  # noqa: E402

_F64Array = _npt.NDArray[_np.float64]
_I64Array = _npt.NDArray[_np.int64]

def spearman(x: _F64Array, y: _F64Array, nan_policy: str) -> float: ...
def kendall_tau_b(x: _F64Array, y: _F64Array, nan_policy: str) -> float: ...
def spearman_grouped(
    x: _F64Array, y: _F64Array, offsets: _I64Array, nan_policy: str
) -> _F64Array: ...
def kendall_tau_b_grouped(
    x: _F64Array, y: _F64Array, offsets: _I64Array, nan_policy: str
) -> _F64Array: ...
def bootstrap_ci_grouped(
    x: _F64Array,
    y: _F64Array,
    offsets: _I64Array,
    clusters: _I64Array | None,
    statistic: str,
    n_resamples: int,
    confidence: float,
    method: str,
    seed: int,
    thresholds: _F64Array | None = None,
) -> tuple[_F64Array, _F64Array, _F64Array, _F64Array, _I64Array]: ...
def paired_bootstrap_diff(
    x_new: _F64Array,
    x_old: _F64Array,
    y: _F64Array,
    offsets: _I64Array,
    clusters: _I64Array,
    statistic: str,
    n_resamples: int,
    confidence: float,
    margin: float,
    seed: int,
) -> tuple[_F64Array, _F64Array, _F64Array, _F64Array, _F64Array, _I64Array]: ...
def fisher_z_ci(rho: _F64Array, n: _F64Array, confidence: float) -> tuple[_F64Array, _F64Array]: ...
def holm(pvalues: _F64Array) -> _F64Array: ...
def benjamini_hochberg(pvalues: _F64Array) -> _F64Array: ...

# --- end stats ---
