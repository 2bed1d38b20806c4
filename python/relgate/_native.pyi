# Hand-written stub of the PyO3 module `relgate._native`; checked by `python -m mypy.stubtest`.
# Each section belongs to one wrapper file of rust/relgate-py/src; edit only your section.

__version__: str

# --- attest (rust/relgate-py/src/attest.rs) ---

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

# --- end attest ---

# --- stats (rust/relgate-py/src/stats.rs) ---

# --- end stats ---
