"""What has happened to a rollout: an append-only list of facts and the status folded from them.

Facts are the only thing persisted. ``RolloutStatus.from_facts`` rebuilds the status after a
crash exactly as it was, so the controller resumes at the same step with the same hold clock.
The status holds facts only (timestamps, counts, readings, flags), never a phase: the phase is
``relgate.rollout.phase.compute_phase(spec, status, now)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from relgate.errors import InvalidInputError
from relgate.rollout.monitors import ErrorRateReading, LatencyReading, QualityReading
from relgate.rollout.observe import MinuteQuality

__all__ = ["Fact", "FactKind", "Reading", "RolloutStatus"]


class FactKind(StrEnum):
    """The kinds of fact a rollout records."""

    STARTED = "started"  # data: candidate, stable (null on a cold start), spec
    STEP_ENTERED = "step_entered"  # data: index, weight_bp
    REQUESTS = "requests"  # data: n (candidate requests served since the previous fact)
    READING = "reading"  # data: latency / errors / quality (any subset)
    ABORT = "abort"  # data: actor, reason
    PAUSE = "pause"  # data: actor, reason, source ("human" | "inconclusive")
    RESUME = "resume"  # data: actor, reason
    PROMOTE = "promote"  # data: actor, reason
    HOLD_EXTENDED = "hold_extended"  # data: index (checkpoint_hold was emitted for this step)
    SHADOW_STARTED = "shadow_started"  # data: mirror (the live release mirrored; optional)
    SHADOW_ENDED = "shadow_ended"
    COMPLETED = "completed"  # the candidate serves 100% and is the stable release now
    MINUTE = "minute"  # data: an observer minute (MinuteQuality.to_dict)
    ROLLED_BACK = "rolled_back"  # data: cause ("monitor" | "observer" | "abort"), to
    OBSERVE_ENDED = "observe_ended"  # data: reason (a newer release took over)


@dataclass(frozen=True, slots=True)
class Fact:
    """One thing that happened at clock time ``at`` (seconds)."""

    kind: FactKind
    at: float
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the store."""
        return {"kind": str(self.kind), "at": self.at, "data": dict(self.data)}

    @classmethod
    def from_dict(cls, raw: Any) -> Fact:
        """Parse ``to_dict`` output; raises ``InvalidInputError`` on a malformed fact."""
        if not isinstance(raw, Mapping):
            raise InvalidInputError("fact must be a mapping")
        try:
            kind = FactKind(str(raw.get("kind")))
        except ValueError as exc:
            raise InvalidInputError(f"unknown fact kind {raw.get('kind')!r}") from exc
        at = raw.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at):
            raise InvalidInputError(f"fact {kind}: at must be a finite number")
        data = raw.get("data", {})
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"fact {kind}: data must be a mapping")
        return cls(kind=kind, at=float(at), data=dict(data))


@dataclass(frozen=True, slots=True)
class Reading:
    """Monitor readings taken at ``at``; any of them may be missing from one reading."""

    at: float
    latency: LatencyReading | None = None
    errors: ErrorRateReading | None = None
    quality: QualityReading | None = None

    @classmethod
    def from_fact_data(cls, at: float, data: Mapping[str, Any]) -> Reading:
        """Parse a READING fact's data."""
        lat, err, qual = data.get("latency"), data.get("errors"), data.get("quality")
        return cls(
            at=at,
            latency=None if lat is None else LatencyReading.from_dict(lat),
            errors=None if err is None else ErrorRateReading.from_dict(err),
            quality=None if qual is None else QualityReading.from_dict(qual),
        )

    def to_fact_data(self) -> dict[str, Any]:
        """The data of a READING fact (missing readings are left out)."""
        out: dict[str, Any] = {}
        if self.latency is not None:
            out["latency"] = self.latency.to_dict()
        if self.errors is not None:
            out["errors"] = self.errors.to_dict()
        if self.quality is not None:
            out["quality"] = self.quality.to_dict()
        return out


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """Facts folded into their current values. Build with ``from_facts`` or ``apply``.

    ``readings`` and ``requests_in_step`` cover the current step only; ``promote_requests`` are
    the promotes not yet consumed by a step change; ``resumed_at`` restarts the step's deadline
    clock (a human who resumes an inconclusive hold gives it a fresh deadline); ``minutes`` are
    the observer minutes recorded after completion.
    """

    candidate: str | None = None
    stable: str | None = None
    spec_overrides: Mapping[str, Any] | None = None
    started_at: float | None = None
    step_index: int = -1
    step_weight_bp: int = 0
    step_entered_at: float | None = None
    requests_in_step: int = 0
    readings: tuple[Reading, ...] = ()
    aborted: bool = False
    abort_at: float | None = None
    abort_actor: str = ""
    abort_reason: str = ""
    paused: bool = False
    pause_source: str = ""
    pause_reason: str = ""
    resumed_at: float | None = None
    promote_requests: tuple[tuple[float, str], ...] = ()
    hold_extended_steps: frozenset[int] = frozenset()
    shadow_started_at: float | None = None
    shadow_ended_at: float | None = None
    shadow_mirror: str | None = None
    completed_at: float | None = None
    minutes: tuple[MinuteQuality, ...] = ()
    rolled_back_at: float | None = None
    rollback_cause: str = ""
    observe_ended_at: float | None = None
    facts: int = 0

    @classmethod
    def from_facts(cls, facts: Iterable[Fact]) -> RolloutStatus:
        """Fold facts in order from an empty status."""
        status = cls()
        for fact in facts:
            status = status.apply(fact)
        return status

    @property
    def started(self) -> bool:
        """Whether a STARTED fact has been recorded."""
        return self.started_at is not None

    def apply(self, fact: Fact) -> RolloutStatus:
        """The status after one more fact (a new value; this one is unchanged)."""
        s = replace(self, facts=self.facts + 1)
        d = fact.data
        match fact.kind:
            case FactKind.STARTED:
                if s.started_at is not None:
                    raise InvalidInputError("rollout already started")
                stable = d.get("stable")
                overrides = d.get("spec", {})
                return replace(
                    s,
                    candidate=_text(d, "candidate"),
                    stable=None if stable is None else str(stable),
                    spec_overrides=dict(overrides) if isinstance(overrides, Mapping) else {},
                    started_at=fact.at,
                )
            case FactKind.STEP_ENTERED:
                index = d.get("index")
                weight = d.get("weight_bp")
                if not isinstance(index, int) or not isinstance(weight, int):
                    raise InvalidInputError("step_entered needs integer index and weight_bp")
                return replace(
                    s,
                    step_index=index,
                    step_weight_bp=weight,
                    step_entered_at=fact.at,
                    requests_in_step=0,
                    readings=(),
                    resumed_at=None,
                    promote_requests=(),
                )
            case FactKind.REQUESTS:
                n = d.get("n")
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise InvalidInputError("requests fact needs an integer n >= 0")
                return replace(s, requests_in_step=s.requests_in_step + n)
            case FactKind.READING:
                reading = Reading.from_fact_data(fact.at, d)
                return replace(s, readings=(*s.readings, reading))
            case FactKind.ABORT:
                if s.aborted:
                    return s
                return replace(
                    s,
                    aborted=True,
                    abort_at=fact.at,
                    abort_actor=_text(d, "actor"),
                    abort_reason=_text(d, "reason"),
                )
            case FactKind.PAUSE:
                return replace(
                    s,
                    paused=True,
                    pause_source=_text(d, "source") or "human",
                    pause_reason=_text(d, "reason"),
                )
            case FactKind.RESUME:
                if not s.paused:
                    return s
                return replace(
                    s, paused=False, pause_source="", pause_reason="", resumed_at=fact.at
                )
            case FactKind.PROMOTE:
                request = (fact.at, _text(d, "actor"))
                return replace(s, promote_requests=(*s.promote_requests, request))
            case FactKind.HOLD_EXTENDED:
                index = d.get("index")
                if not isinstance(index, int):
                    raise InvalidInputError("hold_extended needs an integer index")
                return replace(s, hold_extended_steps=s.hold_extended_steps | {index})
            case FactKind.SHADOW_STARTED:
                mirror = d.get("mirror")
                if mirror is not None and not isinstance(mirror, str):
                    raise InvalidInputError("shadow_started: mirror must be a release sha256")
                return replace(s, shadow_started_at=fact.at, shadow_mirror=mirror or None)
            case FactKind.SHADOW_ENDED:
                return replace(s, shadow_ended_at=fact.at, promote_requests=())
            case FactKind.COMPLETED:
                return replace(s, completed_at=fact.at, promote_requests=())
            case FactKind.MINUTE:
                minute = MinuteQuality.from_dict(d)
                return replace(s, minutes=(*s.minutes, minute))
            case FactKind.ROLLED_BACK:
                return replace(s, rolled_back_at=fact.at, rollback_cause=_text(d, "cause"))
            case FactKind.OBSERVE_ENDED:
                return replace(s, observe_ended_at=fact.at)
        raise InvalidInputError(f"unhandled fact kind {fact.kind}")  # pragma: no cover

    def latest(self) -> Reading:
        """The most recent reading of each monitor in the current step, merged into one."""
        latency = errors = quality = None
        at = self.step_entered_at or 0.0
        for r in self.readings:
            latency = r.latency if r.latency is not None else latency
            errors = r.errors if r.errors is not None else errors
            quality = r.quality if r.quality is not None else quality
            at = r.at
        return Reading(at=at, latency=latency, errors=errors, quality=quality)
