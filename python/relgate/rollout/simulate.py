"""Replay a recorded timeline of readings and commands through the real controller.

``relgate roll simulate TIMELINE`` answers "what would the rollout have done?" for a file of
timestamped events, with a fake clock, through the same ``RolloutController`` and the same pure
phase function the server runs. Nothing is routed and nothing is stored: the routing calls and
receipts are captured and returned.

Timeline format (YAML or JSON)::

    name: healthy rollout            # optional
    spec: {thresholds: {...}}        # optional RolloutSpec overrides (cold_start: true: shadow)
    candidate: v2                    # optional labels
    stable: v1
    tick_s: 10                       # the controller ticks every tick_s seconds (default 10)
    until: 1500                      # stop time (default: the last event)
    events:                          # times are seconds from the start
      - at: 30
        requests: 300                # candidate requests since the previous event
        latency: {candidate_p95_s: .., stable_p95_s: .., candidate_count: .., stable_count: ..}
        errors: {candidate_5xx: .., candidate_total: .., stable_5xx: .., stable_total: ..}
        quality: {slices: [{slice: law, n: 50, rho: 0.41, ceiling: 0.45}]}  # or judge_error
      - at: 60
        command: promote             # abort | pause | resume | promote
        actor: alice
        reason: "looks good"
      - at: 1500
        minute: {minute_start: 1440, slices: {law: {q: 0.5, n: 40}}}  # observer, after 100%
    expect: [checkpoint_promote, checkpoint_promote]   # optional: receipt kinds, in order

Events at the same time apply in file order, commands before the tick that reads them. The
simulation ends at a terminal phase (completed, aborted, rolled back); later events are unused.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from relgate.errors import InvalidInputError
from relgate.rollout.controller import MemoryFactLog, Readings, RolloutController
from relgate.rollout.monitors import ErrorRateReading, LatencyReading, QualityReading
from relgate.rollout.observe import MinuteQuality
from relgate.rollout.phase import TERMINAL_PHASES, Phase
from relgate.rollout.spec import RolloutSpec

__all__ = ["SimReceipt", "SimulationResult", "Timeline", "load_timeline", "simulate"]

_COMMANDS = ("abort", "pause", "resume", "promote")
_EVENT_KEYS = {
    "at",
    "requests",
    "latency",
    "errors",
    "quality",
    "minute",
    "command",
    "actor",
    "reason",
}


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One timestamped event of a timeline."""

    at: float
    readings: Readings = field(default_factory=Readings)
    command: str | None = None
    actor: str = "simulator"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Timeline:
    """A parsed timeline."""

    name: str
    spec: RolloutSpec
    candidate: str
    stable: str | None
    tick_s: float
    until: float
    events: tuple[TimelineEvent, ...]
    expect: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class SimReceipt:
    """A receipt the rollout would have emitted."""

    at: float
    kind: str
    evidence: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """The receipts, the routing calls and the phase at the end."""

    name: str
    receipts: tuple[SimReceipt, ...]
    routing: tuple[tuple[float, str, Any], ...]
    final_phase: Phase
    final_reason: str
    ended_at: float
    expect: tuple[str, ...] | None

    @property
    def kinds(self) -> list[str]:
        """Receipt kinds in order."""
        return [r.kind for r in self.receipts]

    @property
    def matches_expectation(self) -> bool | None:
        """Whether the receipt kinds equal the timeline's ``expect`` (None: nothing expected)."""
        return None if self.expect is None else tuple(self.kinds) == self.expect

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``relgate roll simulate --json``)."""
        return {
            "name": self.name,
            "receipts": [
                {"at": r.at, "kind": r.kind, "evidence": r.evidence} for r in self.receipts
            ],
            "routing": [{"at": at, "call": call, "arg": arg} for at, call, arg in self.routing],
            "final_phase": str(self.final_phase),
            "final_reason": self.final_reason,
            "ended_at": self.ended_at,
            "expect": None if self.expect is None else list(self.expect),
            "matches_expectation": self.matches_expectation,
        }


def _event(raw: Any, index: int) -> TimelineEvent:
    where = f"timeline event {index}"
    if not isinstance(raw, Mapping):
        raise InvalidInputError(f"{where}: expected a mapping")
    unknown = sorted(set(raw) - _EVENT_KEYS)
    if unknown:
        raise InvalidInputError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
    at = raw.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or at < 0:
        raise InvalidInputError(f"{where}: at must be a number of seconds >= 0")
    requests = raw.get("requests", 0)
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 0:
        raise InvalidInputError(f"{where}: requests must be an integer >= 0")
    minutes_raw = raw.get("minute")
    if minutes_raw is None:
        minutes: tuple[MinuteQuality, ...] = ()
    elif isinstance(minutes_raw, list):
        minutes = tuple(MinuteQuality.from_dict(m) for m in minutes_raw)
    else:
        minutes = (MinuteQuality.from_dict(minutes_raw),)
    try:
        readings = Readings(
            requests=requests,
            latency=None if "latency" not in raw else LatencyReading.from_dict(raw["latency"]),
            errors=None if "errors" not in raw else ErrorRateReading.from_dict(raw["errors"]),
            quality=None if "quality" not in raw else QualityReading.from_dict(raw["quality"]),
            minutes=minutes,
        )
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
    command = raw.get("command")
    if command is not None and command not in _COMMANDS:
        raise InvalidInputError(f"{where}: command must be one of {', '.join(_COMMANDS)}")
    return TimelineEvent(
        at=float(at),
        readings=readings,
        command=command,
        actor=str(raw.get("actor", "simulator")),
        reason=str(raw.get("reason", "")),
    )


def parse_timeline(data: Any) -> Timeline:
    """Validate a timeline document (already decoded from YAML or JSON)."""
    if not isinstance(data, Mapping):
        raise InvalidInputError("timeline: expected a mapping at the top level")
    known = {"name", "spec", "candidate", "stable", "tick_s", "until", "events", "expect"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInputError(f"timeline: unknown field(s) {', '.join(map(str, unknown))}")
    spec = RolloutSpec.from_dict(data.get("spec") or {})
    raw_events = data.get("events")
    if not isinstance(raw_events, list) or not raw_events:
        raise InvalidInputError("timeline: events must be a non-empty list")
    events = tuple(_event(e, i) for i, e in enumerate(raw_events))
    if any(b.at < a.at for a, b in itertools.pairwise(events)):
        raise InvalidInputError("timeline: events must be in time order")
    tick = data.get("tick_s", 10)
    if isinstance(tick, bool) or not isinstance(tick, int | float) or not tick > 0:
        raise InvalidInputError("timeline: tick_s must be a positive number")
    until = data.get("until", events[-1].at)
    if isinstance(until, bool) or not isinstance(until, int | float) or until < events[-1].at:
        raise InvalidInputError("timeline: until must be a number >= the last event's time")
    expect = data.get("expect")
    if expect is not None and (
        not isinstance(expect, list) or not all(isinstance(k, str) for k in expect)
    ):
        raise InvalidInputError("timeline: expect must be a list of receipt kinds")
    stable = data.get("stable", None if spec.cold_start else "stable")
    return Timeline(
        name=str(data.get("name", "timeline")),
        spec=spec,
        candidate=str(data.get("candidate", "candidate")),
        stable=None if stable is None else str(stable),
        tick_s=float(tick),
        until=float(until),
        events=events,
        expect=None if expect is None else tuple(expect),
    )


def load_timeline(path: str | Path) -> Timeline:
    """Read and validate a timeline file (``.json``, else YAML)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read timeline {p}: {exc}") from exc
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"timeline {p} is not valid {p.suffix or 'YAML'}: {exc}") from exc
    try:
        return parse_timeline(data)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{p}: {exc}") from exc


class _CaptureRouting:
    def __init__(self, clock: list[float]) -> None:
        self.calls: list[tuple[float, str, Any]] = []
        self._clock = clock

    def set_weight(self, weight_bp: int) -> None:
        self.calls.append((self._clock[0], "set_weight", weight_bp))

    def swap_to(self, release: str) -> None:
        self.calls.append((self._clock[0], "swap_to", release))

    def set_shadow(self, enabled: bool) -> None:
        self.calls.append((self._clock[0], "set_shadow", enabled))


def _merge(pending: list[Readings]) -> Readings:
    """Readings of several events delivered at one tick: counts add up, the latest wins."""
    out = Readings()
    for r in pending:
        out = Readings(
            requests=out.requests + r.requests,
            latency=r.latency or out.latency,
            errors=r.errors or out.errors,
            quality=r.quality or out.quality,
            minutes=(*out.minutes, *r.minutes),
        )
    return out


def simulate(timeline: Timeline) -> SimulationResult:
    """Run the timeline through a ``RolloutController`` with a fake clock."""
    now = [0.0]
    pending: list[Readings] = []
    receipts: list[SimReceipt] = []
    routing = _CaptureRouting(now)

    def readings() -> Readings:
        merged = _merge(pending)
        pending.clear()
        return merged

    def record(kind: str, evidence: dict[str, Any]) -> None:
        receipts.append(SimReceipt(now[0], kind, evidence))

    controller = RolloutController(
        timeline.spec,
        candidate=timeline.candidate,
        stable=timeline.stable,
        clock=lambda: now[0],
        readings=readings,
        routing=routing,
        record=record,
        log=MemoryFactLog(),
    )
    ticks = math.floor(timeline.until / timeline.tick_s)
    times = sorted(
        {e.at for e in timeline.events} | {i * timeline.tick_s for i in range(ticks + 1)}
    )
    events = list(timeline.events)
    decision = controller.tick()[-1]  # start at t = 0
    for t in times:
        now[0] = t
        while events and events[0].at <= t:
            event = events.pop(0)
            pending.append(event.readings)
            if event.command == "abort":
                controller.abort(event.actor, event.reason)
            elif event.command == "pause":
                controller.pause(event.actor, event.reason)
            elif event.command == "resume":
                controller.resume_rollout(event.actor, event.reason)
            elif event.command == "promote":
                controller.promote(event.actor, event.reason)
        decision = controller.tick()[-1]
        if decision.phase in TERMINAL_PHASES:
            break
    return SimulationResult(
        name=timeline.name,
        receipts=tuple(receipts),
        routing=tuple(routing.calls),
        final_phase=decision.phase,
        final_reason=decision.reason,
        ended_at=now[0],
        expect=timeline.expect,
    )
