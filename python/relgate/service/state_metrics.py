"""Prometheus metrics read from the server's state at scrape time (docs/metrics.md).

What the store and the rollout manager already know is not counted a second time on the side:
:class:`StateCollector` reads it when Prometheus scrapes, so every writer is covered (a receipt
of any kind, written by any use case, is in the chain) and a restart loses nothing.

- ``relgate_receipts_emitted_total{kind}``: receipts in the chain, every kind of
  ``receipts.model.RECEIPT_KINDS`` (zero included), across tenants.
- ``relgate_gate_verdicts_total{tenant,verdict}``: ``gate_pass`` / ``gate_fail`` /
  ``gate_override`` receipts.
- ``relgate_gate_slice_q{tenant,release,slice}``: per-slice q of the latest gate of each release
  that is live or a running rollout's candidate (bounded: a few releases per tenant).
- ``relgate_rollout_phase{tenant,rollout,candidate,phase}`` (1 for the current phase, 0 for the
  others), ``relgate_rollout_step``, ``relgate_rollout_steps``,
  ``relgate_rollout_candidate_weight_ratio`` and ``relgate_rollout_slice_q{...,slice}`` (the
  quality monitor's latest replay): the latest rollout of each tenant.
- ``relgate_live_release_info{tenant,release}``: 1 for the release serving each tenant.
- ``relgate_anchor_lag_seconds{tenant}``: seconds since the tenant's last anchored tree head.

Judges are counted as they score: :func:`counting_judges` wraps a gate's judge factory so every
judge it builds adds its rows to ``relgate_judge_rows_scored_total{judge}`` (rate() of it is
rows/s). Release labels are the first 12 hex digits of the sha256.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from relgate.gate.sources import JudgeChoice
from relgate.judge.base import Judge
from relgate.receipts.model import RECEIPT_KINDS, Receipt, ReceiptKind
from relgate.rollout.phase import Phase
from relgate.rollout.spec import RolloutSpec
from relgate.routing import FULL_WEIGHT_BP
from relgate.store import Store, schema

if TYPE_CHECKING:
    from relgate.app.rollouts import RolloutManager

__all__ = ["CountingJudge", "StateCollector", "counting_judges", "release_label"]

_GATE_KINDS = {
    ReceiptKind.GATE_PASS.value: "pass",
    ReceiptKind.GATE_FAIL.value: "fail",
    ReceiptKind.GATE_OVERRIDE.value: "override",
}


def release_label(sha256: str | None) -> str:
    """A release's label value: its first 12 hex digits."""
    return sha256[:12] if sha256 else "none"


def _finite(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class StateCollector(Collector):
    """The store's and the rollout manager's state as metrics (see the module docstring)."""

    def __init__(self, store: Store, rollouts: RolloutManager | None = None) -> None:
        self._store = store
        self._rollouts = rollouts

    def describe(self) -> Iterable[Metric]:
        # Registration must not query the store (the collector is added before it serves).
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._receipts()
        yield from self._anchor_lag()
        yield from self._rollout_state()

    # -- receipts ---------------------------------------------------------------------------

    def _receipts(self) -> Iterator[Metric]:
        r = schema.receipts.c
        with self._store.db.read() as conn:
            rows = conn.execute(
                sa.select(r.tenant, r.kind, sa.func.count()).group_by(r.tenant, r.kind)
            ).all()
        by_kind = dict.fromkeys(RECEIPT_KINDS, 0)
        emitted = CounterMetricFamily(
            "relgate_receipts_emitted",
            "Receipts in the chain, by kind (every declared kind; all tenants).",
            labels=("kind",),
        )
        verdicts = CounterMetricFamily(
            "relgate_gate_verdicts",
            "Gate decisions recorded, by tenant and verdict (pass, fail, override).",
            labels=("tenant", "verdict"),
        )
        for tenant, kind, n in rows:
            by_kind[kind] = by_kind.get(kind, 0) + int(n)
            if kind in _GATE_KINDS:
                verdicts.add_metric((tenant, _GATE_KINDS[kind]), int(n))
        for kind, n in by_kind.items():
            emitted.add_metric((kind,), n)
        yield emitted
        yield verdicts

    def _anchor_lag(self) -> Iterator[Metric]:
        a = schema.anchors.c
        with self._store.db.read() as conn:
            rows = conn.execute(
                sa.select(a.tenant, sa.func.max(a.created_at)).group_by(a.tenant)
            ).all()
        now = datetime.fromisoformat(self._store.now())
        lag = GaugeMetricFamily(
            "relgate_anchor_lag_seconds",
            "Seconds since the tenant's last tree head was anchored (absent: never anchored).",
            labels=("tenant",),
        )
        for tenant, last in rows:
            seconds = (now - datetime.fromisoformat(str(last))).total_seconds()
            lag.add_metric((tenant,), max(0.0, seconds))
        yield lag

    # -- rollouts and gates -----------------------------------------------------------------

    def _rollout_state(self) -> Iterator[Metric]:
        rl = ("tenant", "rollout", "candidate")
        phase = GaugeMetricFamily(
            "relgate_rollout_phase",
            "1 for the phase the tenant's latest rollout is in, 0 for the others.",
            labels=(*rl, "phase"),
        )
        step = GaugeMetricFamily(
            "relgate_rollout_step", "Current step of the rollout (1-based; 0 before the first).",
            labels=rl,
        )  # fmt: skip
        steps = GaugeMetricFamily(
            "relgate_rollout_steps", "Number of steps in the rollout's spec.", labels=rl
        )
        weight = GaugeMetricFamily(
            "relgate_rollout_candidate_weight_ratio",
            "Share of eligible traffic routed to the candidate (0..1).",
            labels=rl,
        )
        rollout_q = GaugeMetricFamily(
            "relgate_rollout_slice_q",
            "Per-slice q of the rollout's latest quality replay (candidate rho / ceiling).",
            labels=(*rl, "slice"),
        )
        live = GaugeMetricFamily(
            "relgate_live_release_info",
            "1 for the release serving the tenant's traffic now.",
            labels=("tenant", "release"),
        )
        gate_q = GaugeMetricFamily(
            "relgate_gate_slice_q",
            "Per-slice q of the latest gate of each live or candidate release.",
            labels=("tenant", "release", "slice"),
        )
        watched: dict[str, set[str]] = {}
        if self._rollouts is not None:
            for ar in self._rollouts.latest_rollouts():
                status = ar.status
                key = (ar.tenant, ar.rollout_id, release_label(status.candidate))
                now = ar.phase().phase
                for p in Phase:
                    phase.add_metric((*key, p.value), 1.0 if p is now else 0.0)
                step.add_metric(key, float(status.step_index + 1))
                spec = RolloutSpec.from_dict(status.spec_overrides or {})
                steps.add_metric(key, float(len(spec.steps)))
                weight.add_metric(key, _served_share(now, status.step_weight_bp))
                quality = status.latest().quality
                for s in quality.slices if quality is not None else ():
                    q = _finite(s.q)
                    if q is not None:
                        rollout_q.add_metric((*key, s.slice), q)
                if status.candidate and not ar.over:
                    watched.setdefault(ar.tenant, set()).add(status.candidate)
            for tenant in self._store.tenants():
                sha = self._rollouts.live_release(tenant)
                if sha:
                    live.add_metric((tenant, release_label(sha)), 1.0)
                    watched.setdefault(tenant, set()).add(sha)
        for tenant, shas in sorted(watched.items()):
            for sha in sorted(shas):
                receipts = self._store.list_receipts(tenant=tenant, release_sha=sha)
                for name, q in _gate_slices(receipts):
                    gate_q.add_metric((tenant, release_label(sha), name), q)
        yield from (phase, step, steps, weight, rollout_q, live, gate_q)


def _served_share(phase: Phase, step_weight_bp: int) -> float:
    """The candidate's share of traffic in ``phase``: none in shadow or after a rollback or
    abort, all of it once completed, else the step's weight."""
    if phase in (Phase.SHADOW, Phase.ROLLED_BACK, Phase.ABORTED, Phase.PENDING):
        return 0.0
    if phase in (Phase.COMPLETED, Phase.OBSERVING):
        return 1.0
    return step_weight_bp / FULL_WEIGHT_BP


def _gate_slices(receipts: Sequence[Receipt]) -> list[tuple[str, float]]:
    """(slice, q) of the latest gate_pass/gate_fail receipt among ``receipts``."""
    for receipt in reversed(receipts):
        if receipt.kind in (ReceiptKind.GATE_PASS, ReceiptKind.GATE_FAIL):
            out = []
            for row in receipt.evidence.get("slices") or []:
                q = _finite(row.get("q")) if isinstance(row, Mapping) else None
                if q is not None:
                    out.append((str(row.get("slice")), q))
            return out
    return []


class CountingJudge:
    """A judge that adds the rows it scores to a counter; everything else is the judge's."""

    def __init__(self, judge: Judge, rows: Counter, label: str) -> None:
        self._judge = judge
        self._rows = rows.labels(judge=label)

    @property
    def wrapped(self) -> Judge:
        """The judge whose rows are counted."""
        return self._judge

    @property
    def judge_sha256(self) -> str:
        """The wrapped judge's identity."""
        return self._judge.judge_sha256

    @property
    def description(self) -> Mapping[str, Any]:
        """The wrapped judge's description."""
        return self._judge.description

    def score(self, answers: Sequence[str], references: Sequence[str]) -> npt.NDArray[np.float64]:
        """Score through the wrapped judge, then count the rows."""
        out = self._judge.score(answers, references)
        self._rows.inc(len(answers))
        return out

    def agree(self, answer: str, reference: str) -> float:
        """One row."""
        return float(self.score([answer], [reference])[0])

    def __getattr__(self, name: str) -> Any:
        return getattr(self._judge, name)


def counting_judges(
    factory: Callable[[JudgeChoice], Judge], rows: Counter
) -> Callable[[JudgeChoice], Judge]:
    """``factory`` whose judges count their rows in ``rows`` (label: the judge's backend)."""

    def make(choice: JudgeChoice) -> Judge:
        return CountingJudge(factory(choice), rows, choice.backend)

    return make
