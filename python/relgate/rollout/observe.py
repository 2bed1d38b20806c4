"""The observer after 100%: per-minute, per-slice quality and the automatic rollback trigger.

Each minute the provider replays a sample of that minute's traces (``sample_rate`` of traffic,
chosen with ``sampled``) and reports, per slice, the quality score on the gate's scale and the
number of scored rows. The observer then decides, per slice:

- a minute with fewer than ``n_min`` scored rows (or no defined score) is THIN and does not count;
- a counted minute below ``rollback_fraction`` x the gate floor is BAD, otherwise GOOD;
- ``consecutive_minutes`` BAD counted minutes in a row fire the rollback.

A THIN minute is *skipped*, not a reset: ``bad, thin, bad, bad`` fires, because the thin minute
says nothing about quality and a quiet minute of traffic must not buy a regressed release more
time. A GOOD counted minute resets the streak: ``bad, bad, good`` does not fire.
Minutes are keyed by their start time; a minute seen twice (a replay after a crash) is ignored.

Sequential rule (docs/statistics.md). When a slice's minute carries paired differences (the
previous release answered each sampled prompt twice: once as the reference, once as a rerun;
``relgate.rollout.sequential``), the streak rule above is replaced for that slice by the
always-valid paired test: the slice's e-process folds every minute's differences and the
rollback fires when it reaches ``k / alpha_epoch`` (``k`` slices in the minute). The e-process
restarts every ``epoch_minutes``; with ``alpha_epoch = alpha_per_day * epoch_minutes / 1440``
the expected number of false rollbacks of a release no worse than its predecessor is at most
``alpha_per_day`` per day, however long the observer runs.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from relgate.errors import InvalidInputError
from relgate.rollout.monitors import finite_or_none
from relgate.rollout.sequential import SequentialState, fold, threshold_log
from relgate.rollout.spec import ObserverSpec

__all__ = [
    "MinuteClass",
    "MinuteQuality",
    "Observer",
    "ObserverDecision",
    "ObserverState",
    "SliceMinute",
    "classify",
    "evaluate_observer",
    "observe_minute",
    "sampled",
]


class MinuteClass(StrEnum):
    """How one slice's minute counts."""

    GOOD = "good"
    BAD = "bad"
    THIN = "thin"


@dataclass(frozen=True, slots=True)
class SliceMinute:
    """One slice's score in one minute: ``q`` on the gate's scale (None: undefined), ``n`` rows,
    and the paired differences of the sampled traces (empty without a stable rerun)."""

    slice: str
    q: float | None
    n: int
    diffs: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class MinuteQuality:
    """All slices' scores for the minute starting at ``minute_start`` (seconds, clock time)."""

    minute_start: float
    slices: tuple[SliceMinute, ...]

    @classmethod
    def from_dict(cls, data: Any) -> MinuteQuality:
        """Parse ``{"minute_start": t, "slices": {name: {"q": x, "n": k}}}``."""
        if not isinstance(data, Mapping):
            raise InvalidInputError("observer minute must be a mapping")
        start = data.get("minute_start")
        if isinstance(start, bool) or not isinstance(start, int | float):
            raise InvalidInputError("observer minute: minute_start must be a number")
        raw = data.get("slices")
        if not isinstance(raw, Mapping):
            raise InvalidInputError("observer minute: slices must map slice -> {q, n}")
        slices = []
        for name, row in sorted(raw.items()):
            if not isinstance(row, Mapping):
                raise InvalidInputError(f"observer minute: slice {name!r} must be a mapping")
            q, n = row.get("q"), row.get("n")
            if q is not None and (isinstance(q, bool) or not isinstance(q, int | float)):
                raise InvalidInputError(f"observer minute: {name}.q must be a number or null")
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise InvalidInputError(f"observer minute: {name}.n must be an integer >= 0")
            diffs = row.get("diffs", [])
            if not isinstance(diffs, list | tuple) or not all(
                isinstance(d, int | float) and not isinstance(d, bool) and math.isfinite(d)
                for d in diffs
            ):
                raise InvalidInputError(f"observer minute: {name}.diffs must be finite numbers")
            slices.append(
                SliceMinute(
                    str(name), None if q is None else float(q), n, tuple(float(d) for d in diffs)
                )
            )
        return cls(minute_start=float(start), slices=tuple(slices))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the inverse of ``from_dict``)."""
        return {
            "minute_start": self.minute_start,
            "slices": {
                s.slice: {
                    "q": finite_or_none(s.q),
                    "n": s.n,
                    **({"diffs": list(s.diffs)} if s.diffs else {}),
                }
                for s in self.slices
            },
        }


@dataclass(frozen=True, slots=True)
class ObserverState:
    """Per slice, the start times of the BAD counted minutes of the current streak, and (for
    the sequential rule) the slice's e-process of the current epoch, which began at
    ``epoch_start``."""

    last_minute: float | None = None
    streaks: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    sequential: Mapping[str, SequentialState] = field(default_factory=dict)
    epoch_start: float | None = None


@dataclass(frozen=True, slots=True)
class ObserverDecision:
    """Whether the rollback fires, on which slice, and the evidence for the receipt."""

    fire: bool
    slice: str | None = None
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


def classify(minute: SliceMinute, spec: ObserverSpec, quality_floor: float) -> MinuteClass:
    """GOOD, BAD or THIN for one slice's minute."""
    if minute.n < spec.n_min or minute.q is None or not math.isfinite(minute.q):
        return MinuteClass.THIN
    return MinuteClass.BAD if minute.q < spec.threshold(quality_floor) else MinuteClass.GOOD


def observe_minute(
    spec: ObserverSpec, quality_floor: float, state: ObserverState, minute: MinuteQuality
) -> tuple[ObserverState, ObserverDecision]:
    """Fold one minute into the state; returns the new state and whether the rollback fires."""
    if state.last_minute is not None and minute.minute_start <= state.last_minute:
        return state, ObserverDecision(fire=False, reason="minute already observed")
    streaks = dict(state.streaks)
    threshold = spec.threshold(quality_floor)
    fired: list[tuple[str, tuple[float, ...]]] = []
    epoch_start = state.epoch_start
    seq = dict(state.sequential)
    if epoch_start is None or minute.minute_start >= epoch_start + spec.epoch_minutes * 60.0:
        epoch_start, seq = minute.minute_start, {}
    bar = threshold_log(spec.alpha_epoch, max(1, len(minute.slices)))
    seq_fired: list[str] = []
    for sm in minute.slices:
        if spec.rule == "sequential" and (sm.diffs or sm.slice in seq):
            st = fold(seq.get(sm.slice) or SequentialState(margin=spec.margin), sm.diffs)
            seq[sm.slice] = st
            if st.max_log_e >= bar:
                seq_fired.append(sm.slice)
            continue
        cls = classify(sm, spec, quality_floor)
        if cls is MinuteClass.GOOD:
            streaks.pop(sm.slice, None)
        elif cls is MinuteClass.BAD:
            streaks[sm.slice] = (*streaks.get(sm.slice, ()), minute.minute_start)
            if len(streaks[sm.slice]) >= spec.consecutive_minutes:
                fired.append((sm.slice, streaks[sm.slice]))
    new_state = ObserverState(
        last_minute=minute.minute_start, streaks=streaks, sequential=seq, epoch_start=epoch_start
    )
    if seq_fired:
        name = min(seq_fired, key=lambda n: (-seq[n].max_log_e, n))
        st = seq[name]
        evidence_seq: dict[str, Any] = {
            "slice": name,
            "test": "paired e-process",
            "paired_n": st.n,
            "mean_diff": st.mean,
            "margin": st.margin,
            "log_e": st.max_log_e,
            "log_e_threshold": bar,
            "alpha_per_day": spec.alpha_per_day,
            "epoch_minutes": spec.epoch_minutes,
            "epoch_start": epoch_start,
            "minute": minute.to_dict(),
            "breached_slices": sorted(seq_fired),
        }
        reason = (
            f"slice {name} worse than the previous release: e-value >= "
            f"{math.exp(bar):.3g} over {st.n} paired traces (mean diff {st.mean:+.3f})"
        )
        return new_state, ObserverDecision(
            fire=True, slice=name, reason=reason, evidence=evidence_seq
        )
    if not fired:
        return new_state, ObserverDecision(fire=False, reason="no slice breached")
    # Several slices can breach in the same minute; the longest streak leads, then by name.
    fired.sort(key=lambda f: (-len(f[1]), f[0]))
    name, minutes = fired[0]
    evidence: dict[str, Any] = {
        "slice": name,
        "bad_minutes": list(minutes),
        "threshold": threshold,
        "quality_floor": quality_floor,
        "rollback_fraction": spec.rollback_fraction,
        "consecutive_minutes": spec.consecutive_minutes,
        "n_min": spec.n_min,
        "minute": minute.to_dict(),
        "breached_slices": [f[0] for f in fired],
    }
    reason = f"slice {name} below {threshold:.4g} for {len(minutes)} consecutive counted minutes"
    return new_state, ObserverDecision(fire=True, slice=name, reason=reason, evidence=evidence)


def evaluate_observer(
    spec: ObserverSpec, quality_floor: float, minutes: Iterable[MinuteQuality]
) -> ObserverDecision:
    """Fold every minute from scratch (the pure form used by the phase function).

    Returns the first decision that fires, or a non-firing decision after the last minute.
    """
    state = ObserverState()
    last = ObserverDecision(fire=False, reason="no minute observed")
    for minute in minutes:
        state, last = observe_minute(spec, quality_floor, state, minute)
        if last.fire:
            return last
    return last


class Observer:
    """A stateful convenience wrapper over ``observe_minute`` for a live loop."""

    def __init__(self, spec: ObserverSpec, quality_floor: float) -> None:
        self._spec = spec
        self._floor = quality_floor
        self._state = ObserverState()

    @property
    def state(self) -> ObserverState:
        """The current streaks."""
        return self._state

    def observe(self, minute: MinuteQuality) -> ObserverDecision:
        """Fold one minute; the decision says whether the rollback fires now."""
        self._state, decision = observe_minute(self._spec, self._floor, self._state, minute)
        return decision


def sampled(trace_id: str, rate: float) -> bool:
    """Deterministic sampling of a trace for the observer's replay sample.

    The same trace id is always in or out (so a replay after a crash scores the same sample);
    hashing spreads ids uniformly whatever their format.
    """
    if not 0 <= rate <= 1:
        raise InvalidInputError(f"sample rate must be within [0, 1], got {rate}")
    digest = hashlib.blake2b(trace_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < rate * 2**64
