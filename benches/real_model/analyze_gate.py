"""The gate statistic on the recorded real-model answers, with the embedding judge.

Per release run and slice of the subset: how many answers are hedges/refusals, empty or short;
rho = Spearman(agree(answer, reference), human_grade) over the slice's rows with its item-cluster
bootstrap CI; q = rho / ceiling with the ceiling from ``calibrate(suite, judge,
answers=best_answers)``; and the paired change vs the baseline run (v1 seed 1, or v1@t0 for
greedy runs) with its CI and one-sided p-value (``paired_changes``, margin 0.05 on the q scale).
The A/A distribution is every pair of v1 runs with different seeds.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/analyze_gate.py
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from common import ANSWERS, DATA, LEGAL_SLICE, Run, answer_class, best_answers, subset_suite
from common import write_json as write
from releases import LEGAL_ONLY
from relgate.answers import Answers
from relgate.gate.calibration import Calibration, calibrate
from relgate.gate.run import score_release
from relgate.gate.statistic import paired_changes, slice_statistics
from relgate.judge.cache import ScoreCache
from relgate.judge.embedding import EmbeddingJudge
from relgate.suite import Suite

MARGIN = 0.05
BOOT = {"n_resamples": 1000, "confidence": 0.95, "seed": 0}


def load_runs() -> dict[str, Run]:
    """All recorded runs by ``release__sSEED``; legal-only runs completed with v1's answers."""
    runs = {p.stem: Run.read(p) for p in sorted(ANSWERS.glob("*.jsonl"))}
    for key, run in list(runs.items()):
        name, _, seed = key.partition("__s")
        base, _, temp = name.partition("@")
        if base not in LEGAL_ONLY:
            continue
        v1 = runs.get(f"v1{'@' + temp if temp else ''}__s{seed}")
        if v1 is None:
            del runs[key]
            print(f"skip {key}: no v1 run with seed {seed} for its other classes")
            continue
        law = {a.item_id for a in run.answers}
        run.answers = run.answers + [a for a in v1.answers if a.item_id not in law]
    return runs


def classes(run: Run) -> dict[str, dict[str, int]]:
    out: dict[str, Counter[str]] = {}
    for a in run.answers:
        out.setdefault(a.slice, Counter())[answer_class(a.answer)] += 1
    return {s: dict(c) for s, c in out.items()}


def analyze(
    suite: Suite,
    judge: EmbeddingJudge,
    cal: Calibration,
    cache: ScoreCache,
    candidate: Run,
    baseline: Run | None,
) -> dict[str, Any]:
    scores = score_release(
        suite,
        judge,
        Answers(candidate.texts()),
        Answers(baseline.texts()) if baseline is not None else None,
        cache=cache,
    )
    y = scores.rows["human_grade"].to_numpy().astype(np.float64)
    x_new = scores.rows["x_candidate"].to_numpy().astype(np.float64)
    stats = slice_statistics(scores.slices, x_new, y, scores.offsets, scores.clusters, **BOOT)
    ceilings = np.array([cal.for_slice(s).rho for s in scores.slices])  # type: ignore[union-attr]
    changes = None
    if baseline is not None:
        x_old = scores.rows["x_previous"].to_numpy().astype(np.float64)
        changes = paired_changes(
            scores.slices,
            x_new,
            x_old,
            y,
            scores.offsets,
            scores.clusters,
            scales=ceilings,
            margin=MARGIN,
            **BOOT,
        )
    cls = classes(candidate)
    tokens: dict[str, list[int]] = {}
    for a in candidate.answers:
        tokens.setdefault(a.slice, []).append(a.completion_tokens or 0)
    out = {}
    for i, st in enumerate(stats):
        c = float(ceilings[i])
        row: dict[str, Any] = {
            "n_items": st.n_items,
            "n_rows": st.n_rows,
            "rho": st.rho,
            "rho_low": st.rho_low,
            "rho_high": st.rho_high,
            "q": st.rho / c,
            "q_low": st.rho_low / c,
            "q_high": st.rho_high / c,
            "classes": cls.get(st.slice, {}),
            "completion_tokens_mean": statistics.fmean(tokens.get(st.slice, [0])),
        }
        if changes is not None:
            ch = changes[i]
            row |= {
                "change": ch.estimate,
                "change_low": ch.low,
                "change_high": ch.high,
                "p_noninferior": ch.p_value,
            }
        out[st.slice] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DATA / "gate_embedding.json")
    args = parser.parse_args()

    suite = subset_suite()
    judge = EmbeddingJudge()
    cache = ScoreCache()
    best = best_answers()
    cal = calibrate(suite, judge, answers={i: best[i] for i in suite.item_ids}, cache=cache, **BOOT)
    calibration = {
        s.slice: {
            "ceiling": s.rho,
            "low": s.rho_low,
            "high": s.rho_high,
            "n_items": s.n_items,
            "n_rows": s.n_rows,
        }
        for s in cal.slices
    }
    runs = load_runs()
    result: dict[str, Any] = {"calibration": calibration, "runs": {}, "aa": {}}
    for key, run in runs.items():
        greedy = "@t0" in key
        base_key = "v1@t0__s0" if greedy else "v1__s1"
        baseline = runs.get(base_key) if key != base_key else None
        result["runs"][key] = {
            "baseline": base_key if baseline is not None else None,
            "wall_s": run.wall_s,
            "n_answers": len(run.answers),
            "slices": analyze(suite, judge, cal, cache, run, baseline),
        }
        print(f"analyzed {key}", flush=True)

    # A/A: every pair of sampled v1 runs.
    v1_keys = sorted(k for k in runs if k.startswith("v1__s"))
    pairs = []
    for a, b in itertools.combinations(v1_keys, 2):
        per = analyze(suite, judge, cal, cache, runs[b], runs[a])
        pairs.append({"old": a, "new": b, "slices": per})
    result["aa"]["pairs"] = pairs
    changes = [r["change"] for p in pairs for r in p["slices"].values()]
    widths = [r["change_high"] - r["change_low"] for p in pairs for r in p["slices"].values()]
    if changes:
        result["aa"]["summary"] = {
            "n_changes": len(changes),
            "mean": statistics.fmean(changes),
            "sd": statistics.stdev(changes) if len(changes) > 1 else math.nan,
            "min": min(changes),
            "max": max(changes),
            "ci_width_mean": statistics.fmean(widths),
            "per_slice": {
                s: {
                    "changes": [p["slices"][s]["change"] for p in pairs],
                    "ci_lows": [p["slices"][s]["change_low"] for p in pairs],
                }
                for s in suite.slices
            },
        }
    write(args.out, result)
    print("wrote", args.out)
    print_summary(result)


def print_summary(result: dict[str, Any]) -> None:
    cal = result["calibration"]
    print("\nceilings:", {s: round(v["ceiling"], 3) for s, v in cal.items()})
    for key, run in result["runs"].items():
        cells = []
        for s, r in run["slices"].items():
            hedges = r["classes"].get("hedge", 0)
            text = f"{s[:6]} q {r['q']:+.2f}"
            if "change" in r:
                text += f" d {r['change']:+.2f} [{r['change_low']:+.2f},{r['change_high']:+.2f}]"
            text += f" h{hedges}/{r['n_items']}"
            cells.append(text)
        print(f"{key:24s} " + " | ".join(cells))
    if "summary" in result["aa"]:
        s = result["aa"]["summary"]
        print(
            f"\nA/A: {s['n_changes']} slice changes, mean {s['mean']:+.3f} sd {s['sd']:.3f} "
            f"min {s['min']:+.3f} max {s['max']:+.3f}, mean CI width {s['ci_width_mean']:.3f}"
        )
    _ = LEGAL_SLICE


if __name__ == "__main__":
    main()
