"""in-toto Statement v1 export of a weight attestation, so supply-chain tooling (in-toto,
SLSA verifiers, sigstore bundles) can carry and sign it.

The first subject is the checkpoint, identified by its tensor-merkle-blake3-v1 root. The
root is not a digest of any one file, so it goes under its own digest key (default
``"tensorMerkleBlake3V1"``; pass ``digest_key="blake3"`` if a consumer insists on a known
algorithm name). Each weight file with a computed digest follows as its own subject under
``"blake3"``, which is exactly what ``b3sum`` prints for it. The predicate is the
attestation dict (:meth:`relgate.attest.Attestation.to_dict`).
"""

from __future__ import annotations

from typing import Any

from relgate.attest import Attestation
from relgate.errors import InvalidInputError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://relgate.dev/attestation/tensor-merkle-blake3/v1"
ROOT_DIGEST_KEY = "tensorMerkleBlake3V1"

__all__ = ["PREDICATE_TYPE", "ROOT_DIGEST_KEY", "STATEMENT_TYPE", "statement"]


def statement(
    att: Attestation, *, name: str = "checkpoint", digest_key: str = ROOT_DIGEST_KEY
) -> dict[str, Any]:
    """The in-toto Statement v1 (a JSON-ready dict) for a full attestation."""
    if att.root is None:
        raise InvalidInputError("a spot check has no root to export; attest fully")
    subjects: list[dict[str, Any]] = [{"name": name, "digest": {digest_key: att.root}}]
    subjects += [
        {"name": f"{name}/{f.path}", "digest": {"blake3": f.blake3}}
        for f in att.files
        if f.blake3 is not None
    ]
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": PREDICATE_TYPE,
        "predicate": att.to_dict(),
    }
