"""Rollout timelines for the dashboard, folded from the facts the rollout service stores.

A rollout is its ``rollout_start`` receipt plus its ``rollout_fact`` facts
(``relgate.app.rollout_runtime``). The status is ``RolloutStatus.from_facts`` and the phase is
``compute_phase(spec, status, now)``, exactly as the server rebuilds a rollout after a crash.
While the server runs the rollout, its in-memory status is used instead: readings and request
counts reach the store only with the next decision, and a live page should show them now.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from relgate.app.rollout_runtime import FACT_KIND
from relgate.dashboard.plots import Plot, rollout_plots
from relgate.errors import NotFoundError
from relgate.receipts.model import Receipt, live_release_of
from relgate.rollout.checkpoint import HoldProgress, evaluate_monitors, hold_progress
from relgate.rollout.monitors import MonitorVerdict
from relgate.rollout.phase import TERMINAL_PHASES, PhaseDecision, compute_phase, rollout_over
from relgate.rollout.shadow import evaluate_shadow
from relgate.rollout.spec import RolloutSpec
from relgate.rollout.status import Fact, FactKind, Reading, RolloutStatus
from relgate.routing import FULL_WEIGHT_BP
from relgate.store import Store

__all__ = [
    "LiveRollouts",
    "RolloutView",
    "TimelineEvent",
    "monitor_summary",
    "rollout_view",
    "rollouts_of",
    "served_state",
]


class LiveRolloutLike(Protocol):
    """What the dashboard reads of ``relgate.app.rollouts.ActiveRollout``."""

    @property
    def status(self) -> RolloutStatus: ...
    def phase(self) -> PhaseDecision: ...


class LiveRollouts(Protocol):
    """The server's ``RolloutManager``: rollouts it runs, by id."""

    def get(self, rollout_id: str, tenant: str | None = None) -> LiveRolloutLike: ...


@dataclass(frozen=True)
class TimelineEvent:
    """One line of the timeline: clock time, seconds since the start, what happened."""

    at: float
    since_start_s: float
    kind: str  # css class: start, step, reading, hold, inconclusive, rollback, ...
    title: str
    detail: str = ""
    weight_bp: int | None = None
    receipt_kind: str | None = None
    monitors: list[MonitorVerdict] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class RolloutView:
    """A rollout page: identity, phase, hold progress, monitors now, and the timeline."""

    rollout_id: str
    tenant: str
    candidate: str
    stable: str | None
    spec: RolloutSpec
    status: RolloutStatus
    decision: PhaseDecision
    hold: HoldProgress | None
    monitors: list[MonitorVerdict]
    events: list[TimelineEvent]
    live: bool
    #: What the page says the rollout's state is: the phase, except that a completed rollout
    #: whose candidate no longer serves (``receipts.model.live_release_of``) is "RolledBack"
    #: (a rollback moved traffic away) or "Superseded" (a later release took over).
    state: str = ""
    state_note: str = ""
    #: The candidate's share of traffic now (basis points): 0 once it no longer serves.
    served_bp: int = 0
    #: The tenant's live release now (None: nothing is live).
    live_release: str | None = None
    plots: list[Plot] = field(default_factory=list)

    @property
    def over(self) -> bool:
        """Nothing more will happen (the page stops polling)."""
        return rollout_over(self.decision.phase, self.status)


_ROLLBACK_KINDS = ("manual_rollback", "auto_rollback")


def served_state(
    phase: str, candidate: str, weight_bp: int, tenant_receipts: Sequence[Receipt]
) -> tuple[str, str, int, str | None]:
    """(state, note, served weight, live release) of a rollout whose phase is ``phase``.

    "Which release is live" is ``live_release_of`` over the tenant's chain, nowhere else: a
    completed rollout whose candidate is not live was rolled back (a rollback receipt moved
    traffic away from it) or superseded (a later rollout's release serves)."""
    live = live_release_of(tenant_receipts)
    if phase in ("RolledBack", "Aborted", "Shadow", "Pending"):
        return phase, "", 0, live
    if phase not in ("Completed", "Observing"):
        return phase, "", weight_bp, live
    if live == candidate:
        return phase, "", FULL_WEIGHT_BP, live
    served, cause = False, None
    for r in tenant_receipts:
        value = r.evidence.get("live_release")
        if value == candidate:
            served, cause = True, None
        elif served and value is not None and cause is None:
            cause = r
    to = f" to {live[:12]}" if live else ""
    if cause is not None and cause.kind in _ROLLBACK_KINDS:
        how = "manual" if cause.kind == "manual_rollback" else "automatic"
        return "RolledBack", f"{how} rollback{to} by {cause.actor} after completion", 0, live
    return "Superseded", f"no longer serves: {live[:12] if live else 'nothing'} is live", 0, live


def rollouts_of(store: Store, tenant: str, release_sha: str | None = None) -> list[Receipt]:
    """``rollout_start`` receipts of the tenant (of one release), oldest first."""
    return [
        r
        for r in store.list_receipts(tenant=tenant, release_sha=release_sha)
        if r.kind == "rollout_start" and "rollout_id" in r.evidence
    ]


def _start_receipt(store: Store, tenant: str, rollout_id: str) -> Receipt:
    for r in rollouts_of(store, tenant):
        if r.evidence["rollout_id"] == rollout_id:
            return r
    raise NotFoundError(f"no rollout {rollout_id!r}")


def _num(value: Any, fmt: str) -> str:
    return "-" if value is None else format(float(value), fmt)


def monitor_summary(v: MonitorVerdict) -> str:
    """A monitor's reading against its threshold, in numbers (from the verdict's evidence)."""
    e = v.evidence
    if v.monitor == "latency_p95" and "candidate_p95_s" in e:
        return (
            f"p95 {_num(e['candidate_p95_s'] * 1000, '.0f')} ms vs stable "
            f"{_num(e['stable_p95_s'] * 1000, '.0f')} ms: ratio {_num(e.get('ratio'), '.2f')} "
            f"(limit {e.get('threshold_ratio')}x; n {e.get('candidate_count')} / "
            f"{e.get('stable_count')})"
        )
    if v.monitor == "error_rate" and "candidate_total" in e:
        return (
            f"5xx {_num(e.get('candidate_rate'), '.2%')} of {e['candidate_total']} vs stable "
            f"{_num(e.get('stable_rate'), '.2%')} of {e.get('stable_total')} "
            f"(limit {_num(e.get('limit_rate'), '.2%')})"
        )
    if v.monitor == "quality" and isinstance(e.get("slices"), list):
        parts = [
            f"{row.get('slice')} q {_num(row.get('q'), '.2f')} (n {row.get('n')})"
            + (" FAIL" if row.get("verdict") == "FAIL" else "")
            for row in e["slices"]
        ]
        floor = e["slices"][0].get("floor") if e["slices"] else None
        return f"floor {floor}: " + ", ".join(parts)
    return ""


def _pct(bp: int) -> str:
    return f"{bp / 100:g}%"


def _reading_event(
    fact: Fact, t0: float, spec: RolloutSpec, weight: int, receipt: str | None
) -> TimelineEvent:
    reading = Reading.from_fact_data(fact.at, fact.data)
    verdicts = [
        v
        for v, present in zip(
            evaluate_monitors(reading, spec.thresholds),
            (reading.latency, reading.errors, reading.quality),
            strict=True,
        )
        if present is not None
    ]
    worst = next((v for v in verdicts if str(v.verdict) == "FAIL"), None)
    title = "monitor readings" + (f": {worst.monitor} FAILS" if worst else "")
    return TimelineEvent(
        fact.at, fact.at - t0, "reading fail" if worst else "reading", title, "", weight,
        receipt, verdicts,
    )  # fmt: skip


def _minute_event(
    fact: Fact, t0: float, spec: RolloutSpec, weight: int, receipt: str | None
) -> TimelineEvent:
    threshold = spec.observer.threshold(spec.thresholds.quality_floor)
    rows = []
    below = []
    for name, row in sorted(dict(fact.data.get("slices", {})).items()):
        q, n = row.get("q"), int(row.get("n", 0))
        counted = n >= spec.observer.n_min and q is not None
        is_below = counted and float(q) < threshold
        if is_below:
            below.append(name)
        rows.append({"slice": name, "q": q, "n": n, "counted": counted, "below": is_below})
    title = "observer minute" + (f": below threshold on {', '.join(below)}" if below else "")
    detail = (
        f"threshold {threshold:.3f} ({spec.observer.rollback_fraction:g} x floor "
        f"{spec.thresholds.quality_floor:g}); a minute counts with n >= {spec.observer.n_min}"
    )
    return TimelineEvent(
        fact.at, fact.at - t0, "minute fail" if below else "minute", title, detail, weight,
        receipt, slices=rows,
    )  # fmt: skip


def _event(
    fact: Fact, t0: float, spec: RolloutSpec, weight: int, receipt: str | None
) -> TimelineEvent | None:
    d = fact.data
    at, rel = fact.at, fact.at - t0
    who = str(d.get("actor") or "")
    why = str(d.get("reason") or "")
    by = f" by {who}" if who else ""
    k = fact.kind
    simple: dict[FactKind, tuple[str, str]] = {
        FactKind.STARTED: ("start", "rollout started"),
        FactKind.ABORT: ("rollback", f"abort{by}"),
        FactKind.RESUME: ("step", f"resumed{by}"),
        FactKind.PROMOTE: ("step", f"promote requested{by}"),
        FactKind.HOLD_EXTENDED: ("hold", "hold extended: monitors not yet conclusive"),
        FactKind.SHADOW_STARTED: ("step", "shadow started (mirrored traffic, not served)"),
        FactKind.SHADOW_ENDED: ("step", "shadow ended: the candidate serves"),
        FactKind.COMPLETED: ("done", "completed: the candidate serves 100%"),
        FactKind.OBSERVE_ENDED: ("done", "observation ended"),
    }
    if k is FactKind.READING:
        return _reading_event(fact, t0, spec, weight, receipt)
    if k is FactKind.MINUTE:
        return _minute_event(fact, t0, spec, weight, receipt)
    if k is FactKind.REQUESTS:
        return None
    if k is FactKind.STEP_ENTERED:
        index = int(d.get("index", 0))
        step = spec.steps[index] if 0 <= index < len(spec.steps) else None
        hold = ""
        if step is not None and step.has_hold:
            hold = f"hold: {step.dwell_s:g} s and {step.min_requests} requests"
            if step.deadline_s is not None:
                hold += f", deadline {step.deadline_s:g} s"
        title = f"step {index + 1}: weight {_pct(int(d.get('weight_bp', 0)))}"
        return TimelineEvent(at, rel, "step", title, hold, None, receipt)
    if k is FactKind.PAUSE:
        if str(d.get("source")) == "inconclusive":
            return TimelineEvent(at, rel, "inconclusive", "INCONCLUSIVE: paused for a human",
                                 why, weight, receipt)  # fmt: skip
        return TimelineEvent(at, rel, "hold", f"paused{by}", why, weight, receipt)
    if k is FactKind.ROLLED_BACK:
        cause = str(d.get("cause") or "")
        auto = cause in ("monitor", "observer")
        title = (
            f"AUTOMATIC ROLLBACK ({cause})" if auto else f"rolled back ({cause or 'manual'})"
        ) + (f" to {str(d.get('to'))[:12]}" if d.get("to") else "")
        return TimelineEvent(at, rel, "rollback", title, why, 0, receipt)
    css, title = simple[k]
    shown = None if k is FactKind.STARTED else weight
    return TimelineEvent(at, rel, css, title, why, shown, receipt)


def _condense(events: list[TimelineEvent]) -> list[TimelineEvent]:
    """Readings are taken every tick: keep the last of each run (the one a decision or the
    page sees), and every failing one."""
    out: list[TimelineEvent] = []
    for e in events:
        if (
            out
            and e.kind == "reading"
            and out[-1].kind == "reading"
            and out[-1].receipt_kind is None
        ):
            out[-1] = e
        else:
            out.append(e)
    return out


def rollout_view(
    store: Store,
    tenant: str,
    rollout_id: str,
    *,
    clock: Callable[[], float],
    live: LiveRollouts | None = None,
) -> RolloutView:
    """The rollout's page data (``NotFoundError`` when the tenant has no such rollout)."""
    start = _start_receipt(store, tenant, rollout_id)
    candidate = start.release_sha256
    stable = start.evidence.get("stable")
    receipts = store.list_receipts(tenant=tenant, release_sha=candidate)
    # Read the facts with their receipt (StoreFactLog.load drops it): each event names the
    # decision it was recorded with.
    rows: list[tuple[Fact, str]] = []
    for row in store.facts(candidate, FACT_KIND, tenant=tenant):
        if row.payload.get("rollout_id") == rollout_id:
            rows.append((Fact.from_dict(row.payload.get("fact")), row.receipt_sha256))
    status = RolloutStatus.from_facts(f for f, _ in rows)
    running = None
    if live is not None:
        try:
            running = live.get(rollout_id, tenant)
        except NotFoundError:
            running = None
    if running is not None:
        status = running.status
    spec = RolloutSpec.from_dict(status.spec_overrides or {})
    decision = running.phase() if running is not None else compute_phase(spec, status, clock())
    t0 = status.started_at or 0.0
    events: list[TimelineEvent] = []
    weight = 0
    for fact, _receipt in rows:
        if fact.kind is FactKind.STEP_ENTERED:
            weight = int(fact.data.get("weight_bp", weight))
        event = _event(fact, t0, spec, weight, None)
        if event is not None:
            events.append(event)
    _attach_receipts(events, rows, {r.receipt_sha256: r for r in receipts})
    events = _condense(events)
    if running is not None:
        persisted = {e.at for e in events}
        for reading in status.readings[-1:]:
            if reading.at not in persisted:
                fact = Fact(FactKind.READING, reading.at, reading.to_fact_data())
                events.append(_reading_event(fact, t0, spec, status.step_weight_bp, None))
    hold = None
    monitors: list[MonitorVerdict] = []
    phase_over = decision.phase in TERMINAL_PHASES
    if 0 <= status.step_index < len(spec.steps) and status.completed_at is None and not phase_over:
        step = spec.steps[status.step_index]
        if step.has_hold:
            hold = hold_progress(step, status, clock())
        monitors = list(evaluate_monitors(status.latest(), spec.thresholds))
    elif status.shadow_mirror is not None and status.step_index < 0 and not phase_over:
        # A cold start's shadow of the live release: the quality of its mirrored answers
        # (relgate.rollout.shadow), what the shadow is decided on.
        monitors = [evaluate_shadow(status.latest().quality, spec.thresholds).monitor]
    state, note, served, live_now = served_state(
        str(decision.phase), candidate, status.step_weight_bp, store.list_receipts(tenant=tenant)
    )
    return RolloutView(
        rollout_id=rollout_id,
        tenant=tenant,
        candidate=candidate,
        stable=None if stable is None else str(stable),
        spec=spec,
        status=status,
        decision=decision,
        hold=hold,
        monitors=monitors,
        events=events,
        live=running is not None,
        state=state,
        state_note=note,
        served_bp=served,
        live_release=live_now,
        plots=rollout_plots([f for f, _ in rows], status, end=None if phase_over else clock()),
    )


def _hold_text(evidence: dict[str, Any]) -> str:
    hold = evidence.get("hold")
    if not isinstance(hold, dict):
        return ""
    return (
        f"hold at this checkpoint: dwell {hold.get('dwell_elapsed_s', 0):.0f} / "
        f"{hold.get('dwell_required_s', 0):.0f} s, requests {hold.get('requests_seen', 0)} / "
        f"{hold.get('requests_required', 0)}"
    )


def _attach_receipts(
    events: list[TimelineEvent], rows: Sequence[tuple[Fact, str]], by_sha: dict[str, Receipt]
) -> None:
    """Name on each event the receipt its fact was committed with, once per receipt (on the
    last fact of the transaction: the decision; readings ride along before it)."""
    by_at: dict[float, int] = {}
    for i, e in enumerate(events):
        if not e.kind.startswith("reading"):
            by_at[e.at] = i
    last_of: dict[str, float] = {}
    for fact, receipt in rows:
        if fact.kind not in (FactKind.READING, FactKind.REQUESTS):
            last_of[receipt] = fact.at
    for receipt, at in last_of.items():
        j = by_at.get(at)
        found = by_sha.get(receipt)
        if j is None or found is None or events[j].receipt_kind is not None:
            continue
        e = events[j]
        # The checkpoint's hold (dwell and request count when it was decided) and its reason.
        extra = [t for t in (_hold_text(found.evidence), found.reason) if t and t not in e.detail]
        detail = "; ".join([e.detail, *extra] if e.detail else extra)
        events[j] = dataclasses.replace(e, receipt_kind=found.kind, detail=detail)
