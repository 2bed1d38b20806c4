"""Rollouts inside ``relgate serve``: the live release per tenant, starting, commanding,
watching and resuming rollouts, manual rollback, and the background task that ticks every
controller on the server's event loop.

State is derived from the store, never kept beside it:

- the live release of a tenant is ``relgate.receipts.model.live_release_of`` its receipts;
- a rollout is its ``rollout_start`` receipt plus its ``rollout_fact`` facts
  (``relgate.app.rollout_runtime.StoreFactLog``); on start the server rebuilds every rollout from
  them and resumes the latest one of each tenant that is not over.

There is one writer per rollout: its controller, ticked under the rollout's lock by the tick
task; gRPC commands queue into the controller and trigger a tick. Each tenant's routing table
(``relgate.app.routing``) is served by the server's gateway.

Several servers may share one store: only the holder of the store's leader lease
(``relgate.app.leader``) ticks and decides, every decision fenced by its epoch. The others
follow: they rebuild their view (and routing) from the store whenever it changes, serve reads,
watches, refuse commands with the leader's name; a new leader rebuilds, then resumes them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from relgate.access import acting_as
from relgate.app.fleet import FleetHub
from relgate.app.gates import gate_clearance
from relgate.app.leader import LeaderOptions, Leadership
from relgate.app.probes import CountingTraceStore, RolloutProbe, suite_anchors
from relgate.app.rollout_runtime import (
    ActiveRollout,
    AnchorSource,
    RolloutOptions,
    StartEvidence,
    SteadyRouting,
    StoreFactLog,
    TickClock,
    last_fact_time,
    manifest_routes,
    refuse_early_shadow_promote,
    swap_acked_write,
)
from relgate.app.routing import RolloutRouting, RoutingTable, local_hub
from relgate.errors import GateError, InvalidInputError, InvalidTransitionError, NotFoundError
from relgate.gateway.server import Gateway
from relgate.judge.base import Judge
from relgate.receipts.model import Receipt, live_release_of
from relgate.rollout.controller import RolloutController
from relgate.rollout.phase import PhaseDecision, compute_phase, rollout_over
from relgate.rollout.spec import RolloutSpec
from relgate.rollout.status import RolloutStatus
from relgate.routing import FleetAcks, RoutingChange
from relgate.store import Store
from relgate.store.control import LeaseLostError

__all__ = ["ActiveRollout", "RolloutManager", "RolloutOptions"]

log = logging.getLogger("relgate.rollout")


class RolloutManager:
    """Every rollout of one server (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        gateway: Gateway | None,
        traces: CountingTraceStore,
        options: RolloutOptions | None = None,
        on_receipt: Callable[[Receipt], None] | None = None,
        leadership: Leadership | None = None,
        hub: FleetHub | None = None,
    ) -> None:
        self._store = store
        #: This server's standing on the store's leader lease.
        self._seen_version: tuple[Any, ...] | None = None
        self._gateway = gateway
        # Every table publishes through the one hub; the in-process gateway is one replica.
        self.hub = hub if hub is not None or gateway is None else local_hub(gateway)
        self._traces = traces
        self.options = opt = options or RolloutOptions()
        self.leadership = leadership or Leadership(store, LeaderOptions(ttl_s=opt.lease_ttl_s))
        self._on_receipt_hook = on_receipt
        self._route_of = manifest_routes(store)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routing: dict[str, RoutingTable] = {}
        self._live: dict[str, str | None] = {}
        self._ever_live: dict[str, set[str]] = {}
        self._rollouts: dict[str, ActiveRollout] = {}
        self._latest: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._judge_instance: Judge | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._anchors: AnchorSource = opt.anchors or (lambda sha: suite_anchors(None))

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild state from the store, resume unfinished rollouts, start ticking."""
        self._loop = asyncio.get_running_loop()
        if self._store.dialect == "sqlite":
            log.info(
                "SQLite store: one host, one writer at a time; run several control planes on "
                "PostgreSQL for failover (docs/scale-out.md)"
            )
        term = await asyncio.to_thread(self.leadership.poll)
        if not term.leading:
            log.info("following the control plane's leader %s (epoch %d)", term.lease.holder,
                     term.lease.epoch)  # fmt: skip
        await asyncio.to_thread(self._load)
        self._serve_live()
        self._task = asyncio.create_task(self._run(), name="relgate-rollouts")

    def _serve_live(self) -> None:
        # Every tenant's live release serves from the first request (a rollout in progress
        # re-applies its own routing when it resumes).
        for tenant, live in self._live.items():
            latest = self._latest.get(tenant)
            active = self._rollouts.get(latest) if latest else None
            if (active is None or active.over) and live:
                table = self.routing(tenant)
                snap = table.snapshot
                if snap is None or table.live != live or snap.candidate is not None:
                    table.serve_only(live)

    async def stop(self) -> None:
        """Stop ticking (state is in the store; a restart resumes)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # A clean stop hands the lease on at once (a crash leaves it to expire).
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.leadership.release)

    @property
    def traces(self) -> CountingTraceStore:
        """The gateway's trace store (the monitors' source)."""
        return self._traces

    def routing(self, tenant: str) -> RoutingTable:
        """The tenant's routing table (served by the server's gateway, when it runs one)."""
        r = self._routing.get(tenant)
        if r is None:
            r = RoutingTable(
                self._route_of,
                tenant=tenant,
                gateway=self._gateway,
                loop=self._loop,
                drain_deadline_s=self.options.drain_deadline_s,
                clock=self.options.clock,
                hub=self.hub,
                ack_deadline_s=self.options.ack_deadline_s,
                on_acked=self._swap_acked,
            )
            self._routing[tenant] = r
        return r

    def _swap_acked(self, change: RoutingChange, acks: FleetAcks, subject: str | None) -> None:
        """A swap served by replica processes completed (or its deadline passed): its
        ``swap_acked`` receipt, written after the rollout's tick."""
        write = swap_acked_write(self._store, change, acks, subject)
        if write is None or self._loop is None:
            return
        rid = self._latest.get(change.tenant)
        ar = self._rollouts.get(rid) if rid else None

        async def record() -> None:
            try:
                # A rollback swaps before its receipts are committed (docs/design.md §5): the
                # ack waits for the rollout's tick, so the chain reads decision, then ack.
                async with ar.lock if ar is not None else contextlib.nullcontext():
                    self._receipt(None, await asyncio.to_thread(write))
            except Exception:
                log.exception("swap_acked receipt of routing v%d failed", change.version)

        task = self._loop.create_task(record())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def live_release(self, tenant: str) -> str | None:
        """The release serving the tenant's traffic (None: nothing is live yet)."""
        if tenant not in self._live:
            receipts = self._store.list_receipts(tenant=tenant)
            self._live[tenant] = live_release_of(receipts)
            for receipt in receipts:
                self._note(receipt)
        return self._live[tenant]

    def _note(self, receipt: Receipt) -> None:
        live = live_release_of([receipt])
        if "live_release" in receipt.evidence:
            self._live[receipt.tenant] = live
        if live is not None:
            self._ever_live.setdefault(receipt.tenant, set()).add(live)

    def _receipt(self, ar: ActiveRollout | None, receipt: Receipt) -> None:
        # Called on the writer's thread right after the commit.
        self._note(receipt)
        if ar is not None:
            ar.last_receipt = receipt
        if self._on_receipt_hook is not None:
            self._on_receipt_hook(receipt)

    def _load(self) -> None:
        self._seen_version = self._store.control.version()
        for tenant in self._store.tenants():
            self._live[tenant] = None
            for receipt in self._store.list_receipts(tenant=tenant):
                self._note(receipt)
                if receipt.kind == "rollout_start" and "rollout_id" in receipt.evidence:
                    self._latest[tenant] = str(receipt.evidence["rollout_id"])
                    self._restore(receipt)

    def _restore(self, receipt: Receipt) -> None:
        rid = str(receipt.evidence["rollout_id"])
        tenant, candidate = receipt.tenant, receipt.release_sha256
        stable = receipt.evidence.get("stable")
        mirror = receipt.evidence.get("mirror")
        holder: list[ActiveRollout] = []
        flog = StoreFactLog(
            self._store,
            tenant=tenant,
            candidate=candidate,
            stable=stable,
            rollout_id=rid,
            on_receipt=lambda r: self._receipt(holder[0] if holder else None, r),
            fence=self.leadership.require,
        )
        status = RolloutStatus.from_facts(flog.load())
        if not status.started:
            # A crash between the rollout_start receipt and its facts: it never started.
            log.warning("rollout %s has a start receipt but no facts; skipped", rid)
            return
        spec = RolloutSpec.from_dict(status.spec_overrides or {})
        over = rollout_over(compute_phase(spec, status, self.options.clock()).phase, status)
        live = None if over else self.routing(tenant)
        probe = self._probe(spec, candidate, stable or mirror)
        tick_clock = TickClock(self.options.clock)
        controller = RolloutController.resume(
            flog,
            clock=tick_clock,
            readings=probe.readings,
            routing=SteadyRouting(live, candidate, stable, mirror),
            record=flog.record,
            rollout_id=rid,
        )
        ar = ActiveRollout(rid, tenant, controller, probe, flog, tick_clock, ticking=not over)
        old = self._rollouts.get(rid)
        if old is not None:
            # Rebuilt from the store (a follower's refresh, a new leader's term): watchers keep
            # waiting on the same object.
            old.controller, old.probe, old.log, old.clock = controller, probe, flog, tick_clock
            old.ticking, old.last_decision = ar.ticking, None
            ar = old
        holder.append(ar)
        self._rollouts[rid] = ar
        if not over and old is None:
            log.info("loaded rollout %s of %s at phase %s", rid, candidate[:12], ar.phase().phase)

    async def _check_monitor_judge(self, sha: str, clearance: Mapping[str, Any]) -> None:
        """The quality monitor scores with the judge the release was gated with: the gate's
        floor and margin mean nothing on another judge's scale. Refuse to start otherwise."""
        gated = (clearance.get("gate_result") or {}).get("judge_sha256")
        monitor = (await asyncio.to_thread(self._judge)).judge_sha256
        if gated != monitor:
            raise GateError(
                f"release {sha[:12]} was gated with judge {str(gated)[:12]}, but this server's "
                f"quality monitor scores with judge {monitor[:12]}: serve with the gate's judge "
                "(relgate serve --gate-judge ...) or gate the release again with this one"
            )

    def _judge(self) -> Judge:
        if self._judge_instance is None:
            if self.options.judge is not None:
                return self.options.judge()
            from relgate.judge.embedding import EmbeddingJudge

            self._judge_instance = EmbeddingJudge()
        return self._judge_instance

    def _probe(self, spec: RolloutSpec, candidate: str, stable: str | None) -> RolloutProbe:
        return RolloutProbe(
            spec=spec,
            candidate=self._route_of(candidate),
            stable=None if stable is None else self._route_of(stable),
            traces=self._traces,
            gateway=self._gateway,
            judge=self._judge,
            anchors=self._anchors(candidate),
            clock=self.options.clock,
            options=self.options.probe,
        )

    # -- the writer loop -----------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._lead_or_follow()
            except Exception:
                # The store is unreachable: a leader that cannot renew is deposed by the
                # lease's expiry, and its writes are refused by the fence.
                log.exception("control-plane lease poll failed")
            if self.leadership.leading:
                for ar in list(self._rollouts.values()):
                    if ar.ticking:
                        try:
                            await self.tick(ar)
                        except LeaseLostError as exc:
                            log.warning("stepping down: %s", exc)
                            self.leadership.step_down()
                            break
                        except Exception:
                            log.exception("rollout %s: tick failed", ar.rollout_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.options.tick_interval_s)

    async def _lead_or_follow(self) -> None:
        term = await asyncio.to_thread(self.leadership.poll)
        if term.new_term:
            # Another control plane may have decided since this one last looked.
            await self._refresh(force=True)
        elif not term.leading:
            await self._refresh(force=False)

    async def _refresh(self, *, force: bool) -> None:
        """Rebuild the view from the store when it changed (or always, ``force``)."""
        if not force:
            version = await asyncio.to_thread(self._store.control.version)
            if version == self._seen_version:
                return
        locks = [ar.lock for ar in self._rollouts.values()]
        async with contextlib.AsyncExitStack() as stack:
            for lock in locks:
                await stack.enter_async_context(lock)
            await asyncio.to_thread(self._load)
            self._serve_live()
        for ar in list(self._rollouts.values()):
            async with ar.changed:
                ar.revision += 1
                ar.changed.notify_all()

    async def tick(self, ar: ActiveRollout) -> PhaseDecision:
        """Gather readings and run one controller tick (the rollout's single writer; only on
        the leader: ``LeaseLostError`` on a follower)."""
        self.leadership.require()
        async with ar.lock, contextlib.AsyncExitStack() as stack:
            stack.enter_context(acting_as(ar.tenant))
            before = (ar.status.facts, ar.phase().phase)
            now = self.options.clock()
            await ar.probe.refresh(ar.status, now)
            ar.clock.frozen = max(now, last_fact_time(ar.status))
            try:
                decisions = await asyncio.to_thread(ar.controller.tick)
            finally:
                ar.clock.frozen = None
            ar.last_decision = decisions[-1]
            if ar.over:
                ar.ticking = False
            after = (ar.status.facts, ar.last_decision.phase)
        if after != before:
            async with ar.changed:
                ar.revision += 1
                ar.changed.notify_all()
        return decisions[-1]

    # -- verbs ---------------------------------------------------------------------------

    def get(self, rollout_id: str, tenant: str | None = None) -> ActiveRollout:
        """A rollout by id (NotFoundError when unknown or another tenant's)."""
        ar = self._rollouts.get(rollout_id.strip())
        if ar is None or (tenant is not None and ar.tenant != tenant):
            raise NotFoundError(f"no rollout {rollout_id!r}")
        return ar

    def latest_rollouts(self) -> list[ActiveRollout]:
        """The latest rollout of each tenant (running or over): what metrics report."""
        rollouts = (self._rollouts.get(rid) for rid in list(self._latest.values()))
        return [ar for ar in rollouts if ar is not None]

    def _in_progress(self, tenant: str) -> ActiveRollout | None:
        rid = self._latest.get(tenant)
        ar = self._rollouts.get(rid) if rid else None
        return ar if ar is not None and not ar.over else None

    async def start_rollout(
        self,
        tenant: str,
        release_sha: str,
        *,
        actor: str,
        reason: str = "",
        stable: str | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> ActiveRollout:
        """Start a canary (or a cold start's shadow) of a gated release (see the issue's
        rules: gate pass or override; its previous release must be the live one)."""
        self.leadership.require()
        stored = await asyncio.to_thread(
            functools.partial(self._store.get_release, release_sha, tenant=tenant)
        )
        sha = stored.sha256
        clearance = await asyncio.to_thread(gate_clearance, self._store, sha, tenant)
        await self._check_monitor_judge(sha, clearance)
        live = await asyncio.to_thread(self.live_release, tenant)
        previous = stable or stored.manifest.previous_release
        # A cold start (no previous release) is shadowed against whatever is live now.
        mirror = live if previous is None else None
        if previous is not None and previous != live:
            raise InvalidTransitionError(
                f"release {sha[:12]} replaces {previous or 'nothing (cold start)'}, but the "
                f"live release is {live or 'none'}"
            )
        if previous == sha:
            raise InvalidTransitionError("a release cannot replace itself")
        current = self._in_progress(tenant)
        if current is not None:
            if current.status.completed_at is None:
                raise InvalidTransitionError(
                    f"rollout {current.rollout_id} is in progress; abort it or let it finish"
                )
            await self._end_observation(current, f"superseded by a rollout of {sha[:12]}")
        spec = RolloutSpec(cold_start=previous is None).with_gate_policy(
            stored.manifest.gate_policy
        )
        if overrides:
            spec = spec.with_overrides(overrides)
        if spec.cold_start != (previous is None):
            raise InvalidInputError("cold_start follows the release: set by previous_release")
        rid = "ro_" + uuid.uuid4().hex[:16]
        holder: list[ActiveRollout] = []
        flog = StoreFactLog(
            self._store,
            tenant=tenant,
            candidate=sha,
            stable=previous,
            rollout_id=rid,
            on_receipt=lambda r: self._receipt(holder[0] if holder else None, r),
            fence=self.leadership.require,
        )
        probe = self._probe(spec, sha, previous or mirror)
        start_evidence = {
            **clearance,
            "candidate": sha,
            "stable": previous,
            "mirror": mirror,
            "spec": spec.to_dict(),
            "actor": actor,
            "reason": reason,
        }
        routing_live = self.routing(tenant)
        tick_clock = TickClock(self.options.clock)
        controller = RolloutController(
            spec,
            candidate=sha,
            stable=previous,
            clock=tick_clock,
            readings=probe.readings,
            routing=RolloutRouting(routing_live, sha, previous, mirror),
            record=flog.record,
            log=StartEvidence(flog, start_evidence),
            rollout_id=rid,
            mirror=mirror,
        )
        ar = ActiveRollout(rid, tenant, controller, probe, flog, tick_clock)
        holder.append(ar)
        self._rollouts[rid] = ar
        self._latest[tenant] = rid
        await self.tick(ar)
        return ar

    async def command(
        self, rollout_id: str, tenant: str, verb: str, actor: str, reason: str
    ) -> ActiveRollout:
        """Queue a human command (pause, resume, promote, abort) and apply it now."""
        self.leadership.require()
        ar = self.get(rollout_id, tenant)
        c = ar.controller
        if verb == "promote":
            refuse_early_shadow_promote(ar, self.options.clock())
        fns: dict[str, Callable[[str, str], None]] = {
            "pause": c.pause,
            "resume": c.resume_rollout,
            "promote": c.promote,
            "abort": c.abort,
        }
        fns[verb](actor, reason)
        await self.tick(ar)
        return ar

    def rollouts(self, tenant: str) -> list[ActiveRollout]:
        """The tenant's rollouts, newest first."""
        mine = [ar for ar in self._rollouts.values() if ar.tenant == tenant]
        return sorted(mine, key=lambda ar: ar.status.started_at or 0.0, reverse=True)

    def release_sha(self, handle: str, tenant: str) -> str:
        """The sha256 of the tenant's release named by a sha256 or a unique prefix."""
        return self._store.get_release(handle, tenant=tenant).sha256

    async def _end_observation(self, ar: ActiveRollout, why: str) -> None:
        async with ar.lock:
            await asyncio.to_thread(ar.controller.end_observation, why)
            ar.ticking = False
        async with ar.changed:
            ar.revision += 1
            ar.changed.notify_all()

    async def rollback(
        self, tenant: str, target: str, *, actor: str, reason: str
    ) -> tuple[Receipt, int]:
        """Manual rollback: one atomic swap to any earlier release of the tenant (one that has
        served its traffic before: a release that never went through a rollout cannot use
        rollback to skip its gate and canary), with a ``manual_rollback`` receipt. Refused
        while a canary is in progress (abort it)."""
        if not reason.strip():
            raise InvalidInputError("a rollback needs a reason")
        fence = self.leadership.require()
        stored = await asyncio.to_thread(
            functools.partial(self._store.get_release, target, tenant=tenant)
        )
        live = await asyncio.to_thread(self.live_release, tenant)
        if stored.sha256 == live:
            raise InvalidTransitionError(f"release {target[:12]} is already live")
        if stored.sha256 not in self._ever_live.get(tenant, set()):
            raise InvalidTransitionError(
                f"release {target[:12]} has never served this tenant's traffic: roll it out "
                "(gate, canary) instead of rolling back to it"
            )
        current = self._in_progress(tenant)
        if current is not None:
            if current.status.completed_at is None:
                raise InvalidTransitionError(
                    f"rollout {current.rollout_id} is in progress: abort it instead"
                )
            await self._end_observation(current, f"manual rollback to {stored.sha256[:12]}")
        t0 = time.perf_counter()
        snap = self.routing(tenant).serve_only(stored.sha256)
        swap_s = time.perf_counter() - t0
        evidence = {
            "from": live,
            "to": stored.sha256,
            "leader_epoch": fence.epoch,
            "live_release": stored.sha256,
            "routing_version": snap.version,
            "swap_s": swap_s,
            "at": self.options.clock(),
        }
        fact = ("live_release", {"from": live, "to": stored.sha256})

        def write() -> Receipt:
            return self._store.record_decision(
                tenant=tenant,
                release_sha=stored.sha256,
                kind="manual_rollback",
                evidence=evidence,
                actor=actor,
                reason=reason,
                facts=[fact],
                fence=fence,
            )

        receipt = await asyncio.to_thread(write)
        self._receipt(None, receipt)
        return receipt, snap.version

    async def watch(self, rollout_id: str, tenant: str) -> AsyncIterator[ActiveRollout]:
        """The rollout now, then after every change, until it is over."""
        ar = self.get(rollout_id, tenant)
        seen = -1
        while True:
            async with ar.changed:
                await ar.changed.wait_for(functools.partial(_moved, ar, seen))
                seen = ar.revision
            yield ar
            if not ar.ticking:
                return


def _moved(ar: ActiveRollout, seen: int) -> bool:
    return ar.revision != seen or not ar.ticking
