"""The demo story, for real: shipped TruthfulQA suite, recorded releases v1 / v2 (real model
answers), the CPU embedding judge. v1 passes; v2 (Law answers cut to one word) fails on Law
alone while its aggregate holds.
(The same story through the gRPC API belongs to the service's integration tests.)"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from relgate.data import truthfulqa_source_path
from relgate.demo.suite_story import DemoStory, print_story, run_demo_story
from relgate.gate import GateOutcome, SliceVerdict

TRUTHFULQA = truthfulqa_source_path()


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> DemoStory:
    return run_demo_story(tmp_path_factory.mktemp("demo"))


def test_v1_passes_on_every_slice(story: DemoStory) -> None:
    assert story.v1.outcome == GateOutcome.PASS
    verdicts = {r.slice: r.verdict for r in story.v1.slices}
    assert verdicts["Law"] == SliceVerdict.PASS
    # v1 answers as v0 did (the same recorded model answers): each slice that can be told is
    # vouched for; the rest are named INSUFFICIENT or JUDGE_UNTRUSTED, never failed.
    assert sum(v == SliceVerdict.PASS for v in verdicts.values()) >= 12
    # Slices the judge cannot resolve are named, not passed silently.
    assert set(story.v1.unvouched) == {
        s
        for s, v in verdicts.items()
        if v in (SliceVerdict.JUDGE_UNTRUSTED, SliceVerdict.INSUFFICIENT)
    }
    assert SliceVerdict.FAIL not in verdicts.values()


def test_v2_fails_on_law_only_while_the_aggregate_holds(story: DemoStory) -> None:
    assert story.v2.outcome == GateOutcome.FAIL
    assert story.v2.failed_slices == ("Law",)
    law = story.v2.slices[0]
    assert law.slice == "Law" and law.q < 0.65 and law.change < -0.05
    agg1, agg2 = story.v1.aggregate, story.v2.aggregate
    assert abs(agg2["mean_rho"] - agg1["mean_rho"]) < 0.02  # the aggregate holds
    assert agg2["previous_mean_rho"] == pytest.approx(agg1["mean_rho"])
    assert story.reports["v2"].is_file()


@pytest.mark.slow  # runs the whole story a second time
def test_demo_entry_point_prints_the_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert print_story(run_demo_story(tmp_path))
    out = capsys.readouterr().out
    assert "release v2 (against v1)" in out and "failed slices: Law" in out
    assert (tmp_path / "v2" / "report.html").is_file()


@pytest.mark.slow
def test_without_hedge_references_the_judge_is_untrusted_on_law() -> None:
    from relgate.datasets.truthfulqa import build_truthfulqa_suite
    from relgate.gate import calibrate
    from relgate.judge.embedding import EmbeddingJudge

    built = build_truthfulqa_suite(TRUTHFULQA, categories=["Law"], hedges=False)
    cal = calibrate(built.suite, EmbeddingJudge(), answers=built.best_answers)
    assert cal.slices[0].rho_low < 0.1
