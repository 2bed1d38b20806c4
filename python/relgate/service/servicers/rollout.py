"""RolloutService: start, inspect, watch and command canary rollouts; manual rollback.

The work is done by ``relgate.app.rollouts.RolloutManager`` (the single writer per rollout,
ticked on the server's loop); this module converts messages and checks roles and tenants.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from relgate._proto.relgate.v1 import rollout_pb2
from relgate.access import Role
from relgate.app.rollouts import ActiveRollout, RolloutManager
from relgate.errors import InvalidInputError, NotFoundError
from relgate.rollout.checkpoint import evaluate_monitors
from relgate.rollout.monitors import MonitorVerdict, Verdict
from relgate.rollout.phase import Phase
from relgate.rollout.spec import RolloutSpec
from relgate.service.rpc import Call, Rpc
from relgate.service.servicers._convert import receipt_pb

# The proto's RolloutPhase has no Pending/Holding/Promoting: they are progressing (the exact
# phase is the first word of status.message).
_PHASES = {
    Phase.PENDING: rollout_pb2.ROLLOUT_PHASE_PROGRESSING,
    Phase.SHADOW: rollout_pb2.ROLLOUT_PHASE_SHADOW,
    Phase.PROGRESSING: rollout_pb2.ROLLOUT_PHASE_PROGRESSING,
    Phase.HOLDING: rollout_pb2.ROLLOUT_PHASE_PROGRESSING,
    Phase.PROMOTING: rollout_pb2.ROLLOUT_PHASE_PROGRESSING,
    Phase.PAUSED: rollout_pb2.ROLLOUT_PHASE_PAUSED,
    Phase.INCONCLUSIVE: rollout_pb2.ROLLOUT_PHASE_INCONCLUSIVE,
    Phase.OBSERVING: rollout_pb2.ROLLOUT_PHASE_OBSERVING,
    Phase.COMPLETED: rollout_pb2.ROLLOUT_PHASE_COMPLETED,
    Phase.ABORTED: rollout_pb2.ROLLOUT_PHASE_ABORTED,
    Phase.ROLLED_BACK: rollout_pb2.ROLLOUT_PHASE_ROLLED_BACK,
}
_VERDICTS = {
    Verdict.PASS: rollout_pb2.MONITOR_VERDICT_HOLDS,
    Verdict.FAIL: rollout_pb2.MONITOR_VERDICT_BREACHED,
    Verdict.INCONCLUSIVE: rollout_pb2.MONITOR_VERDICT_INCONCLUSIVE,
}


def _time(t: float | None) -> str:
    if t is None:
        return ""
    return _dt.datetime.fromtimestamp(t, _dt.UTC).isoformat()


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else 0.0


def spec_overrides(spec: rollout_pb2.RolloutSpec) -> dict[str, Any]:
    """A ``RolloutSpec.with_overrides`` mapping from the message (unset fields: defaults)."""
    out: dict[str, Any] = {}
    if spec.steps:
        out["steps"] = [
            {
                "weight_bp": s.weight_bp,
                "dwell_s": float(s.min_dwell_s),
                "min_requests": s.min_requests,
                "deadline_s": float(s.deadline_s) if s.deadline_s else None,
            }
            for s in spec.steps
        ]
    thresholds: dict[str, Any] = {}
    observer: dict[str, Any] = {}
    pairs = (
        ("latency_p95_ratio", thresholds, "p95_ratio"),
        ("error_rate_ratio", thresholds, "error_ratio"),
        ("min_error_events", thresholds, "min_error_events"),
        ("replay_traces_per_slice", thresholds, "replay_cap"),
        ("observe_sample_fraction", observer, "sample_rate"),
        ("observe_min_rows_per_minute", observer, "n_min"),
        ("observe_bad_minutes", observer, "consecutive_minutes"),
        ("observe_threshold_fraction", observer, "rollback_fraction"),
    )
    for field, target, key in pairs:
        if spec.HasField(field):
            target[key] = getattr(spec, field)
    if thresholds:
        out["thresholds"] = thresholds
    if observer:
        out["observer"] = observer
    if spec.HasField("shadow_duration_s"):
        out["shadow_s"] = float(spec.shadow_duration_s)
    if spec.overrides_json.strip():
        try:
            extra = json.loads(spec.overrides_json)
        except ValueError as exc:
            raise InvalidInputError(f"spec.overrides_json is not JSON: {exc}") from None
        if not isinstance(extra, dict):
            raise InvalidInputError("spec.overrides_json must be a JSON object")
        for key, value in extra.items():
            if key in ("thresholds", "observer") and isinstance(value, dict):
                out[key] = {**out.get(key, {}), **value}
            else:
                out[key] = value
    return out


def spec_pb(spec: RolloutSpec) -> rollout_pb2.RolloutSpec:
    """The effective spec as a message."""
    t, o = spec.thresholds, spec.observer
    return rollout_pb2.RolloutSpec(
        steps=[
            rollout_pb2.Step(
                weight_bp=s.weight_bp,
                min_dwell_s=math.ceil(s.dwell_s),
                min_requests=s.min_requests,
                deadline_s=0 if s.deadline_s is None else math.ceil(s.deadline_s),
            )
            for s in spec.steps
        ],
        latency_p95_ratio=t.p95_ratio,
        error_rate_ratio=t.error_ratio,
        min_error_events=t.min_error_events,
        replay_traces_per_slice=t.replay_cap,
        shadow_duration_s=math.ceil(spec.shadow_s),
        observe_sample_fraction=o.sample_rate,
        observe_min_rows_per_minute=o.n_min,
        observe_bad_minutes=o.consecutive_minutes,
        observe_threshold_fraction=o.rollback_fraction,
        overrides_json=json.dumps(spec.to_dict(), sort_keys=True),
    )


def _readings(verdicts: tuple[MonitorVerdict, ...], at: str) -> list[rollout_pb2.MonitorReading]:
    out = []
    for v in verdicts:
        e = v.evidence
        if v.monitor == "latency_p95":
            out.append(
                rollout_pb2.MonitorReading(
                    monitor=v.monitor,
                    candidate=_num(e.get("candidate_p95_s")),
                    baseline=_num(e.get("stable_p95_s")),
                    threshold=_num(e.get("threshold_ratio")),
                    samples=int(e.get("candidate_count", 0) or 0),
                    verdict=_VERDICTS[v.verdict],
                    at=at,
                )
            )
        elif v.monitor == "error_rate":
            out.append(
                rollout_pb2.MonitorReading(
                    monitor=v.monitor,
                    candidate=_num(e.get("candidate_rate")),
                    baseline=_num(e.get("stable_rate")),
                    threshold=_num(e.get("limit_rate")),
                    samples=int(e.get("candidate_total", 0) or 0),
                    verdict=_VERDICTS[v.verdict],
                    at=at,
                )
            )
        else:
            slices = e.get("slices") or []
            if not slices:
                out.append(
                    rollout_pb2.MonitorReading(
                        monitor=v.monitor, verdict=_VERDICTS[v.verdict], at=at
                    )
                )
            for s in slices:
                out.append(
                    rollout_pb2.MonitorReading(
                        monitor=f"quality:{s.get('slice')}",
                        candidate=_num(
                            s.get("q") if s.get("scale") == "normalized" else s.get("rho")
                        ),
                        baseline=_num(s.get("ceiling")),
                        threshold=_num(s.get("floor")),
                        samples=int(s.get("n", 0) or 0),
                        verdict=_VERDICTS[Verdict(str(s.get("verdict", "INCONCLUSIVE")))],
                        at=at,
                    )
                )
    return out


def rollout_pb(ar: ActiveRollout, routing_version: int) -> rollout_pb2.Rollout:
    """A rollout as clients see it: spec, facts and the phase computed now."""
    c = ar.controller
    s = ar.status
    decision = ar.phase()
    latest = s.latest()
    verdicts = evaluate_monitors(latest, c.spec.thresholds)
    status = rollout_pb2.RolloutStatus(
        phase=_PHASES[decision.phase],
        step_index=max(s.step_index, 0),
        weight_bp=s.step_weight_bp,
        started_at=_time(s.started_at),
        step_started_at=_time(s.step_entered_at),
        requests_at_step=s.requests_in_step,
        paused=s.paused,
        abort=s.aborted,
        readings=_readings(verdicts, _time(latest.at)) if s.readings else [],
        message=f"{decision.phase}: {decision.reason}",
        routing_version=routing_version,
    )
    return rollout_pb2.Rollout(
        rollout_id=ar.rollout_id,
        release_sha256=c.candidate,
        stable_release_sha256=c.stable or "",
        spec=spec_pb(c.spec),
        status=status,
        tenant=ar.tenant,
    )


#: How often a watch looks at a rollout between facts (for message-only changes).
WATCH_POLL_S = 1.0


class RolloutServicer:
    """relgate.v1.RolloutService."""

    descriptor = rollout_pb2.DESCRIPTOR.services_by_name["RolloutService"]

    def __init__(self, manager: RolloutManager) -> None:
        self._m = manager

    def rpcs(self) -> dict[str, Rpc]:
        """Method name -> role and implementation."""
        return {
            "StartRollout": Rpc(Role.RELEASER, unary=self.start),
            "GetRollout": Rpc(Role.VIEWER, unary=self.get),
            "WatchRollout": Rpc(Role.VIEWER, stream=self.watch),
            "Pause": Rpc(Role.RELEASER, unary=self.pause),
            "Resume": Rpc(Role.RELEASER, unary=self.resume),
            "Promote": Rpc(Role.RELEASER, unary=self.promote),
            "Abort": Rpc(Role.RELEASER, unary=self.abort),
            "Rollback": Rpc(Role.RELEASER, unary=self.rollback),
            "ListRollouts": Rpc(Role.VIEWER, unary=self.list),
        }

    def _pb(self, ar: ActiveRollout) -> rollout_pb2.Rollout:
        return rollout_pb(ar, self._m.routing(ar.tenant).version)

    async def _resolve(self, handle: str, call: Call) -> tuple[str, str]:
        """(rollout id, tenant) of a rollout id, or of the latest rollout of the caller's
        release named by a sha256 or a unique prefix (the store resolves it; ambiguity is an
        error)."""
        handle = handle.strip()
        if not handle:
            raise InvalidInputError("rollout_id is required (a ro_ id or a release sha256)")
        if not handle.startswith("ro_"):
            tenant = await call.tenant("")
            sha = await asyncio.to_thread(self._m.release_sha, handle, tenant)
            for ar in self._m.rollouts(tenant):
                if ar.controller.candidate == sha:
                    return ar.rollout_id, tenant
            raise NotFoundError(f"release {sha[:12]} has no rollout")
        ar = self._m.get(handle)
        # Another tenant's rollout is reported as absent (existence is data).
        if not call.principal.may_act_on(ar.tenant):
            raise NotFoundError(f"no rollout {handle!r}")
        return handle, await call.tenant(ar.tenant)

    async def start(
        self, request: rollout_pb2.StartRolloutRequest, call: Call
    ) -> rollout_pb2.Rollout:
        """Start a canary (or shadow) of a gated release."""
        tenant = await call.tenant(request.tenant)
        sha = await asyncio.to_thread(self._m.release_sha, request.release_sha256, tenant)
        stable = (
            await asyncio.to_thread(self._m.release_sha, request.stable_release_sha256, tenant)
            if request.stable_release_sha256
            else None
        )
        overrides = spec_overrides(request.spec) if request.HasField("spec") else {}
        ar = await self._m.start_rollout(
            tenant, sha, actor=call.actor, reason=request.reason, stable=stable, overrides=overrides
        )
        return self._pb(ar)

    async def get(self, request: rollout_pb2.GetRolloutRequest, call: Call) -> rollout_pb2.Rollout:
        """The rollout now."""
        rid, tenant = await self._resolve(request.rollout_id, call)
        return self._pb(self._m.get(rid, tenant))

    async def watch(
        self, request: rollout_pb2.WatchRolloutRequest, call: Call
    ) -> AsyncIterator[rollout_pb2.RolloutEvent]:
        """The rollout now, then every change until it is over. A change of the status
        message alone (a shadow that has run its course and now awaits a promote) is no new
        fact, so the state is also looked at every ``WATCH_POLL_S`` and sent when it reads
        differently."""
        rid, tenant = await self._resolve(request.rollout_id, call)
        sent: str | None = None
        said: str | None = None
        changes = aiter(self._m.watch(rid, tenant))
        pending: asyncio.Future[ActiveRollout | None] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(changes, None))
                done, _ = await asyncio.wait({pending}, timeout=WATCH_POLL_S)
                if pending in done:
                    changed, pending = pending.result(), None
                    if changed is None:
                        return
                    ar = changed
                else:
                    ar = self._m.get(rid, tenant)
                event = rollout_pb2.RolloutEvent(rollout=self._pb(ar))
                if not done and event.rollout.status.message == said:
                    continue
                said = event.rollout.status.message
                r = ar.last_receipt
                if r is not None and r.receipt_sha256 != sent:
                    event.receipt.CopyFrom(receipt_pb(r))
                    sent = r.receipt_sha256
                yield event
        finally:
            if pending is not None:
                pending.cancel()

    async def _command(
        self, verb: str, request: rollout_pb2.RolloutControlRequest, call: Call
    ) -> rollout_pb2.Rollout:
        rid, tenant = await self._resolve(request.rollout_id, call)
        ar = await self._m.command(rid, tenant, verb, call.actor, request.reason)
        return self._pb(ar)

    async def pause(
        self, request: rollout_pb2.RolloutControlRequest, call: Call
    ) -> rollout_pb2.Rollout:
        """Pause (beats promote)."""
        return await self._command("pause", request, call)

    async def resume(
        self, request: rollout_pb2.RolloutControlRequest, call: Call
    ) -> rollout_pb2.Rollout:
        """Resume a paused rollout (its step deadline restarts)."""
        return await self._command("resume", request, call)

    async def promote(
        self, request: rollout_pb2.RolloutControlRequest, call: Call
    ) -> rollout_pb2.Rollout:
        """Skip the rest of the hold once every monitor holds (or end a finished shadow)."""
        return await self._command("promote", request, call)

    async def abort(
        self, request: rollout_pb2.RolloutControlRequest, call: Call
    ) -> rollout_pb2.Rollout:
        """Abort: traffic returns to the stable release (beats pause and promote)."""
        return await self._command("abort", request, call)

    async def rollback(
        self, request: rollout_pb2.RollbackRequest, call: Call
    ) -> rollout_pb2.RollbackResponse:
        """Swap the routing to any earlier release, with a manual_rollback receipt."""
        tenant = await call.tenant(request.tenant)
        target = await asyncio.to_thread(self._m.release_sha, request.target_release_sha256, tenant)
        receipt, version = await self._m.rollback(
            tenant, target, actor=call.actor, reason=request.reason
        )
        return rollout_pb2.RollbackResponse(receipt=receipt_pb(receipt), routing_version=version)

    async def list(
        self, request: rollout_pb2.ListRolloutsRequest, call: Call
    ) -> rollout_pb2.ListRolloutsResponse:
        """The tenant's rollouts, newest first, and what is live now."""
        tenant = await call.tenant(request.tenant)
        sha = (
            await asyncio.to_thread(self._m.release_sha, request.release_sha256, tenant)
            if request.release_sha256.strip()
            else None
        )
        rollouts = [
            self._pb(ar)
            for ar in self._m.rollouts(tenant)
            if (sha is None or ar.controller.candidate == sha)
            and not (request.active_only and ar.over)
        ]
        return rollout_pb2.ListRolloutsResponse(rollouts=rollouts, live=await self._live(tenant))

    async def _live(self, tenant: str) -> rollout_pb2.LiveRouting:
        table = self._m.routing(tenant)
        snap = table.snapshot
        live = rollout_pb2.LiveRouting(tenant=tenant, routing_version=table.version)
        sha = snap.stable.release_sha256 if snap is not None else None
        sha = sha or await asyncio.to_thread(self._m.live_release, tenant)
        if not sha:
            return live
        live.release_sha256 = sha
        route = snap.stable if snap is not None else None
        matchers = route.routing.matchers if route is not None and route.routing else ()
        live.routing_classes.extend(
            ",".join(f"{k}={v}" for k, v in sorted(dict(m).items())) or "*" for m in matchers
        )
        if not live.routing_classes:
            live.routing_classes.append("*")
        if snap is not None and snap.candidate is not None:
            live.candidate_release_sha256 = snap.candidate.release_sha256
            live.candidate_weight_bp = snap.weight_bp
            live.shadow = snap.shadow
        return live
