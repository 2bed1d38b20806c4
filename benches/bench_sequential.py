"""False rollbacks over time and detection time, simulated from recorded real-model traces.

Input: ``benches/real_model/data/paired_margins.json`` (SmolLM2-135M-Instruct on llama.cpp at
temperature 0.7, v1 answered with seeds 1-4 and the candidates with seed 2, every answer's
paired margin under the embedding judge; ``real_model/paired_margins.py``). A simulated trace is
a uniformly drawn item of the six-slice subset (so slices arrive in the subset's proportions)
whose served answer, stable rerun and candidate answer are recorded answers:

- A/A: three *different* v1 seeds, roles assigned at random (so each trace's paired difference
  is exactly symmetric about 0: the null holds by construction, as it does for a real A/A);
- a candidate release: its recorded answer; served and rerun two different v1 seeds (for a
  Law-only candidate, the other slices are v1 seed 2 and served/rerun avoid seed 2).

Two decision rules see the same traces:

- ``sequential``: the code that ships (``QualityLedger`` + ``evaluate_quality`` for the canary,
  ``observe_minute`` for the observer) with the default spec: alpha 0.05 per rollout over all
  looks for the canary; alpha 0.05 per day, 60-minute epochs, for the observer;
- ``per-look`` (the anchor): a fixed-sample one-sided z test on each look's own traces (FAIL
  when ``mean + z * se < -margin`` at the same alpha / slices), i.e. what a monitor that tests
  every look afresh does; its error grows with the number of looks.

Canary: traffic ``--rate`` requests/min, step 1 at 5% (hold: 240 s dwell and 1,000 candidate
requests, deadline 1,800 s), step 2 at 25% (900 s, 10,000, 3,600 s), a replay look every 60 s
from the hold on, each replaying the ``replay_cap`` (50) newest stable traces per slice. A
canary FAILs at the first look whose quality verdict is FAIL. Observer: 100%, ``sample_rate``
0.05 of traffic replayed each minute (at most 50 per slice). Seeded and bounded:

    PYTHONPATH=python /work/main/.venv/bin/python benches/bench_sequential.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
from relgate.rollout.monitors import (
    QualityLedger,
    QualityReading,
    SliceQuality,
    Verdict,
    evaluate_quality,
)
from relgate.rollout.observe import MinuteQuality, ObserverState, SliceMinute, observe_minute
from relgate.rollout.spec import DEFAULT_STEPS, MonitorThresholds, ObserverSpec

HERE = Path(__file__).resolve().parent
DATA = HERE / "real_model" / "data" / "paired_margins.json"
OUT = HERE / "real_model" / "data" / "sequential.json"


class Traces:
    """Paired differences of simulated traces drawn from the recorded answers."""

    def __init__(self, data: dict[str, Any], candidate: str, rng: np.random.Generator) -> None:
        self.rng = rng
        arms: list[str] = data["arms"]
        served: list[str] = data["served"]
        self.slices = sorted({it["slice"] for it in data["items"]})
        self.item_slice = np.array([self.slices.index(it["slice"]) for it in data["items"]])
        self.m = np.array([it["m"] for it in data["items"]])  # item x arm x served
        self.v1 = [arms.index(s) for s in served]
        self.cand = None if candidate == "v1" else arms.index(candidate)
        self.law_only = candidate.startswith("law_")
        self.law = self.slices.index("Law")
        self.s2 = arms.index("v1__s2")

    def draw(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``n`` traces: (slice index, paired difference)."""
        rng = self.rng
        items = rng.integers(0, len(self.item_slice), n)
        sl = self.item_slice[items]
        perm = np.argsort(rng.random((n, 4)), axis=1)  # a random order of the four v1 seeds
        v1 = np.asarray(self.v1)
        served, rerun = perm[:, 0], v1[perm[:, 1]]
        if self.cand is None:
            cand = v1[perm[:, 2]]
        else:
            cand = np.full(n, self.cand)
            if self.law_only:
                # Other slices: v1 seed 2 answers; served and rerun from seeds 1, 3 and 4.
                other = sl != self.law
                p3 = np.argsort(rng.random((n, 3)), axis=1)
                pool = np.array([0, 2, 3])
                served = np.where(other, pool[p3[:, 0]], served)
                rerun = np.where(other, v1[pool[p3[:, 1]]], rerun)
                cand = np.where(other, self.s2, cand)
        d = self.m[items, cand, served] - self.m[items, rerun, served]
        return sl, d


def per_look_fails(groups: dict[str, np.ndarray], alpha: float, margin: float) -> bool:
    """The anchor: one fixed-sample z test per slice on this look's traces alone."""
    z = NormalDist().inv_cdf(1 - alpha / max(1, len(groups)))
    for d in groups.values():
        if len(d) >= 2 and d.mean() + z * d.std(ddof=1) / math.sqrt(len(d)) < -margin:
            return True
    return False


def canary(tr: Traces, rate: float, t: MonitorThresholds) -> dict[str, Any]:
    """One canary: the time (s from start) and look count at the first FAIL of each rule."""
    ledger = QualityLedger(t.quality_margin)
    out: dict[str, Any] = {"sequential": None, "per_look": None, "looks": 0}
    clock, seq = 0.0, 0
    for step in DEFAULT_STEPS[:2]:
        share = step.weight_bp / 10_000
        hold = max(step.dwell_s, 60.0 * step.min_requests / (rate * share))
        deadline = step.deadline_s or hold
        look = min(hold, deadline)
        while look <= deadline + 1e-9:
            out["looks"] += 1
            # The 50 newest stable traces per slice: a minute of stable traffic is more than
            # that for the big slices at these rates, so every look replays new traces.
            sl, d = tr.draw(int(rate * (1 - share)))
            groups = {tr.slices[s]: d[sl == s][: t.replay_cap] for s in range(len(tr.slices))}
            slices = []
            for name, ds in groups.items():
                ids = tuple((f"{seq + j}", float(x)) for j, x in enumerate(ds))
                seq += len(ds)
                slices.append(SliceQuality(name, len(ds), 0.5, 0.5, "rerun", ids))
            verdict = evaluate_quality(ledger.fold(QualityReading(slices=tuple(slices))), t)
            now = clock + look
            if out["sequential"] is None and verdict.verdict is Verdict.FAIL:
                out["sequential"] = now
            if out["per_look"] is None and per_look_fails(
                groups, t.quality_alpha, t.quality_margin
            ):
                out["per_look"] = now
            if out["sequential"] is not None and out["per_look"] is not None:
                return out
            look += 60.0
        clock += deadline
    return out


def observer(tr: Traces, rate: float, spec: ObserverSpec, minutes: int, stop: bool) -> dict:
    """Minutes of observation: fires of each rule (each fire restarts that rule's state, as a
    new release would); with ``stop``, returns at the first sequential fire."""
    state = ObserverState()
    fires: dict[str, list[int]] = {"sequential": [], "per_look": []}
    alpha_look = spec.alpha_per_day  # the anchor tests every minute at the day's alpha
    n = max(1, round(rate * spec.sample_rate))
    for m in range(minutes):
        sl, d = tr.draw(n)
        groups = {tr.slices[s]: d[sl == s][:50] for s in range(len(tr.slices))}
        minute = MinuteQuality(
            60.0 * m,
            tuple(SliceMinute(k, None, len(v), tuple(map(float, v))) for k, v in groups.items()),
        )
        state, decision = observe_minute(spec, 0.65, state, minute)
        if decision.fire:
            fires["sequential"].append(m)
            state = ObserverState()
            if stop:
                break
        if per_look_fails({k: v for k, v in groups.items()}, alpha_look, spec.margin):
            fires["per_look"].append(m)
    return fires


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="requests per minute")
    ap.add_argument("--canaries", type=int, default=400)
    ap.add_argument("--days", type=float, default=20.0, help="A/A observer days")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a small run (~1 min)")
    args = ap.parse_args()
    if args.quick:
        args.canaries, args.days = 40, 1.0
    data = json.loads(DATA.read_text())
    t, spec = MonitorThresholds(), ObserverSpec()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "rate_per_min": args.rate,
        "alpha_canary": t.quality_alpha,
        "alpha_observer_per_day": spec.alpha_per_day,
        "margin": t.quality_margin,
        "seed": args.seed,
    }

    # A/A canaries: how often each rule fails a release that is the same model.
    aa = [canary(Traces(data, "v1", rng), args.rate, t) for _ in range(args.canaries)]
    results["canary_aa"] = {
        "canaries": len(aa),
        "looks_per_canary": float(np.mean([c["looks"] for c in aa])),
        "sequential_fails": sum(c["sequential"] is not None for c in aa),
        "per_look_fails": sum(c["per_look"] is not None for c in aa),
    }
    print("A/A canaries:", results["canary_aa"])

    # Detection by the canary at 5% (then 25%) of the regressed releases.
    det: dict[str, Any] = {}
    for cand in ("law_stop_space__s2", "law_strip__s2", "fewshot_hedge__s2"):
        runs = [canary(Traces(data, cand, rng), args.rate, t) for _ in range(40)]
        times = [c["sequential"] for c in runs if c["sequential"] is not None]
        det[cand] = {
            "canaries": len(runs),
            "detected": len(times),
            "median_s": float(np.median(times)) if times else None,
            "max_s": float(np.max(times)) if times else None,
            "first_look_s": max(DEFAULT_STEPS[0].dwell_s, 60.0 * 1000 / (args.rate * 0.05)),
        }
        print("canary", cand, det[cand])
    results["canary_detection"] = det

    # A/A observer days: false rollbacks per day.
    minutes = int(args.days * 1440)
    fires = observer(Traces(data, "v1", rng), args.rate, spec, minutes, stop=False)
    results["observer_aa"] = {
        "days": args.days,
        "minutes": minutes,
        "traces_per_minute": max(1, round(args.rate * spec.sample_rate)),
        "sequential_fires": len(fires["sequential"]),
        "sequential_per_day": len(fires["sequential"]) / args.days,
        "per_look_fires": len(fires["per_look"]),
        "per_look_per_day": len(fires["per_look"]) / args.days,
    }
    print("A/A observer:", results["observer_aa"])
    obs: dict[str, Any] = {}
    for cand in ("law_stop_space__s2", "law_strip__s2", "fewshot_hedge__s2"):
        hits = []
        for _ in range(20):
            f = observer(Traces(data, cand, rng), args.rate, spec, 24 * 60, stop=True)
            if f["sequential"]:
                hits.append(f["sequential"][0] + 1)
        obs[cand] = {
            "runs": 20,
            "detected_within_a_day": len(hits),
            "median_min": float(np.median(hits)) if hits else None,
            "max_min": float(np.max(hits)) if hits else None,
        }
        print("observer", cand, obs[cand])
    results["observer_detection"] = obs
    results["seconds"] = time.perf_counter() - started
    if not args.quick:
        OUT.write_text(json.dumps(results, indent=1) + "\n")
    print(f"done in {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
