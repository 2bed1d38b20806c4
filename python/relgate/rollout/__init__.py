"""Roll: the canary decision core (docs/design.md §4 and §5).

A rollout is a spec (``RolloutSpec``: what was asked) plus a status (``RolloutStatus``: facts
folded from an append-only log); its phase is the pure function ``compute_phase(spec, status,
now)``. Monitors, checkpoints, the observer and trace replay are pure functions over plain
readings. ``RolloutController`` is the single writer that applies decisions through injected
routing, receipt and persistence callbacks; ``simulate`` replays a recorded timeline through it.
"""

from __future__ import annotations

from relgate.rollout.checkpoint import (
    CheckpointResult,
    HoldProgress,
    Outcome,
    ReceiptKind,
    evaluate_checkpoint,
    hold_progress,
)
from relgate.rollout.controller import (
    FactLog,
    MemoryFactLog,
    Readings,
    RolloutController,
    Routing,
)
from relgate.rollout.monitors import (
    ErrorRateReading,
    LatencyReading,
    MonitorVerdict,
    QualityReading,
    SliceQuality,
    Verdict,
    evaluate_errors,
    evaluate_latency,
    evaluate_quality,
)
from relgate.rollout.observe import (
    MinuteQuality,
    Observer,
    ObserverDecision,
    SliceMinute,
    evaluate_observer,
    sampled,
)
from relgate.rollout.phase import Action, Phase, PhaseDecision, compute_phase
from relgate.rollout.replay import ReplayTrace, replay_quality, replayable, select_recent
from relgate.rollout.simulate import SimulationResult, load_timeline, simulate
from relgate.rollout.spec import (
    FULL_WEIGHT_BP,
    MonitorThresholds,
    ObserverSpec,
    RolloutSpec,
    StepSpec,
)
from relgate.rollout.status import Fact, FactKind, Reading, RolloutStatus

__all__ = [
    "FULL_WEIGHT_BP",
    "Action",
    "CheckpointResult",
    "ErrorRateReading",
    "Fact",
    "FactKind",
    "FactLog",
    "HoldProgress",
    "LatencyReading",
    "MemoryFactLog",
    "MinuteQuality",
    "MonitorThresholds",
    "MonitorVerdict",
    "Observer",
    "ObserverDecision",
    "ObserverSpec",
    "Outcome",
    "Phase",
    "PhaseDecision",
    "QualityReading",
    "Reading",
    "Readings",
    "ReceiptKind",
    "ReplayTrace",
    "RolloutController",
    "RolloutSpec",
    "RolloutStatus",
    "Routing",
    "SimulationResult",
    "SliceMinute",
    "SliceQuality",
    "StepSpec",
    "Verdict",
    "compute_phase",
    "evaluate_checkpoint",
    "evaluate_errors",
    "evaluate_latency",
    "evaluate_observer",
    "evaluate_quality",
    "hold_progress",
    "load_timeline",
    "replay_quality",
    "replayable",
    "sampled",
    "select_recent",
    "simulate",
]
