"""Reports: the HTML leads with the per-slice chart (worst first, previous beside candidate,
aggregate marked non-decisive, no network assets); JSON/parquet round-trip to a re-decision."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from gate_doubles import graded_slice, make_calibration, make_scores
from relgate.gate import GatePolicy, GateResult, decide
from relgate.gate.report import format_table, load_scores, render_svg, write_report

POLICY = GatePolicy(n_resamples=200)


@pytest.fixture(scope="module")
def result() -> GateResult:
    slices = {}
    for k, name in enumerate(["Economics", "Health", "Law"]):
        x, y, items = graded_slice(20, seed=k)
        hedge = np.full_like(x, 0.5) + 0.01 * np.random.default_rng(k).normal(size=x.size)
        slices[name] = (hedge if name == "Law" else x, x, y, items)
    cal = make_calibration({n: (0.6, 0.5) for n in slices})
    return decide(make_scores(slices), cal, POLICY)


def test_html_opens_with_the_chart_worst_slice_first(tmp_path: Path, result: GateResult) -> None:
    paths = write_report(result, tmp_path, "v2 vs v1")
    page = paths["html"].read_text()
    assert page.index("<svg") < page.index("<h1>") < page.index("<pre>")
    svg = page[page.index("<svg") : page.index("</svg>") + 6]
    ET.fromstring(svg)  # well-formed
    labels = re.findall(r'text-anchor="end"[^>]*>([^<]+)</text>', svg)
    assert labels[0] == "Law" and labels[-1] == "aggregate"
    assert "not decisive" in svg and "FAIL" in svg
    assert svg.count('fill="#aaa"') >= 3  # previous release drawn beside the candidate
    external = re.findall(r'(?:src|href)="(?:https?:)?//', page)
    assert external == []


def test_json_and_parquet_round_trip_to_the_same_decision(
    tmp_path: Path, result: GateResult
) -> None:
    paths = write_report(result, tmp_path)
    body = json.loads(paths["json"].read_text())
    assert body["sha256"] == result.sha256 and body["failed_slices"] == ["Law"]
    slices = pl.read_parquet(paths["slices"])
    assert slices["slice"].to_list()[0] == "Law" and slices["verdict"][0] == "FAIL"
    assert pl.read_parquet(paths["rows"]).height == result.scores.rows.height
    scores, calibration = load_scores(tmp_path)
    again = decide(scores, calibration, POLICY)
    assert again.sha256 == result.sha256
    relaxed = decide(
        scores, calibration, GatePolicy(n_resamples=200, floor=-1.0, non_inferiority_margin=2.0)
    )
    assert relaxed.passed


def test_text_table_names_failures_and_marks_the_aggregate(result: GateResult) -> None:
    table = format_table(result)
    lines = table.splitlines()
    assert lines[2].startswith("Law") and "FAIL" in lines[2]
    assert "NOT decisive" in table and "failed slices: Law" in table
    assert render_svg(result).startswith("<svg")


def test_wide_intervals_are_clipped_with_arrowheads() -> None:
    x, y, items = graded_slice(8, noise=2.0)
    wide = decide(
        make_scores({"A": (x, None, y, items)}), make_calibration({"A": (0.1, 0.1)}), POLICY
    )
    assert wide.slices[0].q_high - wide.slices[0].q_low > 3.0
    svg = render_svg(wide)
    assert "<polygon" in svg
    xs = [float(v) for v in re.findall(r'<line x1="([-\d.]+)"', svg)]
    assert min(xs) >= 170.0 and max(xs) <= 170.0 + 520.0  # nothing drawn outside the axis
