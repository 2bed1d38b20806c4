# Hand-written stub of the PyO3 module `relgate._native`; checked by `python -m mypy.stubtest`.
# Each section belongs to one wrapper file of rust/relgate-py/src; edit only your section.

__version__: str

# --- attest (rust/relgate-py/src/attest.rs) ---

# --- end attest ---

# --- stats (rust/relgate-py/src/stats.rs) ---

# --- end stats ---
