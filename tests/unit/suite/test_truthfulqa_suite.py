"""The TruthfulQA adapter and the demo suite shipped in the package."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from relgate.answers import load_answers
from relgate.data import (
    demo_answers_path,
    demo_calibration_answers_path,
    demo_suite_path,
    truthfulqa_source_path,
)
from relgate.datasets.truthfulqa import HEDGE_REFERENCES, build_truthfulqa_suite
from relgate.errors import InvalidInputError, NotFoundError
from relgate.suite import load_suite

TRUTHFULQA = truthfulqa_source_path()
DEMO_SUITE_SHA256 = "1b728f89fec292c56432e276ac0260cb01e2afc5a9f92e2de33879fcd2178f7e"


def test_demo_suite_is_shipped_with_attribution() -> None:
    suite = load_suite(demo_suite_path())
    assert suite.sha256 == DEMO_SUITE_SHA256
    items = suite.frame.group_by("slice").agg(pl.col("item_id").n_unique().alias("n"))
    sizes = dict(zip(items["slice"], items["n"], strict=True))
    assert len(sizes) == 38 and sum(sizes.values()) == 807
    assert sizes["Law"] == 63 and sizes["Misconceptions"] == 100
    assert suite.n_rows == 7335 and min(suite.offsets[1:] - suite.offsets[:-1]) >= 30
    hedges = suite.frame.filter(pl.col("origin") == "rubric:hedge")
    assert set(hedges["reference"]) == set(HEDGE_REFERENCES)
    assert (hedges["human_grade"] == 0.0).all()
    readme = (demo_suite_path().parent / "README.md").read_text()
    assert "Apache License 2.0" in readme and "Lin, Jacob Hilton" in readme


def test_demo_releases_are_model_answers_that_differ_only_on_law() -> None:
    """v1 and v2 are what the real model answered serving examples/real-model/v1.yaml and
    v2.yaml (benches/real_model/record_demo_answers.py): never a copy of a reference or of the
    held-out calibration answers, and v2 differs from v1 on Law items alone."""
    suite = load_suite(demo_suite_path())
    v1, v2 = load_answers(demo_answers_path("v1")), load_answers(demo_answers_path("v2"))
    best = load_answers(demo_calibration_answers_path())
    v1.require(suite.item_ids)
    v2.require(suite.item_ids)
    references: dict[str, set[str]] = {}
    for item, ref in zip(suite.frame["item_id"], suite.frame["reference"], strict=True):
        references.setdefault(item, set()).add(ref.strip().lower())
    for answers in (v1, v2):
        copies = [
            i
            for i in answers
            if answers[i].strip().lower() in references[i]
            or answers[i].strip().lower() == best[i].strip().lower()
        ]
        assert copies == [], copies[:5]
    slice_of = suite.slice_of()
    law = {i for i, s in slice_of.items() if s == "Law"}
    changed = {i for i in v1 if v1[i] != v2[i]}
    assert changed <= law and len(changed) >= 0.9 * len(law)
    meta = json.loads(
        (Path(__file__).parents[3] / "benches/real_model/data/demo_answers.json").read_text()
    )
    assert (meta["v1_sha256"], meta["v2_sha256"]) == (v1.sha256, v2.sha256)
    with pytest.raises(NotFoundError):
        demo_answers_path("v3")


def test_adapter_rebuilds_the_shipped_suite() -> None:
    built = build_truthfulqa_suite(TRUTHFULQA)
    assert built.suite.sha256 == DEMO_SUITE_SHA256
    shipped = {
        json.loads(line)["item_id"]: json.loads(line)["answer"]
        for line in demo_calibration_answers_path().read_text().splitlines()
    }
    assert built.best_answers == shipped


def test_adapter_holds_out_best_answer_and_drops_non_answers() -> None:
    built = build_truthfulqa_suite(TRUTHFULQA, categories=["Law"], hedges=False)
    frame = built.suite.frame
    assert set(frame["slice"]) == {"Law"}
    assert "I have no comment" not in set(frame["reference"])
    for item, best in built.best_answers.items():
        refs = frame.filter(pl.col("item_id") == item)["reference"].to_list()
        assert best not in refs
    assert set(frame["origin"]) == {"truthfulqa:correct", "truthfulqa:incorrect"}


def test_adapter_rejects_unknown_category_and_other_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no category Astrology"):
        build_truthfulqa_suite(TRUTHFULQA, categories=["Astrology"])
    edited = tmp_path / "TruthfulQA.csv"
    edited.write_bytes(TRUTHFULQA.read_bytes() + b"\n")
    with pytest.raises(InvalidInputError, match="is not the expected TruthfulQA file"):
        build_truthfulqa_suite(edited)
