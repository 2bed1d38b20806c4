"""relgate: a release pipeline for LLMs.

A release is an immutable, content-addressed manifest (model, prompt template, routing, eval
dataset, previous release). Every release passes register, gate, roll and observe, and every
decision emits a hash-chained receipt; open-weight releases carry a weight attestation.
"""

from __future__ import annotations

from relgate import errors, stats
from relgate._native import __version__
from relgate.attest import Attestation, attest, verify_attestation, verify_inclusion, verify_tensor
from relgate.manifest import GatePolicy, ReleaseManifest
from relgate.routing import ReleaseRoute, RoutingSnapshot

__all__ = [
    "Attestation",
    "GatePolicy",
    "ReleaseManifest",
    "ReleaseRoute",
    "RoutingSnapshot",
    "__version__",
    "attest",
    "errors",
    "stats",
    "verify_attestation",
    "verify_inclusion",
    "verify_tensor",
]
