"""Weight attestation: the ``tensor-merkle-blake3-v1`` identity of a checkpoint.

The package keeps every name ``relgate.attest`` always had (:mod:`relgate.attest.core`:
the tree, proofs, verification) and adds the leaf cache's defaults and paranoid mode
(:mod:`relgate.attest.cache`), verification on load (:mod:`relgate.attest.load`) and,
with the ``oms`` extra, OpenSSF Model Signing bundles (:mod:`relgate.attest.oms`, imported
on use). docs/attestation.md describes what each of them proves.
"""

from __future__ import annotations

from relgate.attest.cache import (
    CACHE_ENV,
    CacheDisagreement,
    ParanoidResult,
    cache_entry_path,
    default_cache_dir,
    paranoid_attest,
)
from relgate.attest.core import (
    SCHEME,
    Attestation,
    FileRecord,
    InclusionProof,
    PathLike,
    TensorRecord,
    VerifyResult,
    attest,
    load_attestation,
    verify_attestation,
    verify_inclusion,
    verify_tensor,
)
from relgate.attest.load import verified_tensors

__all__ = [
    "CACHE_ENV",
    "SCHEME",
    "Attestation",
    "CacheDisagreement",
    "FileRecord",
    "InclusionProof",
    "ParanoidResult",
    "PathLike",
    "TensorRecord",
    "VerifyResult",
    "attest",
    "cache_entry_path",
    "default_cache_dir",
    "load_attestation",
    "paranoid_attest",
    "verified_tensors",
    "verify_attestation",
    "verify_inclusion",
    "verify_tensor",
]
