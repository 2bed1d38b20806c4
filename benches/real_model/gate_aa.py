"""The gate's false-FAIL rate on A/A releases and on a reworded release, from recorded answers.

A/A: the same release (v1: same model, template and settings) answering with different
sampling seeds, gated against itself with the real gate code (``relgate.gate.run_gate``, the
default policy: floor 0.65 shown with its CI, margin 0.05, Holm across slices, embedding judge,
ceilings from calibration on the held-out best answers as in ``analyze_gate.py``).

- the 12 ordered pairs of the four recorded v1 runs (seeds 1-4, temperature 0.7);
- ``--mixed`` more A/A pairs built per item from the same recordings: for each item the
  candidate's answer and the previous release's answer are two *different* recorded seeds,
  chosen at random (seeded). Each recorded answer is an independent sample of the model for its
  item (per-request seed derived from run seed and item), so a mixed pair is an A/A pair; the
  pairs share answers, so they are not independent of each other (stated with the numbers).

Reworded: the ``reworded`` release (same instruction in other words, seed 2) gated against each
v1 run of another seed, and greedy ``reworded@t0`` against ``v1@t0``. No FAIL is the target.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/gate_aa.py
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections import Counter
from typing import Any

from common import ANSWERS, DATA, Run, best_answers, machine, subset_suite, write_json
from relgate.answers import Answers
from relgate.gate import GatePolicy, calibrate, run_gate
from relgate.judge.cache import ScoreCache
from relgate.judge.embedding import EmbeddingJudge

V1 = ("v1__s1", "v1__s2", "v1__s3", "v1__s4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mixed", type=int, default=24, help="per-item mixed A/A pairs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    suite = subset_suite()
    judge = EmbeddingJudge()
    cache = ScoreCache()
    policy = GatePolicy()
    best = best_answers()
    cal = calibrate(
        suite,
        judge,
        answers={i: best[i] for i in suite.item_ids},
        cache=cache,
        n_resamples=policy.n_resamples,
        confidence=policy.confidence,
        seed=policy.seed,
    )
    runs = {k: Run.read(ANSWERS / f"{k}.jsonl").texts() for k in (*V1, "reworded__s2")}
    runs["v1@t0__s0"] = Run.read(ANSWERS / "v1@t0__s0.jsonl").texts()
    runs["reworded@t0__s0"] = Run.read(ANSWERS / "reworded@t0__s0.jsonl").texts()

    def gate(cand: dict[str, str], prev: dict[str, str]) -> dict[str, Any]:
        res = run_gate(
            suite, judge, Answers(cand), Answers(prev), calibration=cal, policy=policy, cache=cache
        )
        return {
            "outcome": str(res.outcome),
            "verdicts": {s.slice: str(s.verdict) for s in res.slices},
            "reasons": {s.slice: list(s.reasons) for s in res.slices if str(s.verdict) == "FAIL"},
            "changes": {s.slice: s.change for s in res.slices},
        }

    rows: list[dict[str, Any]] = []
    for a, b in itertools.permutations(V1, 2):
        rows.append({"kind": "recorded", "candidate": b, "previous": a, **gate(runs[b], runs[a])})
        print(rows[-1]["kind"], b, a, rows[-1]["outcome"], flush=True)
    rng = random.Random(args.seed)
    items = sorted(suite.item_ids)
    for k in range(args.mixed):
        cand, prev = {}, {}
        for i in items:
            x, y = rng.sample(V1, 2)
            cand[i], prev[i] = runs[x][i], runs[y][i]
        rows.append({"kind": "mixed", "candidate": f"mix{k}", "previous": f"mix{k}'",
                     **gate(cand, prev)})  # fmt: skip
        print("mixed", k, rows[-1]["outcome"], flush=True)
    reworded = [
        {"candidate": "reworded__s2", "previous": p, **gate(runs["reworded__s2"], runs[p])}
        for p in ("v1__s1", "v1__s3", "v1__s4")
    ]
    reworded.append(
        {
            "candidate": "reworded@t0__s0",
            "previous": "v1@t0__s0",
            **gate(runs["reworded@t0__s0"], runs["v1@t0__s0"]),
        }
    )
    slice_counts: Counter[str] = Counter(v for r in rows for v in r["verdicts"].values())
    summary = {
        "aa_gates": len(rows),
        "aa_recorded": sum(r["kind"] == "recorded" for r in rows),
        "aa_mixed": sum(r["kind"] == "mixed" for r in rows),
        "aa_outcomes": dict(Counter(r["outcome"] for r in rows)),
        "aa_slice_verdicts": dict(slice_counts),
        "aa_fail_gates": sum(r["outcome"] == "fail" for r in rows),
        "reworded_outcomes": [r["outcome"] for r in reworded],
        "reworded_slice_verdicts": dict(
            Counter(v for r in reworded for v in r["verdicts"].values())
        ),
        "policy": {
            "floor": policy.floor,
            "margin": policy.non_inferiority_margin,
            "strict": policy.strict,
        },
        "seconds": time.perf_counter() - t0,
        "machine": machine(),
    }
    write_json(DATA / "gate_aa.json", {"summary": summary, "aa": rows, "reworded": reworded})
    print(summary)


if __name__ == "__main__":
    main()
