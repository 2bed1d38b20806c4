"""The rollout controller's plumbing inside ``relgate serve``: the store-backed fact log, the
tick clock, and the route lookup.

- ``StoreFactLog``: the controller's ``FactLog`` and ``record`` sink in one object. The
  controller calls ``record`` (receipt) and then ``append`` (facts); this log stages the
  receipt and commits it with the facts in ONE ``Store.record_decision`` transaction
  (docs/design.md §9). Facts that are decisions or human commands are committed at once (with
  their own receipt when the controller gave none: rollout_start, rollout_pause, ...); readings
  and request counts are written at once as the rollout's evidence (``rollout_evidence``, each
  with its index in the fact sequence) and committed as facts with the next receipt. After a
  crash, or on a newly elected leader, the rollout therefore resumes at its last decision with
  the same step, hold clock, request count and readings: it decides on the same evidence.
  Every write carries the leader's fence (``relgate.store.control``): a deposed leader's write
  is refused in its own transaction.
- ``TickClock``: the clock a controller reads during a tick (frozen at the readings' time).
- ``StartEvidence``: adds the gate clearance to a rollout's first receipt.
- ``manifest_routes``: a cached release sha -> ``ReleaseRoute`` over the store's manifests.
- ``SteadyRouting``: a rollout's routing that republishes nothing unchanged (followers rebuild
  their view from the store often).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from relgate.app.probes import ProbeOptions, RolloutProbe
from relgate.app.routing import LOCAL_REPLICA, RolloutRouting
from relgate.errors import InvalidTransitionError
from relgate.judge.base import Judge
from relgate.receipts.model import Receipt, ReceiptKind
from relgate.rollout.controller import RolloutController
from relgate.rollout.phase import Phase, PhaseDecision, rollout_over
from relgate.rollout.status import Fact, FactKind, RolloutStatus
from relgate.routing import FULL_WEIGHT_BP, FleetAcks, ReleaseRoute, RoutingChange
from relgate.store import Store
from relgate.store.control import Fence

__all__ = [
    "FACT_KIND",
    "StartEvidence",
    "SteadyRouting",
    "StoreFactLog",
    "TickClock",
    "last_fact_time",
    "manifest_routes",
    "swap_acked_write",
]

log = logging.getLogger("relgate.rollout")

#: The store fact kind under which every rollout fact is persisted (payload: rollout_id, fact).
FACT_KIND = "rollout_fact"

# Facts that must survive a crash the moment they happen: decisions and human commands.
_DURABLE = frozenset(
    {
        FactKind.STARTED,
        FactKind.STEP_ENTERED,
        FactKind.ABORT,
        FactKind.PAUSE,
        FactKind.RESUME,
        FactKind.PROMOTE,
        FactKind.HOLD_EXTENDED,
        FactKind.SHADOW_STARTED,
        FactKind.SHADOW_ENDED,
        FactKind.COMPLETED,
        FactKind.ROLLED_BACK,
        FactKind.OBSERVE_ENDED,
    }
)
# The receipt a durable fact gets when the controller emitted none with it.
_OWN_RECEIPT = {
    FactKind.STARTED: "rollout_start",
    FactKind.ABORT: "rollout_abort",
    FactKind.PAUSE: "rollout_pause",
    FactKind.RESUME: "rollout_resume",
    FactKind.PROMOTE: "rollout_promote",
    FactKind.OBSERVE_ENDED: "rollout_complete",
}


OnReceipt = Callable[[Receipt], None]
FenceSource = Callable[[], Fence]


class StoreFactLog:
    """``FactLog`` + ``record`` sink of one rollout, backed by ``Store.record_decision``.

    Pass ``log.record`` as the controller's ``record`` and ``log`` as its ``log``.
    """

    def __init__(
        self,
        store: Store,
        *,
        tenant: str,
        candidate: str,
        stable: str | None,
        rollout_id: str,
        on_receipt: OnReceipt | None = None,
        fence: FenceSource | None = None,
    ) -> None:
        self._store = store
        self._fence = fence
        self.tenant = tenant
        self.candidate = candidate
        self.stable = stable
        self.rollout_id = rollout_id
        self._on_receipt = on_receipt
        self._staged: list[tuple[str, dict[str, Any]]] = []
        self._pending: list[Fact] = []
        self.receipts: list[Receipt] = []
        # Facts committed with receipts, and facts persisted (committed + evidence).
        self._committed = 0
        self._persisted = 0

    def load(self) -> Sequence[Fact]:
        """Every persisted fact of this rollout, in order: those committed with a receipt,
        then the evidence gathered since (which the next receipt will commit)."""
        out = []
        for row in self._store.facts(self.candidate, FACT_KIND, tenant=self.tenant):
            if row.payload.get("rollout_id") == self.rollout_id:
                out.append(Fact.from_dict(row.payload.get("fact")))
        tail = [
            Fact.from_dict(f)
            for f in self._store.control.evidence(
                tenant=self.tenant, rollout_id=self.rollout_id, from_n=len(out)
            )
        ]
        self._committed = len(out)
        self._persisted = len(out) + len(tail)
        self._pending = tail
        self._staged = []
        return out + tail

    def _fence_now(self) -> Fence | None:
        return None if self._fence is None else self._fence()

    def record(self, kind: str, evidence: dict[str, Any]) -> None:
        """Stage a receipt; ``append`` commits it with its facts."""
        self._staged.append((kind, evidence))

    def append(self, facts: Sequence[Fact]) -> None:
        """Persist ``facts``: now, with the staged receipt or their own, when they are
        decisions or commands; otherwise with the next receipt."""
        applied = self._pending  # buffered earlier: already part of the controller's status
        self._pending = applied + list(facts)
        durable = [f for f in facts if f.kind in _DURABLE]
        if not self._staged and not durable:
            try:
                self._store.control.record_evidence(
                    tenant=self.tenant,
                    rollout_id=self.rollout_id,
                    facts=[(self._persisted + i, f.to_dict()) for i, f in enumerate(facts)],
                    fence=self._fence_now(),
                    now=self._store.now(),
                )
            except BaseException:
                self._pending = applied
                raise
            self._persisted += len(facts)
            return
        staged, self._staged = self._staged, []
        if not staged:
            first = durable[0]
            evidence = {
                "candidate": self.candidate,
                "stable": self.stable,
                "actor": str(first.data.get("actor", "")) or "controller",
                "reason": str(first.data.get("reason", "")),
                "facts": [f.to_dict() for f in durable],
            }
            staged = [(_OWN_RECEIPT.get(first.kind, "rollout_start"), evidence)]
        kinds = {f.kind for f in self._pending}
        live: str | None = None
        if FactKind.COMPLETED in kinds or FactKind.SHADOW_ENDED in kinds:
            live = self.candidate
        elif FactKind.ROLLED_BACK in kinds and self.stable is not None:
            live = self.stable
        rows_of, self._pending = self._pending, []
        rows = [(FACT_KIND, {"rollout_id": self.rollout_id, "fact": f.to_dict()}) for f in rows_of]
        try:
            # One transaction per receipt; the facts go with the last one (the decision they
            # record). Two receipts happen only at a cold start (rollout_start, shadow_start).
            for i, (kind, evidence) in enumerate(staged):
                last = i == len(staged) - 1
                self._commit(kind, evidence, rows if last else [], live if last else None)
            self._committed += len(rows_of)
            self._persisted = self._committed
        except BaseException:
            # Nothing of the failed transaction was written. The controller did not apply
            # this call's facts (it applies them only after ``append`` returns) and will
            # decide again; the facts it had already applied stay buffered.
            self._pending = applied
            raise
        try:
            self._store.control.prune_evidence(
                tenant=self.tenant, rollout_id=self.rollout_id, committed=self._committed
            )
        except Exception:  # only tidying: rows below the committed count are never read
            log.warning("rollout %s: could not prune its committed evidence", self.rollout_id)

    def _commit(
        self,
        kind: str,
        evidence: dict[str, Any],
        rows: list[tuple[str, dict[str, Any]]],
        live: str | None,
    ) -> None:
        evidence = {**evidence, "rollout_id": self.rollout_id}
        fence = self._fence_now()
        if fence is not None:
            evidence["leader_epoch"] = fence.epoch
        if live is not None:
            evidence["live_release"] = live
        actor = str(evidence.get("actor") or "controller")
        receipt = self._store.record_decision(
            tenant=self.tenant,
            release_sha=self.candidate,
            kind=kind,
            evidence=evidence,
            actor=actor[:256],
            reason=str(evidence.get("reason", ""))[:2000],
            facts=rows,
            fence=fence,
        )
        self.receipts.append(receipt)
        if self._on_receipt is not None:
            self._on_receipt(receipt)

    def stage_first(self, kind: str, evidence: dict[str, Any]) -> None:
        """Stage a receipt ahead of any the controller staged (the rollout_start)."""
        self._staged.insert(0, (kind, evidence))


def manifest_routes(store: Store) -> Callable[[str], ReleaseRoute]:
    """A cached ``sha -> ReleaseRoute`` over the store's manifests (manifests never change)."""
    cache: dict[str, ReleaseRoute] = {}
    lock = threading.Lock()

    def route_of(sha: str) -> ReleaseRoute:
        with lock:
            hit = cache.get(sha)
        if hit is not None:
            return hit
        manifest = store.manifest(sha)
        route = ReleaseRoute.from_manifest(manifest)
        with lock:
            cache[sha] = route
        return route

    return route_of


def dumps_evidence(value: Mapping[str, Any]) -> str:
    """Compact JSON of an evidence mapping (for logs)."""
    return json.dumps(value, sort_keys=True, default=str)[:2000]


class TickClock:
    """The controller's clock: the server's clock, except during a tick, when it stays at the
    time the tick's readings were gathered for. A replay takes real seconds (many clock seconds
    on a compressed clock); the decision must be taken at the time its readings describe, not
    after a dwell the replay itself let pass without its result."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.frozen: float | None = None

    def __call__(self) -> float:
        frozen = self.frozen
        return self._clock() if frozen is None else frozen


class StartEvidence:
    """Adds the gate clearance to the rollout_start receipt (a ``FactLog`` wrapper)."""

    def __init__(self, inner: StoreFactLog, evidence: dict[str, Any]) -> None:
        self._inner = inner
        self._evidence: dict[str, Any] | None = evidence

    def load(self) -> Sequence[Fact]:
        return self._inner.load()

    def append(self, facts: Sequence[Fact]) -> None:
        if self._evidence is not None and any(f.kind is FactKind.STARTED for f in facts):
            self._inner.stage_first("rollout_start", {"reason": "", **self._evidence})
            self._evidence = None
        self._inner.append(facts)


# (stable, candidate, weight_bp, shadow) a routing snapshot serves.
_Serving = tuple[str, str | None, int, bool]


class SteadyRouting(RolloutRouting):
    """A rollout's routing that publishes only changes: a follower rebuilds its view from the
    store whenever the leader writes, and must not republish (and drain) the same routing."""

    def _publish_if_new(
        self, want: tuple[str, str | None, int, bool], act: Callable[[], None]
    ) -> None:
        table = self._table
        snap = None if table is None else table.snapshot
        if snap is not None:
            have = (
                snap.stable.release_sha256,
                None if snap.candidate is None else snap.candidate.release_sha256,
                snap.weight_bp if snap.candidate is not None else 0,
                snap.shadow,
            )
            if have == want:
                return
        act()

    def set_weight(self, weight_bp: int) -> None:
        if self._mirror is None:
            return
        want: _Serving
        if weight_bp >= FULL_WEIGHT_BP:
            want = (self._candidate, None, 0, False)
        else:
            want = (self._mirror, self._candidate, weight_bp, False)
        self._publish_if_new(want, lambda: super(SteadyRouting, self).set_weight(weight_bp))

    def swap_to(self, release: str) -> None:
        want: _Serving = (release, None, 0, False)
        self._publish_if_new(want, lambda: super(SteadyRouting, self).swap_to(release))

    def set_shadow(self, enabled: bool) -> None:
        if self._mirror is None:
            return
        want: _Serving
        if enabled:
            want = (self._mirror, self._candidate, FULL_WEIGHT_BP, True)
        else:
            want = (self._mirror, None, 0, False)
        self._publish_if_new(want, lambda: super(SteadyRouting, self).set_shadow(enabled))


def last_fact_time(status: RolloutStatus) -> float:
    """The latest fact time of ``status`` (facts never go back in time, even when a tick is
    frozen at its readings' time)."""
    times = [
        t
        for t in (status.started_at, status.step_entered_at, status.resumed_at,
                  status.completed_at, status.abort_at)
        if t is not None
    ]  # fmt: skip
    return max(times, default=0.0)


AnchorSource = Callable[[str], Mapping[str, Sequence[str]]]


@dataclass(frozen=True)
class RolloutOptions:
    """Knobs of the rollout runtime (all injectable for tests)."""

    clock: Callable[[], float] = time.time
    tick_interval_s: float = 1.0
    drain_deadline_s: float = 30.0
    # How long a swap waits for every gateway replica's ack (docs/scale-out-gateway.md).
    ack_deadline_s: float = 5.0
    probe: ProbeOptions = field(default_factory=ProbeOptions)
    judge: Callable[[], Judge] | None = None
    anchors: AnchorSource | None = None
    #: How long the leader lease lasts (``relgate.app.leader``).
    lease_ttl_s: float = 5.0


@dataclass
class ActiveRollout:
    """One rollout: its controller, probe and fact log, and what watchers wait on."""

    rollout_id: str
    tenant: str
    controller: RolloutController
    probe: RolloutProbe
    log: StoreFactLog
    clock: TickClock
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    revision: int = 0
    last_receipt: Receipt | None = None
    ticking: bool = True
    last_decision: PhaseDecision | None = None

    @property
    def status(self) -> RolloutStatus:
        """The folded facts."""
        return self.controller.status

    def phase(self) -> PhaseDecision:
        """The phase now (pure)."""
        return self.controller.phase()

    @property
    def over(self) -> bool:
        """Nothing more will happen (``relgate.rollout.phase.rollout_over``)."""
        return rollout_over(self.phase().phase, self.status)


def refuse_early_shadow_promote(ar: ActiveRollout, now: float) -> None:
    """A promote queued during a shadow would be ignored (only one made after the shadow
    counts): refuse it now, with when it may be made, instead of accepting it silently."""
    started = ar.status.shadow_started_at
    if ar.phase().phase is not Phase.SHADOW or started is None:
        return
    ends = started + ar.controller.spec.shadow_s
    left = ends - now
    if left > 0:
        raise InvalidTransitionError(
            f"rollout {ar.rollout_id} is in its cold-start shadow for {left:.0f} s more "
            f"(shadow_s {ar.controller.spec.shadow_s:g}): promote once it has run its "
            "course, or start the rollout with a shorter shadow_s (--spec)"
        )


def swap_acked_write(
    store: Store, change: RoutingChange, acks: FleetAcks, subject: str | None
) -> Callable[[], Receipt] | None:
    """The write of a swap's ``swap_acked`` receipt: which replicas acked it, how long each
    took, which did not. None when only the in-process gateway serves the tenant (it acks in
    the publishing call: no receipt for it)."""
    names = {n for n, _ in acks.acked} | set(acks.missing)
    if not names - {LOCAL_REPLICA}:
        return None
    evidence = {**acks.evidence(), "serves": change.serves, "candidate": change.candidate,
                "weight_bp": change.weight_bp}  # fmt: skip
    outcome = "acked by all" if acks.complete else f"{len(acks.missing)} replica(s) missing"
    return functools.partial(
        store.record_decision,
        tenant=change.tenant,
        release_sha=subject or change.serves,
        kind=ReceiptKind.SWAP_ACKED,
        evidence=evidence,
        actor="relgate-fleet",
        reason=f"routing v{change.version}: {outcome}",
        measure_weights=False,
    )
