"""The rollout controller: the single writer that turns readings and commands into facts,
asks the pure phase function what to do, and does it.

Everything it touches is injected, so the same loop runs in ``relgate serve``, in tests with a
fake clock, and in ``relgate roll simulate``:

- ``clock()`` -> seconds;
- ``readings()`` -> ``Readings`` gathered since the previous call (the gateway's counters and
  histograms, a replay result, observer minutes);
- ``routing``: ``set_weight(bp)``, ``swap_to(release)``, ``set_shadow(enabled)``;
- ``record(kind, evidence)``: the receipt sink;
- ``log``: a ``FactLog`` that persists facts (the store plugs in here).

Per transition the controller calls the routing first, then ``record`` for the receipt, then
``log.append`` for the facts. A store that wants the decision and its receipt in one
transaction (docs/design.md §9) stages what ``record`` gives it and commits it with the facts in
``append``. After a crash, a controller built with ``resume`` folds the persisted facts back
into the same status, re-applies the routing those facts imply (``reconcile``), and carries on
at the same step with the same hold clock. Human commands are queued and applied by ``tick``,
so there is one writer even when gRPC handlers run on other threads.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from relgate.errors import InvalidInputError, InvalidTransitionError
from relgate.rollout.monitors import ErrorRateReading, LatencyReading, QualityReading
from relgate.rollout.observe import MinuteQuality
from relgate.rollout.phase import TERMINAL_PHASES, Action, Phase, PhaseDecision, compute_phase
from relgate.rollout.spec import FULL_WEIGHT_BP, RolloutSpec
from relgate.rollout.status import Fact, FactKind, Reading, RolloutStatus

__all__ = [
    "FactLog",
    "MemoryFactLog",
    "Readings",
    "RolloutController",
    "Routing",
]

_MAX_ACTIONS_PER_TICK = 8


@dataclass(frozen=True, slots=True)
class Readings:
    """What the data plane measured since the previous call (all optional).

    ``requests`` is the number of requests the candidate served since the previous call (a
    delta, so that a gateway restart does not double count); latency and 5xx readings cover the
    provider's current comparison window; ``minutes`` are observer minutes (after 100%).
    """

    requests: int = 0
    latency: LatencyReading | None = None
    errors: ErrorRateReading | None = None
    quality: QualityReading | None = None
    minutes: tuple[MinuteQuality, ...] = ()


class Routing(Protocol):
    """The gateway's side of a rollout: one atomic routing-snapshot change per call."""

    def set_weight(self, weight_bp: int) -> None:
        """Serve the candidate to sessions with ``bucket < weight_bp``."""

    def swap_to(self, release: str) -> None:
        """Make ``release`` the only release served: model, prompt and routing together."""

    def set_shadow(self, enabled: bool) -> None:
        """Mirror traffic to the candidate without serving its answers."""


class FactLog(Protocol):
    """Persistence of one rollout's facts (append-only)."""

    def load(self) -> Sequence[Fact]:
        """Every fact recorded so far, in order."""

    def append(self, facts: Sequence[Fact]) -> None:
        """Persist ``facts`` after the existing ones (all or none)."""


@dataclass
class MemoryFactLog:
    """An in-memory ``FactLog`` (tests, simulation). ``facts`` survives a dropped controller."""

    facts: list[Fact] = field(default_factory=list)

    def load(self) -> Sequence[Fact]:
        """Every fact so far."""
        return list(self.facts)

    def append(self, facts: Sequence[Fact]) -> None:
        """Append facts."""
        self.facts.extend(facts)


RecordFn = Callable[[str, dict[str, Any]], None]


class RolloutController:
    """Drives one rollout of ``candidate`` against ``stable`` (None on a cold start)."""

    def __init__(
        self,
        spec: RolloutSpec,
        *,
        candidate: str,
        stable: str | None,
        clock: Callable[[], float],
        readings: Callable[[], Readings],
        routing: Routing,
        record: RecordFn,
        log: FactLog | None = None,
        rollout_id: str = "",
        mirror: str | None = None,
    ) -> None:
        if (stable is None) != spec.cold_start:
            raise InvalidInputError(
                "a rollout without a stable release is a cold start (spec.cold_start), and only"
            )
        self.spec = spec
        self.rollout_id = rollout_id
        self.candidate = candidate
        self.stable = stable
        # A cold start's shadow mirrors the live release: its answers are scored against this
        # one's, and its canary (after a passing shadow) splits traffic with it.
        self.mirror = mirror
        self._clock = clock
        self._readings = readings
        self._routing = routing
        self._record = record
        self._log: FactLog = log if log is not None else MemoryFactLog()
        self._commands: queue.SimpleQueue[Fact] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._status = RolloutStatus.from_facts(self._log.load())
        if self._status.started and self._status.candidate != candidate:
            raise InvalidInputError("the fact log belongs to another candidate release")
        if self._status.shadow_mirror is not None:
            self.mirror = self._status.shadow_mirror

    @classmethod
    def resume(
        cls,
        log: FactLog,
        *,
        clock: Callable[[], float],
        readings: Callable[[], Readings],
        routing: Routing,
        record: RecordFn,
        rollout_id: str = "",
    ) -> RolloutController:
        """Rebuild a controller from persisted facts alone (after a crash) and reconcile the
        routing with them. The spec, candidate and stable come from the STARTED fact."""
        status = RolloutStatus.from_facts(log.load())
        if not status.started or status.candidate is None:
            raise InvalidInputError("cannot resume: the fact log has no started rollout")
        spec = RolloutSpec.from_dict(status.spec_overrides or {})
        controller = cls(
            spec,
            candidate=status.candidate,
            stable=status.stable,
            clock=clock,
            readings=readings,
            routing=routing,
            record=record,
            log=log,
            rollout_id=rollout_id,
        )
        controller.reconcile()
        return controller

    @property
    def status(self) -> RolloutStatus:
        """The current status (a value)."""
        return self._status

    def phase(self) -> PhaseDecision:
        """The phase at the clock's time (pure; nothing is applied)."""
        return compute_phase(self.spec, self._status, self._clock())

    # Commands: queued, applied by the writer loop in ``tick``.

    def abort(self, actor: str, reason: str) -> None:
        """Queue an abort: traffic returns to the stable release. Beats pause and promote."""
        self._command(FactKind.ABORT, actor, reason)

    def pause(self, actor: str, reason: str) -> None:
        """Queue a pause (beats promote)."""
        self._command(FactKind.PAUSE, actor, reason, source="human")

    def resume_rollout(self, actor: str, reason: str = "") -> None:
        """Queue a resume; the step's deadline restarts from now."""
        if not self._status.paused:
            raise InvalidTransitionError("the rollout is not paused")
        self._command(FactKind.RESUME, actor, reason)

    def promote(self, actor: str, reason: str = "") -> None:
        """Queue a promote: skip the rest of the hold once every monitor passes (or end a
        completed shadow)."""
        self._command(FactKind.PROMOTE, actor, reason)

    def _command(self, kind: FactKind, actor: str, reason: str, **extra: str) -> None:
        phase = self.phase().phase
        if phase in TERMINAL_PHASES or phase in (Phase.OBSERVING, Phase.PENDING):
            raise InvalidTransitionError(f"cannot {kind} a rollout in phase {phase}")
        data = {"actor": actor, "reason": reason, **extra}
        self._commands.put(Fact(kind, 0.0, data))

    def end_observation(self, reason: str) -> None:
        """Stop observing a completed rollout (a newer release took over, or a manual
        rollback): an OBSERVE_ENDED fact. No-op unless the rollout completed and observes."""
        with self._lock:
            s = self._status
            if s.completed_at is None or s.observe_ended_at is not None:
                return
            if s.rolled_back_at is not None:
                return
            self._commit([Fact(FactKind.OBSERVE_ENDED, self._clock(), {"reason": reason})], [])

    # The writer loop.

    def tick(self) -> list[PhaseDecision]:
        """One iteration: apply queued commands and new readings as facts, then take actions
        until the phase function asks for none. Returns every decision taken, then the last
        (no-action) one."""
        with self._lock:
            now = self._clock()
            facts = self._drain_commands(now)
            if self._status.started:
                facts.extend(self._reading_facts(now))
            # Going back to the stable release is the safe direction, so a rollback acts before
            # anything is written: the swap does not wait for the commits (the command's or the
            # readings', then the decision's), which is most of a rollback's latency on a busy
            # server. Every other action is taken after its facts are persisted.
            early = self._routes_back(facts, now)
            try:
                self._commit(facts, [])
                taken: list[PhaseDecision] = []
                for _ in range(_MAX_ACTIONS_PER_TICK):
                    decision = compute_phase(self.spec, self._status, now)
                    taken.append(decision)
                    if decision.action is Action.NONE:
                        break
                    self._apply(decision, now, routed_back=early)
            except BaseException:
                if early:
                    # Nothing recorded the rollback (the store failed, or this controller's
                    # leadership ended): the routing goes back to what is recorded, and the next
                    # tick decides again on fresh readings.
                    self.reconcile()
                raise
            return taken

    def _routes_back(self, facts: list[Fact], now: float) -> bool:
        """Whether this tick's first decision, on ``facts``, is a rollback; if so, route back
        now (``_apply`` then records it without routing again)."""
        status = self._status
        for fact in facts:
            status = status.apply(fact)  # invalid facts raise here, before any action
        if compute_phase(self.spec, status, now).action not in (Action.ROLLBACK, Action.REVERT):
            return False
        self._route_back()
        return True

    def run(
        self,
        *,
        stop: Callable[[], bool],
        sleep: Callable[[float], None],
        interval_s: float = 5.0,
    ) -> PhaseDecision:
        """Tick until a terminal phase or ``stop()``; ``sleep`` is injected (no real waits in
        tests). Returns the last decision."""
        decision = self.phase()
        while not stop():
            decision = self.tick()[-1]
            if decision.phase in TERMINAL_PHASES:
                break
            wait = interval_s
            if decision.wake_at is not None:
                wait = min(wait, max(0.0, decision.wake_at - self._clock()))
            sleep(wait)
        return decision

    def reconcile(self) -> None:
        """Re-apply the routing the facts imply (after a restart the gateway may hold an
        older snapshot)."""
        s = self._status
        if not s.started:
            return
        if s.rolled_back_at is not None:
            self._route_back()
        elif s.completed_at is not None:
            self._routing.swap_to(self.candidate)
        elif s.step_index >= 0:  # a canary (a cold start's, after its shadow passed)
            self._routing.set_weight(s.step_weight_bp)
        elif self.spec.cold_start:
            self._routing.set_shadow(s.shadow_ended_at is None)

    def _route_back(self) -> None:
        # A cold start has no previous release: going back means ending the shadow. (The phase
        # function never asks to roll a completed cold start back; see phase._observing.)
        if self.stable is None:
            self._routing.set_shadow(False)
        else:
            self._routing.swap_to(self.stable)

    def _drain_commands(self, now: float) -> list[Fact]:
        out: list[Fact] = []
        while True:
            try:
                fact = self._commands.get_nowait()
            except queue.Empty:
                return out
            out.append(Fact(fact.kind, now, fact.data))

    def _reading_facts(self, now: float) -> list[Fact]:
        if self.phase_is_terminal(now):
            return []
        r = self._readings()
        out = []
        if r.requests:
            if r.requests < 0:
                raise InvalidInputError("readings.requests must be >= 0")
            out.append(Fact(FactKind.REQUESTS, now, {"n": r.requests}))
        reading = Reading(at=now, latency=r.latency, errors=r.errors, quality=r.quality)
        data = reading.to_fact_data()
        if data:
            out.append(Fact(FactKind.READING, now, data))
        out.extend(Fact(FactKind.MINUTE, now, m.to_dict()) for m in r.minutes)
        return out

    def phase_is_terminal(self, now: float) -> bool:
        """Whether the rollout is over at ``now``."""
        return compute_phase(self.spec, self._status, now).phase in TERMINAL_PHASES

    def _commit(self, facts: list[Fact], receipts: list[tuple[str, dict[str, Any]]]) -> None:
        if not facts and not receipts:
            return
        status = self._status
        for fact in facts:
            status = status.apply(fact)  # validates before anything is persisted
        for kind, evidence in receipts:
            self._record(kind, evidence)
        self._log.append(facts)
        self._status = status

    def _evidence(self, decision: PhaseDecision, now: float) -> dict[str, Any]:
        return {
            "rollout_id": self.rollout_id,
            "candidate": self.candidate,
            "stable": self.stable,
            "phase": str(decision.phase),
            "action": str(decision.action),
            "at": now,
            "thresholds": self.spec.to_dict()["thresholds"],
            **decision.evidence,
        }

    def _apply(self, decision: PhaseDecision, now: float, *, routed_back: bool = False) -> None:
        s = self._status
        facts: list[Fact] = []
        match decision.action:
            case Action.START | Action.START_SHADOW:
                if not s.started:
                    data = {
                        "candidate": self.candidate,
                        "stable": self.stable,
                        "spec": self.spec.to_dict(),
                    }
                    facts.append(Fact(FactKind.STARTED, now, data))
                if decision.action is Action.START:
                    self._routing.set_weight(decision.weight_bp)
                    step = {"index": decision.step_index, "weight_bp": decision.weight_bp}
                    facts.append(Fact(FactKind.STEP_ENTERED, now, step))
                else:
                    self._routing.set_shadow(True)
                    shadow = {} if self.mirror is None else {"mirror": self.mirror}
                    facts.append(Fact(FactKind.SHADOW_STARTED, now, shadow))
            case Action.ADVANCE:
                self._routing.set_weight(decision.weight_bp)
                step = {"index": decision.step_index, "weight_bp": decision.weight_bp}
                facts.append(Fact(FactKind.STEP_ENTERED, now, step))
            case Action.COMPLETE | Action.END_SHADOW:
                if decision.action is Action.END_SHADOW:
                    self._routing.set_shadow(False)
                    facts.append(Fact(FactKind.SHADOW_ENDED, now))
                else:
                    self._routing.set_weight(FULL_WEIGHT_BP)
                # The candidate becomes the one release served: prompt, model and routing flip
                # together, and the observer takes over.
                self._routing.swap_to(self.candidate)
                if decision.step_index != s.step_index:
                    step = {"index": decision.step_index, "weight_bp": FULL_WEIGHT_BP}
                    facts.append(Fact(FactKind.STEP_ENTERED, now, step))
                facts.append(Fact(FactKind.COMPLETED, now))
            case Action.EXTEND_HOLD:
                facts.append(Fact(FactKind.HOLD_EXTENDED, now, {"index": s.step_index}))
            case Action.PAUSE:
                data = {"actor": "controller", "reason": decision.reason, "source": "inconclusive"}
                facts.append(Fact(FactKind.PAUSE, now, data))
            case Action.ROLLBACK | Action.REVERT:
                if not routed_back:
                    self._route_back()
                if decision.action is Action.REVERT:
                    cause = "abort"
                else:
                    cause = str(decision.evidence.get("cause", "monitor"))
                facts.append(Fact(FactKind.ROLLED_BACK, now, {"cause": cause, "to": self.stable}))
            case Action.NONE:  # pragma: no cover - tick stops before applying NONE
                return
        receipts = []
        if decision.receipt_kind is not None:
            receipts.append((str(decision.receipt_kind), self._evidence(decision, now)))
        self._commit(facts, receipts)
