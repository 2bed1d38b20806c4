"""The demo story on the shipped TruthfulQA suite, with the real CPU embedding judge.

Two recorded releases, both answered by the real model (SmolLM2-135M-Instruct on llama.cpp,
serving ``examples/real-model/v1.yaml`` and ``v2.yaml``; ``benches/real_model/
record_demo_answers.py``): v2 is v1 with the legal class's stop sequence, so every Law answer
stops at its first word, and every other item is answered as v1 answered it. The judge is
calibrated with TruthfulQA's best answers, held out of the suite's references and of both
releases. The gate passes v1 (a cold start: no previous release; the slices the judge cannot
resolve are named) and fails v2 on Law while v2's aggregate, a mean over 38 slices, barely
moves.

``print_story`` prints both per-slice tables and where the HTML reports are.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from relgate.answers import load_answers
from relgate.data import demo_answers_path, demo_calibration_answers_path, demo_suite_path
from relgate.gate.calibration import calibrate
from relgate.gate.report import format_table, write_report
from relgate.gate.result import GateResult
from relgate.gate.run import run_gate
from relgate.judge.cache import ScoreCache
from relgate.judge.embedding import EmbeddingJudge
from relgate.manifest import GatePolicy
from relgate.suite import load_suite

__all__ = ["DemoStory", "print_story", "run_demo_story"]


@dataclass(frozen=True)
class DemoStory:
    """Gate results of the two demo releases and where their reports were written."""

    v1: GateResult
    v2: GateResult
    reports: dict[str, Path]


def run_demo_story(
    out_dir: str | Path | None = None,
    *,
    policy: GatePolicy | None = None,
    cache: ScoreCache | None = None,
) -> DemoStory:
    """Gate v1 (cold start) and v2 (against v1) on the demo suite; write both reports."""
    policy = policy if policy is not None else GatePolicy()
    suite = load_suite(demo_suite_path())
    judge = EmbeddingJudge()
    cache = cache if cache is not None else ScoreCache()
    best = load_answers(demo_calibration_answers_path())
    calibration = calibrate(
        suite,
        judge,
        answers=dict(best),
        cache=cache,
        n_resamples=policy.n_resamples,
        confidence=policy.confidence,
        seed=policy.seed,
    )
    v1 = load_answers(demo_answers_path("v1"))
    v2 = load_answers(demo_answers_path("v2"))
    kw = {"calibration": calibration, "policy": policy, "cache": cache}
    r1 = run_gate(suite, judge, v1, **kw)  # type: ignore[arg-type]
    r2 = run_gate(suite, judge, v2, v1, **kw)  # type: ignore[arg-type]
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="relgate-demo-"))
    reports = {
        "v1": write_report(r1, out / "v1", "demo release v1 (cold start)")["html"],
        "v2": write_report(r2, out / "v2", "demo release v2 vs v1")["html"],
    }
    return DemoStory(v1=r1, v2=r2, reports=reports)


def print_story(story: DemoStory) -> bool:
    """Print both per-slice tables and where the reports are; True when the gate behaved as
    the story says (v1 passes, v2 fails on Law alone)."""
    for name, result in (("v1", story.v1), ("v2 (against v1)", story.v2)):
        print(f"\n== release {name} ==")
        print(format_table(result))
        print(f"HTML report: {story.reports[name.split()[0]]}")
    return story.v1.passed and story.v2.failed_slices == ("Law",)
