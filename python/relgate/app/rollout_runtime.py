"""The rollout controller's plumbing inside ``relgate serve``: the store-backed fact log, the
tick clock, and the route lookup.

- ``StoreFactLog``: the controller's ``FactLog`` and ``record`` sink in one object. The
  controller calls ``record`` (receipt) and then ``append`` (facts); this log stages the
  receipt and commits it with the facts in ONE ``Store.record_decision`` transaction
  (docs/design.md §9). Facts that are decisions or human commands are committed at once (with
  their own receipt when the controller gave none: rollout_start, rollout_pause, ...); readings
  and request counts ride along with the next receipt. After a crash the rollout therefore
  resumes at its last decision with the same step and hold clock; the request count and
  readings since that decision are measured again (the hold can only get longer, never pass
  sooner).
- ``TickClock``: the clock a controller reads during a tick (frozen at the readings' time).
- ``StartEvidence``: adds the gate clearance to a rollout's first receipt.
- ``manifest_routes``: a cached release sha -> ``ReleaseRoute`` over the store's manifests.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from relgate.receipts.model import Receipt
from relgate.rollout.status import Fact, FactKind
from relgate.routing import ReleaseRoute
from relgate.store import Store

__all__ = ["FACT_KIND", "StartEvidence", "StoreFactLog", "TickClock", "manifest_routes"]

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
        for row in self._store.facts(self.candidate, FACT_KIND, tenant=self.tenant):
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
