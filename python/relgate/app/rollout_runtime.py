"""The rollout controller's plumbing inside ``relgate serve``: clocks, the store-backed fact
log, and the routing that swaps the gateway's snapshot.

- ``ScaledClock`` / ``ManualClock``: the one injectable clock used by the controller, the
  observer and the gateway's trace windows. ``ScaledClock`` runs ``scale`` times faster than the
  wall clock from a persisted anchor, so a restarted server continues the same timeline (a
  crash does not move a hold's clock backwards). ``ManualClock`` only moves when told to.
- ``StoreFactLog``: the controller's ``FactLog`` and ``record`` sink in one object. The
  controller calls ``record`` (receipt) and then ``append`` (facts); this log stages the
  receipt and commits it with the facts in ONE ``Store.record_decision`` transaction (DESIGN
  section 9). Facts that are decisions or human commands are committed at once (with their own
  receipt when the controller gave none: rollout_start, rollout_pause, ...); readings and
  request counts ride along with the next receipt. After a crash the rollout therefore resumes
  at its last decision with the same step and hold clock; the request count and readings since
  that decision are measured again (the hold can only get longer, never pass sooner).
- ``LiveRouting``: one gateway, one snapshot reference; every routing change is one new
  immutable snapshot (model, endpoint, prompt and routing of one release together) swapped in
  atomically, then a drain of the older snapshots on the gateway's loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relgate.errors import InvalidInputError
from relgate.gateway.server import DrainResult, Gateway
from relgate.receipts.model import Receipt
from relgate.rollout.status import Fact, FactKind
from relgate.routing import ReleaseRoute, RoutingSnapshot
from relgate.store import Store

__all__ = [
    "FACT_KIND",
    "LiveRouting",
    "ManualClock",
    "ScaledClock",
    "StoreFactLog",
    "SwapTiming",
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


class ScaledClock:
    """Seconds that run ``scale`` times faster than wall time, from a persisted anchor.

    ``now = anchor + (time.time() - anchor) * scale``. With ``anchor_file`` the first start
    writes the anchor and later starts read it, so the timeline survives a restart.
    """

    def __init__(self, scale: float = 1.0, anchor_file: Path | None = None) -> None:
        if not scale > 0:
            raise InvalidInputError(f"time scale must be > 0, got {scale}")
        self.scale = float(scale)
        anchor = time.time()
        if anchor_file is not None:
            if anchor_file.is_file():
                anchor = float(json.loads(anchor_file.read_text())["anchor"])
            else:
                anchor_file.write_text(json.dumps({"anchor": anchor}))
        self.anchor = anchor

    def __call__(self) -> float:
        if self.scale == 1.0:
            return time.time()
        return self.anchor + (time.time() - self.anchor) * self.scale


class ManualClock:
    """A clock that moves only when told (tests): ``advance(seconds)`` or ``set(t)``."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0); returns the new time."""
        if seconds < 0:
            raise InvalidInputError("a clock does not go backwards")
        with self._lock:
            self._t += seconds
            return self._t

    def set(self, t: float) -> None:
        """Jump to ``t`` (not earlier than now)."""
        with self._lock:
            if t < self._t:
                raise InvalidInputError("a clock does not go backwards")
            self._t = float(t)


OnReceipt = Callable[[Receipt], None]


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
    ) -> None:
        self._store = store
        self.tenant = tenant
        self.candidate = candidate
        self.stable = stable
        self.rollout_id = rollout_id
        self._on_receipt = on_receipt
        self._staged: list[tuple[str, dict[str, Any]]] = []
        self._pending: list[Fact] = []
        self.receipts: list[Receipt] = []

    def load(self) -> Sequence[Fact]:
        """Every persisted fact of this rollout, in order."""
        out = []
        for row in self._store.facts(self.candidate, FACT_KIND):
            if row.payload.get("rollout_id") == self.rollout_id:
                out.append(Fact.from_dict(row.payload.get("fact")))
        return out

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
        except BaseException:
            # Nothing of the failed transaction was written. The controller did not apply
            # this call's facts (it applies them only after ``append`` returns) and will
            # decide again; the facts it had already applied stay buffered.
            self._pending = applied
            raise

    def _commit(
        self,
        kind: str,
        evidence: dict[str, Any],
        rows: list[tuple[str, dict[str, Any]]],
        live: str | None,
    ) -> None:
        evidence = {**evidence, "rollout_id": self.rollout_id}
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
        )
        self.receipts.append(receipt)
        if self._on_receipt is not None:
            self._on_receipt(receipt)

    def stage_first(self, kind: str, evidence: dict[str, Any]) -> None:
        """Stage a receipt ahead of any the controller staged (the rollout_start)."""
        self._staged.insert(0, (kind, evidence))


@dataclass(frozen=True, slots=True)
class SwapTiming:
    """One routing change: versions, what it serves, how long the swap and its drain took."""

    version: int
    serves: str
    candidate: str | None
    weight_bp: int
    shadow: bool
    swap_s: float
    drain: DrainResult | None = None


class LiveRouting:
    """The gateway's routing state for one tenant, changed only through new snapshots.

    ``gateway`` may be None (no data plane): the state is then tracked but nothing serves it.
    Thread-safe: the controller calls it from worker threads; drains run on ``loop``.
    """

    def __init__(
        self,
        gateway: Gateway | None,
        loop: asyncio.AbstractEventLoop | None,
        route_of: Callable[[str], ReleaseRoute],
        *,
        drain_deadline_s: float = 30.0,
    ) -> None:
        self._gateway = gateway
        self._loop = loop
        self._route_of = route_of
        self._drain_deadline_s = drain_deadline_s
        self._lock = threading.Lock()
        self._version = 0
        self.snapshot: RoutingSnapshot | None = None
        self.history: deque[SwapTiming] = deque(maxlen=256)

    @property
    def version(self) -> int:
        """The version of the live snapshot (0: none yet)."""
        return self._version

    @property
    def live(self) -> str | None:
        """The release that serves the traffic not sent to a candidate."""
        return None if self.snapshot is None else self.snapshot.stable.release_sha256

    def serve_only(self, release: str) -> RoutingSnapshot:
        """One release serves everything: model, endpoint, prompt and routing together."""
        return self._publish(lambda v: RoutingSnapshot(v, self._route_of(release)))

    def canary(
        self, stable: str, candidate: str, weight_bp: int, *, shadow: bool = False
    ) -> RoutingSnapshot:
        """``candidate`` serves (or, in shadow, is mirrored) sessions with bucket < weight."""
        return self._publish(
            lambda v: RoutingSnapshot(
                v,
                self._route_of(stable),
                self._route_of(candidate),
                weight_bp=weight_bp,
                shadow=shadow,
            )
        )

    def _publish(self, build: Callable[[int], RoutingSnapshot]) -> RoutingSnapshot:
        with self._lock:
            snap = build(self._version + 1)
            t0 = time.perf_counter()
            if self._gateway is not None:
                self._gateway.swap(snap)
            swap_s = time.perf_counter() - t0
            self._version = snap.version
            self.snapshot = snap
            cand = snap.candidate.release_sha256 if snap.candidate is not None else None
            timing = SwapTiming(
                snap.version, snap.stable.release_sha256, cand, snap.weight_bp, snap.shadow, swap_s
            )
            self.history.append(timing)
        log.info(
            "routing v%d: stable %s candidate %s weight %d bp shadow %s",
            snap.version, timing.serves[:12], (cand or "-")[:12], snap.weight_bp, snap.shadow,
        )  # fmt: skip
        self._drain(timing)
        return snap

    def _drain(self, timing: SwapTiming) -> None:
        gw, loop = self._gateway, self._loop
        if gw is None or loop is None or loop.is_closed():
            return
        coro = gw.drain(self._drain_deadline_s, timing.version)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(coro)
            task.add_done_callback(lambda t: self._drained(timing, t.result()))
            return
        fut: Future[DrainResult] = asyncio.run_coroutine_threadsafe(coro, loop)
        fut.add_done_callback(lambda f: self._drained(timing, f.result()))

    def _drained(self, timing: SwapTiming, result: DrainResult) -> None:
        with self._lock:
            done = SwapTiming(
                timing.version,
                timing.serves,
                timing.candidate,
                timing.weight_bp,
                timing.shadow,
                timing.swap_s,
                result,
            )
            self.history.append(done)
        if result.waited_for:
            log.info(
                "drain before v%d: %d waited, %d finished, %d cut off in %.3fs",
                result.before_version, result.waited_for, result.finished, result.cut_off,
                result.elapsed_s,
            )  # fmt: skip


def manifest_routes(store: Store) -> Callable[[str], ReleaseRoute]:
    """A cached ``sha -> ReleaseRoute`` over the store's manifests (manifests never change)."""
    cache: dict[str, ReleaseRoute] = {}
    lock = threading.Lock()

    def route_of(sha: str) -> ReleaseRoute:
        with lock:
            hit = cache.get(sha)
        if hit is not None:
            return hit
        manifest = store.get_release(sha).manifest
        route = ReleaseRoute.from_manifest(manifest)
        with lock:
            cache[sha] = route
        return route

    return route_of


def dumps_evidence(value: Mapping[str, Any]) -> str:
    """Compact JSON of an evidence mapping (for logs)."""
    return json.dumps(value, sort_keys=True, default=str)[:2000]
