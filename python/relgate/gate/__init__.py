"""The gate (docs/design.md §3): per-slice, human-anchored, ceiling-normalized Spearman rho,
with item-cluster bootstrap intervals, paired non-inferiority against the previous release
(Holm across slices) and per-slice verdicts.

Library only: ``run_gate`` returns a ``GateResult`` value; a failed gate is a value, not an
error. ``GateResult.reapply(policy)`` re-decides from stored per-row scores without a judge.
"""

from __future__ import annotations

from relgate.gate.calibration import Calibration, SliceCalibration, calibrate
from relgate.gate.result import GateResult, decide
from relgate.gate.run import run_gate, score_release
from relgate.gate.verdict import (
    GateOutcome,
    GateScores,
    SliceResult,
    SliceVerdict,
    apply_policy,
)
from relgate.manifest import GatePolicy

__all__ = [
    "Calibration",
    "GateOutcome",
    "GatePolicy",
    "GateResult",
    "GateScores",
    "SliceCalibration",
    "SliceResult",
    "SliceVerdict",
    "apply_policy",
    "calibrate",
    "decide",
    "run_gate",
    "score_release",
]
