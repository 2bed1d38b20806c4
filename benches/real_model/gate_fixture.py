"""The unit-test fixture of the gate on real answers: per-row embedding-judge scores of the
recorded v1 runs (seeds 1-4) and the reworded release (seed 2) on the suite subset, with the
calibration (held-out best answers), as ``decide`` takes them.

    PYTHONPATH=python /work/main/.venv/bin/python benches/real_model/gate_fixture.py
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from common import ANSWERS, Run, best_answers, subset_suite
from relgate.answers import Answers
from relgate.gate import calibrate, score_release
from relgate.judge.cache import ScoreCache
from relgate.judge.embedding import EmbeddingJudge

OUT = Path(__file__).resolve().parents[2] / "tests" / "unit" / "gate" / "data" / "gate_real.json"
RUNS = ("v1__s1", "v1__s2", "v1__s3", "v1__s4", "reworded__s2")


def main() -> None:
    suite, judge, cache = subset_suite(), EmbeddingJudge(), ScoreCache()
    best = best_answers()
    cal = calibrate(suite, judge, answers={i: best[i] for i in suite.item_ids}, cache=cache)
    columns: dict[str, list[float]] = {}
    base = None
    for name in RUNS:
        s = score_release(suite, judge, Answers(Run.read(ANSWERS / f"{name}.jsonl").texts()))
        base = s.rows if base is None else base
        columns[name] = [round(float(x), 6) for x in s.rows["x_candidate"].to_list()]
    assert base is not None
    out = {
        "source": "benches/real_model/gate_fixture.py from data/answers (embedding judge)",
        "suite_sha256": suite.sha256,
        "judge_sha256": judge.judge_sha256,
        "item_id": base["item_id"].to_list(),
        "slice": base["slice"].to_list(),
        "n_rows": base.height,
        "human_grade": base["human_grade"].to_list(),
        "scores": columns,
        "calibration": {k: v for k, v in asdict(cal).items() if k != "slices"},
        "calibration_slices": [asdict(s) for s in cal.slices],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print("wrote", OUT, OUT.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
