"""What a rollout was asked to do: steps, holds, deadlines, monitor thresholds, observer settings.

A ``RolloutSpec`` is a frozen value. Defaults are docs/design.md §4 and §5 (and the narrative they
come from); every field can be overridden per release with ``RolloutSpec.with_overrides``, which
validates the result. Weights are basis points (10,000 = 100%) so that the gateway's sticky split
``H(session) mod 10000 < weight_bp`` and the spec speak the same unit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from relgate.errors import InvalidInputError
from relgate.manifest import GatePolicy
from relgate.routing import FULL_WEIGHT_BP

__all__ = [
    "FULL_WEIGHT_BP",
    "MAX_SPEC_FILE_BYTES",
    "MonitorThresholds",
    "ObserverSpec",
    "RolloutSpec",
    "StepSpec",
    "load_spec_file",
]


QualityScale = Literal["normalized", "raw"]


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One checkpoint: the candidate's weight and how long to hold there before judging.

    The hold is met when BOTH ``dwell_s`` seconds have passed since the step was entered and the
    candidate has served ``min_requests`` requests in the step. ``deadline_s`` (seconds after the
    step was entered, or after the last resume) turns a hold that is not decided by then into
    INCONCLUSIVE: the rollout pauses for a human, it never passes by default. ``None`` means no
    deadline, which only makes sense for a step without a hold (the final 100% step). A final
    step given a hold is judged by the same monitors, so its readings provider must supply a
    comparison window (at 100% the stable release serves nothing live).
    """

    weight_bp: int
    dwell_s: float = 0.0
    min_requests: int = 0
    deadline_s: float | None = None

    @property
    def has_hold(self) -> bool:
        """Whether the step waits at all before its checkpoint."""
        return self.dwell_s > 0 or self.min_requests > 0


# Deadlines: the narrative sets dwell and count but no deadline. 30 min at 5% leaves room for a
# slow hour of traffic (1,000 candidate requests = 20,000 total at 5%) and the ~90 s of replay
# grading; 1 h at 25% likewise. A starved hold past these pauses for a human.
DEFAULT_STEPS: tuple[StepSpec, ...] = (
    StepSpec(weight_bp=500, dwell_s=240.0, min_requests=1_000, deadline_s=1_800.0),
    StepSpec(weight_bp=2_500, dwell_s=900.0, min_requests=10_000, deadline_s=3_600.0),
    StepSpec(weight_bp=FULL_WEIGHT_BP),
)


@dataclass(frozen=True, slots=True)
class MonitorThresholds:
    """Checkpoint monitor thresholds (docs/design.md §4).

    - latency: candidate p95 <= ``p95_ratio`` x stable p95 in the same window, once both arms have
      ``min_latency_samples`` requests;
    - 5xx: candidate rate <= ``error_ratio`` x max(stable rate, ``error_rate_floor``), once both
      arms have ``min_error_requests`` requests. A candidate that looks worse with fewer than
      ``min_error_events`` 5xx responses is INCONCLUSIVE (a handful of errors proves nothing);
    - quality: per slice, q = rho / ceiling (or raw rho when ``quality_scale`` is "raw") >=
      ``quality_floor``, the gate policy's floor; a slice with fewer than ``min_replay_rows``
      replayed traces, a ceiling below ``min_ceiling`` or a NaN statistic is INCONCLUSIVE;
      at most ``replay_cap`` recent traces per slice are replayed. When the stable release
      re-answers the replayed traces, the paired always-valid test decides instead: FAIL when
      the candidate is shown worse than the rerun by more than ``quality_margin`` (agreement
      units) at level ``quality_alpha`` across all looks and slices (docs/statistics.md).
    """

    p95_ratio: float = 1.2
    min_latency_samples: int = 100
    error_ratio: float = 1.5
    min_error_requests: int = 200
    min_error_events: int = 10
    error_rate_floor: float = 0.001
    quality_floor: float = 0.65
    quality_scale: QualityScale = "normalized"
    min_replay_rows: int = 20
    min_ceiling: float = 0.1
    replay_cap: int = 50
    quality_alpha: float = 0.05
    quality_margin: float = 0.02


@dataclass(frozen=True, slots=True)
class ObserverSpec:
    """The observer after 100% (docs/design.md §5).

    A minute counts for a slice only with at least ``n_min`` scored rows. A slice below
    ``rollback_fraction`` x the gate floor for ``consecutive_minutes`` consecutive counted
    minutes fires the automatic rollback. ``sample_rate`` is the share of traffic replayed.
    With paired differences (a stable rerun) and ``rule`` "sequential" (the default; "streak"
    keeps the streak rule alone), the sequential rule decides instead: false
    rollbacks at most ``alpha_per_day`` per day, the e-process restarting every
    ``epoch_minutes``, tolerance ``margin`` in agreement units (docs/statistics.md).
    """

    rollback_fraction: float = 0.85
    consecutive_minutes: int = 3
    n_min: int = 20
    sample_rate: float = 0.05
    alpha_per_day: float = 0.05
    epoch_minutes: int = 60
    margin: float = 0.02
    rule: str = "sequential"

    @property
    def alpha_epoch(self) -> float:
        """The sequential test's level per epoch: ``alpha_per_day`` spread over a day's epochs."""
        return self.alpha_per_day * min(1.0, self.epoch_minutes / 1440.0)

    def threshold(self, quality_floor: float) -> float:
        """The rollback threshold for a gate floor (0.85 x 0.65 = 0.5525 by default)."""
        return self.rollback_fraction * quality_floor


@dataclass(frozen=True, slots=True)
class RolloutSpec:
    """Steps, thresholds and observer settings of one rollout; ``cold_start`` asks for shadow.

    A cold start (a release without a previous release) is first shadowed (mirrored traffic,
    scored, never served) for ``shadow_s`` seconds. A shadow of a live release is decided on its
    mirrored answers (``relgate.rollout.shadow``): no harm enters ``steps[0]`` against the
    mirrored release; with nothing live to mirror, a human promotes it.
    """

    steps: tuple[StepSpec, ...] = DEFAULT_STEPS
    thresholds: MonitorThresholds = field(default_factory=MonitorThresholds)
    observer: ObserverSpec = field(default_factory=ObserverSpec)
    shadow_s: float = 86_400.0
    cold_start: bool = False

    def __post_init__(self) -> None:
        _validate(self)

    def with_overrides(self, overrides: Mapping[str, Any]) -> RolloutSpec:
        """A copy with per-release overrides applied and validated.

        ``overrides`` mirrors ``to_dict``: top-level ``shadow_s`` / ``cold_start``, nested
        ``thresholds`` and ``observer`` mappings (only the keys given change), and ``steps`` as a
        full list of step mappings (a partial step list would be ambiguous). Unknown keys raise
        ``InvalidInputError`` so that a typo never silently keeps a default.
        """
        known = {"steps", "thresholds", "observer", "shadow_s", "cold_start"}
        _reject_unknown("rollout spec", overrides, known)
        changes: dict[str, Any] = {}
        if "steps" in overrides:
            raw_steps = overrides["steps"]
            if not isinstance(raw_steps, list | tuple) or not raw_steps:
                raise InvalidInputError("rollout spec: steps must be a non-empty list")
            changes["steps"] = tuple(_step_from(s, i) for i, s in enumerate(raw_steps))
        if "thresholds" in overrides:
            changes["thresholds"] = _replace_from(
                self.thresholds, overrides["thresholds"], "thresholds"
            )
        if "observer" in overrides:
            changes["observer"] = _replace_from(self.observer, overrides["observer"], "observer")
        if "shadow_s" in overrides:
            changes["shadow_s"] = _number(overrides["shadow_s"], "shadow_s")
        if "cold_start" in overrides:
            value = overrides["cold_start"]
            if not isinstance(value, bool):
                raise InvalidInputError("rollout spec: cold_start must be a boolean")
            changes["cold_start"] = value
        return dataclasses.replace(self, **changes)

    def with_gate_policy(self, policy: GatePolicy) -> RolloutSpec:
        """A copy whose quality monitor uses the release's gate policy: the same floor, scale and
        minimum ceiling."""
        thresholds = dataclasses.replace(
            self.thresholds,
            quality_floor=float(policy.floor),
            quality_scale=policy.scale,
            min_ceiling=float(policy.min_ceiling),
        )
        return dataclasses.replace(self, thresholds=thresholds)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutSpec:
        """Defaults plus ``data`` as overrides (the inverse of ``to_dict``)."""
        return cls().with_overrides(data)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping of every field (receipts carry it as the policy evidence)."""
        return {
            "steps": [dataclasses.asdict(s) for s in self.steps],
            "thresholds": dataclasses.asdict(self.thresholds),
            "observer": dataclasses.asdict(self.observer),
            "shadow_s": self.shadow_s,
            "cold_start": self.cold_start,
        }


#: A spec file is a few hundred bytes; anything past this is not one.
MAX_SPEC_FILE_BYTES = 1 << 20


def load_spec_file(path: Path) -> dict[str, Any]:
    """The overrides of a rollout spec file (YAML or JSON; docs/rollout-spec.md), validated
    against the defaults so that a typo fails here, before anything reaches the server.

    The file holds the fields of ``RolloutSpec.to_dict`` (any subset), optionally under a
    top-level ``spec:`` key (as an Argo Rollout's manifest nests its strategy).
    """
    import yaml

    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_SPEC_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"rollout spec {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_SPEC_FILE_BYTES:
        raise InvalidInputError(f"rollout spec {path}: over {MAX_SPEC_FILE_BYTES} bytes")
    try:
        doc = yaml.safe_load(raw.decode("utf-8")) if raw.strip() else {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidInputError(f"rollout spec {path}: not YAML/JSON: {first}") from None
    if isinstance(doc, Mapping) and set(doc) == {"spec"}:
        doc = doc["spec"]
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise InvalidInputError(f"rollout spec {path}: expected a mapping of spec fields")
    overrides = dict(doc)
    try:
        RolloutSpec().with_overrides(overrides)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}") from None
    return overrides


def _reject_unknown(what: str, data: Mapping[str, Any], known: set[str]) -> None:
    if not isinstance(data, Mapping):
        raise InvalidInputError(f"{what}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInputError(f"{what}: unknown field(s) {', '.join(map(str, unknown))}")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"rollout spec: {name} must be a finite number, got {value!r}")
    return float(value)


def _coerce(current: Any, value: Any, name: str) -> Any:
    """Coerce an override to the type of the default it replaces (ints stay ints)."""
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise InvalidInputError(f"rollout spec: {name} must be a boolean")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInputError(f"rollout spec: {name} must be an integer, got {value!r}")
        return value
    if isinstance(current, float):
        return _number(value, name)
    if not isinstance(value, str):
        raise InvalidInputError(f"rollout spec: {name} must be a string, got {value!r}")
    return value


def _replace_from(current: Any, data: Any, what: str) -> Any:
    names = {f.name for f in dataclasses.fields(current)}
    _reject_unknown(what, data, names)
    changes = {k: _coerce(getattr(current, k), v, f"{what}.{k}") for k, v in data.items()}
    return dataclasses.replace(current, **changes)


def _step_from(data: Any, index: int) -> StepSpec:
    what = f"steps[{index}]"
    _reject_unknown(what, data, {"weight_bp", "dwell_s", "min_requests", "deadline_s"})
    if "weight_bp" not in data:
        raise InvalidInputError(f"rollout spec: {what}.weight_bp is required")
    weight = _coerce(0, data["weight_bp"], f"{what}.weight_bp")
    dwell = _number(data.get("dwell_s", 0.0), f"{what}.dwell_s")
    requests = _coerce(0, data.get("min_requests", 0), f"{what}.min_requests")
    deadline_raw = data.get("deadline_s")
    deadline = None if deadline_raw is None else _number(deadline_raw, f"{what}.deadline_s")
    return StepSpec(weight_bp=weight, dwell_s=dwell, min_requests=requests, deadline_s=deadline)


def _validate(spec: RolloutSpec) -> None:
    def bad(msg: str) -> InvalidInputError:
        return InvalidInputError(f"rollout spec: {msg}")

    if not spec.steps:
        raise bad("at least one step is required")
    previous = 0
    for i, step in enumerate(spec.steps):
        if not 0 < step.weight_bp <= FULL_WEIGHT_BP:
            raise bad(f"steps[{i}].weight_bp must be in 1..{FULL_WEIGHT_BP}, got {step.weight_bp}")
        if step.weight_bp <= previous:
            raise bad("step weights must increase strictly")
        previous = step.weight_bp
        if step.dwell_s < 0 or step.min_requests < 0:
            raise bad(f"steps[{i}]: dwell_s and min_requests must be >= 0")
        if step.deadline_s is not None and step.deadline_s <= step.dwell_s:
            raise bad(f"steps[{i}]: deadline_s must exceed dwell_s")
        if step.has_hold and step.deadline_s is None:
            # Without a deadline a starved hold would wait forever: the design wants a human.
            raise bad(f"steps[{i}]: a step with a hold needs a deadline_s")
    if spec.steps[-1].weight_bp != FULL_WEIGHT_BP:
        raise bad(f"the last step must reach {FULL_WEIGHT_BP} bp (100%)")
    t = spec.thresholds
    if t.p95_ratio <= 0 or t.error_ratio <= 0:
        raise bad("p95_ratio and error_ratio must be > 0")
    if min(t.min_latency_samples, t.min_error_requests, t.min_error_events) < 1:
        raise bad("minimum sample and event counts must be >= 1")
    if t.error_rate_floor < 0 or not -1 <= t.quality_floor <= 1:
        raise bad("error_rate_floor must be >= 0 and quality_floor within [-1, 1]")
    if not 0 < t.quality_alpha < 1 or not 0 <= t.quality_margin < 2:
        raise bad("quality_alpha must be within (0, 1) and quality_margin within [0, 2)")
    if t.quality_scale not in ("normalized", "raw"):
        raise bad(f"quality_scale must be 'normalized' or 'raw', got {t.quality_scale!r}")
    if t.min_replay_rows < 3 or t.replay_cap < t.min_replay_rows:
        # Spearman on fewer than 3 traces is meaningless; a cap below the minimum never decides.
        raise bad("need 3 <= min_replay_rows <= replay_cap")
    o = spec.observer
    if not 0 < o.rollback_fraction <= 1 or o.consecutive_minutes < 1 or o.n_min < 1:
        raise bad("observer: rollback_fraction in (0, 1], consecutive_minutes and n_min >= 1")
    if not 0 < o.sample_rate <= 1:
        raise bad("observer: sample_rate must be in (0, 1]")
    if o.rule not in ("sequential", "streak"):
        raise bad(f"observer: rule must be 'sequential' or 'streak', got {o.rule!r}")
    if not 0 < o.alpha_per_day < 1 or o.epoch_minutes < 1 or not 0 <= o.margin < 2:
        raise bad("observer: alpha_per_day in (0, 1), epoch_minutes >= 1, margin in [0, 2)")
    if spec.shadow_s < 0:
        raise bad("shadow_s must be >= 0")
