"""Paired replay margins from the recorded real answers (input of the sequential simulations).

For every item of the suite subset and every recorded answer ``x`` of it (v1 at temperature
0.7 with seeds 1-4, and the candidates below, seed 2), and every v1 answer ``s`` that could have
been the stable release's *served* answer (seeds 1-4), the embedding judge's

    m(x | s) = agree(x, s) - mean_k agree(x, anchor_k)

with the slice's anchors exactly as the rollout replay uses them (``suite_anchors``: up to 12
human-graded-bad references of the slice plus the hedges). A replayed trace's paired difference
is ``m(candidate | s) - m(rerun | s)`` (rollout/sequential.py), so this table is all a
simulation needs. Written to ``data/paired_margins.json``; a 60-item excerpt with the texts and
the judge's agreements goes to ``tests/unit/rollout/data/replay_real.json`` for the unit tests.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/paired_margins.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from common import ANSWERS, DATA, SUBSET, Run, machine, subset_suite
from relgate.app.probes import suite_anchors
from relgate.data import demo_suite_path
from relgate.judge.embedding import EmbeddingJudge

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "unit" / "rollout" / "data" / "replay_real.json"
SERVED = ("v1__s1", "v1__s2", "v1__s3", "v1__s4")
CANDIDATES = ("fewshot_hedge__s2", "law_strip__s2", "law_stop_space__s2", "reworded__s2")


def main() -> None:
    t0 = time.perf_counter()
    runs = {name: Run.read(ANSWERS / f"{name}.jsonl").texts() for name in SERVED + CANDIDATES}
    # Legal-only candidates answered Law alone: their other classes are v1's (seed 2).
    for name in CANDIDATES:
        if name.startswith("law_"):
            runs[name] = {**runs["v1__s2"], **runs[name]}
    suite = subset_suite()
    frame = suite.frame
    item_slice = dict(zip(frame["item_id"].to_list(), frame["slice"].to_list(), strict=True))
    anchors = suite_anchors(demo_suite_path())
    judge = EmbeddingJudge()
    arms = SERVED + CANDIDATES
    items = sorted(i for i in item_slice if all(i in runs[a] for a in arms))
    texts = sorted(
        {runs[a][i] for a in arms for i in items} | {x for s in SUBSET for x in anchors[s]}
    )
    index = {t: k for k, t in enumerate(texts)}
    emb = np.asarray(judge.embed(texts), dtype=np.float64)

    def agree(a: str, b: str) -> float:
        return float((1.0 + emb[index[a]] @ emb[index[b]]) / 2.0)

    rows = []
    for i in items:
        anc = anchors[item_slice[i]]
        margins = [
            [
                agree(runs[x][i], runs[s][i]) - float(np.mean([agree(runs[x][i], a) for a in anc]))
                for s in SERVED
            ]
            for x in arms
        ]
        rows.append({"item_id": i, "slice": item_slice[i], "m": margins})
    out = {
        "arms": list(arms),
        "served": list(SERVED),
        "judge": "embedding all-MiniLM-L6-v2",
        "items": rows,
        "seconds": time.perf_counter() - t0,
        "machine": machine(),
    }
    (DATA / "paired_margins.json").write_text(json.dumps(out, indent=1) + "\n")

    # The unit-test excerpt: 30 Law and 30 Health items with texts and every agreement used.
    picked = [i for i in items if item_slice[i] == "Law"][:30]
    picked += [i for i in items if item_slice[i] == "Health"][:30]
    fx_items = []
    for i in picked:
        refs = [*(runs[s][i] for s in SERVED), *anchors[item_slice[i]]]
        answers = {a: runs[a][i] for a in arms}
        fx_items.append(
            {
                "item_id": i,
                "slice": item_slice[i],
                "answers": answers,
                # agree[arm] = the judge's agreement of that answer with each served answer
                # (v1 seeds 1-4), then with each of the slice's anchors, in order.
                "agree": {a: [round(agree(x, r), 6) for r in refs] for a, x in answers.items()},
            }
        )
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(
        json.dumps(
            {
                "source": "benches/real_model/paired_margins.py from data/answers",
                "anchors": {s: anchors[s] for s in ("Law", "Health")},
                "served": list(SERVED),
                "items": fx_items,
            },
            separators=(",", ":"),
        )
        + "\n"
    )
    print(f"{len(rows)} items, {len(texts)} texts embedded in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
