"""The gate on a real model's answers: A/A and reworded releases never FAIL.

``data/gate_real.json`` holds the embedding judge's per-row scores of answers recorded from
SmolLM2-135M-Instruct (llama.cpp, temperature 0.7; benches/real_model/data/answers) on the
six-slice suite subset: v1 with sampling seeds 1-4 and the reworded release (same instruction
in other words, seed 2), and the calibration on the held-out best answers
(benches/real_model/gate_fixture.py wrote it). The full measurement over 36 A/A gates is in
benches/RESULTS.md.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
import pytest
from relgate.gate import Calibration, GatePolicy, SliceCalibration, decide
from relgate.gate.verdict import GateOutcome, GateScores, SliceVerdict

DATA = json.loads((Path(__file__).parent / "data" / "gate_real.json").read_text())
CAL = Calibration(
    **DATA["calibration"],
    slices=tuple(
        SliceCalibration(**{k: math.nan if v is None else v for k, v in s.items()})
        for s in DATA["calibration_slices"]
    ),
)
POLICY = GatePolicy(n_resamples=1000)


def gate(candidate: str, previous: str):
    rows = pl.DataFrame(
        {
            "item_id": DATA["item_id"],
            "slice": DATA["slice"],
            "reference_sha256": [f"ref{i}" for i in range(DATA["n_rows"])],
            "human_grade": pl.Series(DATA["human_grade"], dtype=pl.Float64),
            "x_candidate": DATA["scores"][candidate],
            "x_previous": DATA["scores"][previous],
        }
    )
    scores = GateScores(
        rows=rows,
        suite_sha256=DATA["suite_sha256"],
        judge_sha256=DATA["judge_sha256"],
        candidate_sha256=candidate,
        previous_sha256=previous,
    )
    return decide(scores, CAL, POLICY)


@pytest.mark.parametrize(
    ("candidate", "previous"),
    [("v1__s2", "v1__s1"), ("v1__s4", "v1__s3"), ("v1__s1", "v1__s4"),
     ("reworded__s2", "v1__s1"), ("reworded__s2", "v1__s3")],
)  # fmt: skip
def test_a_a_and_reworded_releases_never_fail(candidate: str, previous: str) -> None:
    result = gate(candidate, previous)
    assert result.outcome is not GateOutcome.FAIL
    verdicts = {s.slice: s.verdict for s in result.slices}
    assert SliceVerdict.FAIL not in verdicts.values(), [
        (s.slice, s.reasons) for s in result.slices if s.verdict is SliceVerdict.FAIL
    ]
    # Science (9 items) is beyond what this judge can see; every other slice is judged.
    assert verdicts["Science"] is SliceVerdict.JUDGE_UNTRUSTED
