"""The demo story through the gRPC API, with the real embedding judge on the shipped
TruthfulQA suite: v0 (cold start) fails until overridden, v1 passes against v0, v2 (hedging on
Law) fails on Law alone while its aggregate holds; what the receipts and facts record; what
GetGateResult returns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import rfc8785
from conftest import Story
from gate_helpers import first_table_row
from relgate._proto.relgate.v1 import gate_pb2
from relgate.data import demo_suite_path
from relgate.judge.base import Judge
from relgate.manifest import GatePolicy
from relgate.suite import load_suite

V = gate_pb2


def test_v0_cold_start_fails_until_overridden(story: Story) -> None:
    v0 = story.chapter.v0
    # Its slices pass, but a cold start passes only through the override (docs/design.md §3).
    assert v0.verdict == V.GATE_VERDICT_FAIL and v0.cold_start and v0.archived
    assert not [s for s in v0.slices if s.verdict == V.SLICE_VERDICT_FAIL]
    assert v0.receipt.kind == "gate_fail"
    assert v0.receipt.reason.startswith(
        "cold start: no previous release; passes only through a gate override"
    )
    assert story.chapter.v0_override_sha256
    after = story.env.admin.get_gate_result(story.chapter.v0_sha256)
    assert after.gate_override_sha256 == story.chapter.v0_override_sha256 and not after.archived
    assert "v0 is a cold start" in story.output


def test_v1_passes_and_v2_fails_on_law_while_the_aggregate_holds(story: Story) -> None:
    v1, v2 = story.chapter.v1, story.chapter.v2
    # v1 (against v0): a pass that names the slices the judge cannot resolve (not silent).
    assert v1.verdict == V.GATE_VERDICT_PASS_WITH_WARNINGS
    assert not v1.cold_start and not v1.archived
    assert v1.previous_release_sha256 == story.chapter.v0_sha256
    untrusted = [s.slice for s in v1.slices if s.verdict == V.SLICE_VERDICT_JUDGE_UNTRUSTED]
    assert untrusted and "Law" not in untrusted
    assert not [s for s in v1.slices if s.verdict == V.SLICE_VERDICT_FAIL]
    # v2: Law fails, first in the list (worst first), and only Law.
    assert v2.verdict == V.GATE_VERDICT_FAIL
    assert story.chapter.failed_slices == ("Law",)
    law = v2.slices[0]
    assert law.slice == "Law" and law.verdict == V.SLICE_VERDICT_FAIL
    # v2's legal stop sequence cuts every Law answer to one word: Law collapses against v1.
    assert law.q < 0.3 < law.previous_q and law.delta_vs_previous < -0.5
    assert "floor" in law.reason
    assert abs(v2.aggregate_rho - v1.aggregate_rho) < 0.02
    assert v2.previous_aggregate_rho == v1.aggregate_rho
    assert v2.archived and v2.previous_release_sha256 == story.chapter.v1_sha256
    assert story.chapter.passed
    for result in (v1, v2):
        assert Path(result.report_path).is_file()
        assert (Path(result.report_path).parent / "rows.parquet").is_file()
        assert (Path(result.report_path).parent / "slices.parquet").is_file()


def test_the_chapter_prints_tables_worst_first_and_the_report_path(story: Story) -> None:
    out = story.output
    assert "NOT decisive" in out and "failed slices: Law" in out
    assert story.chapter.v2.report_path in out.replace("\n", "")
    table = out[out.index("gating v2") :]
    first_row = first_table_row(table)
    assert first_row.startswith("Law") and "FAIL" in first_row


def test_receipts_and_facts_carry_the_evidence(story: Story, judge: Judge) -> None:
    store = story.env.server.store
    v2 = story.chapter.v2
    receipts = store.list_receipts(release_sha=story.chapter.v2_sha256)
    assert [r.kind for r in receipts] == ["register", "gate_fail"]
    ev = receipts[-1].evidence
    assert ev["judge_sha256"] == v2.judge_sha256 == judge.judge_sha256
    assert ev["suite_sha256"] == load_suite(demo_suite_path()).sha256 == v2.suite_sha256
    assert ev["policy"] == GatePolicy().model_dump()
    assert ev["calibration_sha256"] == v2.calibration_sha256
    assert ev["sample_set_sha256"] == v2.sample_set_sha256
    assert ev["verdict"] == "fail" and ev["archived"] is True
    assert ev["aggregate"]["decisive"] is False
    law = next(s for s in ev["slices"] if s["slice"] == "Law")
    for key in ("q", "q_low", "q_high", "rho", "ceiling", "ceiling_low", "change", "p_adjusted"):
        # Canonical JSON writes 1.0 as 1: a number either way, never null (NaN).
        assert isinstance(law[key], int | float) and not isinstance(law[key], bool), key
    assert law["verdict"] == "FAIL" and law["q_low"] <= law["q"] <= law["q_high"]
    assert len(ev["slices"]) == len(v2.slices) == 38
    # The rollout's contract: a gate_result fact with the decision, and the archive mark.
    fact = store.facts(story.chapter.v2_sha256, "gate_result", tenant="default")[-1]
    assert fact.receipt_sha256 == receipts[-1].receipt_sha256
    assert {k: fact.payload[k] for k in ("verdict", "judge_sha256", "suite_sha256")} == {
        "verdict": "fail",
        "judge_sha256": v2.judge_sha256,
        "suite_sha256": v2.suite_sha256,
    }
    assert fact.payload["gate_result_sha256"] == v2.gate_result_sha256
    assert store.facts(story.chapter.v2_sha256, "archived", tenant="default")
    assert (
        store.facts(story.chapter.v1_sha256, "gate_result", tenant="default")[-1].payload["verdict"]
        == "pass"
    )
    assert not store.facts(story.chapter.v1_sha256, "archived", tenant="default")
    assert [r.kind for r in store.list_receipts(release_sha=story.chapter.v1_sha256)] == [
        "register",
        "gate_pass",
    ]


def test_gate_result_sha256_is_over_the_canonical_result(story: Story) -> None:
    v2 = story.chapter.v2
    body = json.loads((Path(v2.report_path).parent / "result.json").read_text())
    claimed = body.pop("sha256")
    assert claimed == v2.gate_result_sha256
    assert hashlib.sha256(rfc8785.dumps(body)).hexdigest() == claimed


def test_get_gate_result_returns_the_stored_result(story: Story) -> None:
    for sha, ran in (
        (story.chapter.v1_sha256, story.chapter.v1),
        (story.chapter.v2_sha256, story.chapter.v2),
    ):
        got = story.env.admin.get_gate_result(sha)
        assert got.gate_result_sha256 == ran.gate_result_sha256
        assert [s.slice for s in got.slices] == [s.slice for s in ran.slices]
        assert got.verdict == ran.verdict and got.receipt.receipt_sha256
        assert got.receipt.receipt_sha256 == ran.receipt.receipt_sha256
        assert not got.what_if


def test_answers_are_stored_with_their_hashes(story: Story) -> None:
    fact = story.env.server.store.facts(story.chapter.v2_sha256, "gate_result", tenant="default")[
        -1
    ].payload
    sha = fact["candidate_answers_sha256"]
    stored = pl.read_parquet(story.env.server.data_dir / "gates" / "answers" / f"{sha}.parquet")
    assert stored.height == 807
    for text, digest in zip(stored["answer"], stored["answer_sha256"], strict=True):
        assert hashlib.sha256(text.encode()).hexdigest() == digest
    # v2's legal stop sequence (" ") ends every Law answer at its first space.
    slice_of = load_suite(demo_suite_path()).slice_of()
    law = stored.filter(pl.col("item_id").is_in([i for i, s in slice_of.items() if s == "Law"]))
    assert law.height == 63 and not law.filter(pl.col("answer").str.contains(" ")).height
