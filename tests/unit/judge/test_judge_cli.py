"""`relgate judge calibrate` and `relgate bench judge`, with the real embedding judge."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("transformers")

from relgate.cli import app
from relgate.gate import Calibration

runner = CliRunner()


def small_suite(tmp_path: Path) -> Path:
    rows = []
    facts = ["water boils at 100 degrees celsius at sea level", "the earth orbits the sun"]
    for k in range(20):
        fact = facts[k % 2]
        for ref, grade in (
            (f"{fact}", 1.0),
            (f"yes, {fact} (case {k})", 1.0),
            ("I'm sorry, but I can't help with that request.", 0.0),
            (f"nobody knows whether case {k} is true", 0.0),
        ):
            rows.append(
                {"item_id": f"i{k}", "slice": "Science", "prompt": f"q{k}", "reference": ref}
                | {"human_grade": grade}
            )
    path = tmp_path / "suite.jsonl"
    pl.DataFrame(rows).write_ndjson(path)
    return path


def test_calibrate_writes_the_artifact(tmp_path: Path) -> None:
    out = tmp_path / "cal.json"
    result = runner.invoke(
        app,
        ["judge", "calibrate", "--suite", str(small_suite(tmp_path)), "--out", str(out),
         "--n-resamples", "200", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    cal = Calibration.read(out)
    assert body["sha256"] == cal.sha256
    assert cal.slices[0].slice == "Science" and cal.slices[0].n_items == 20
    assert cal.slices[0].rho > 0.3


def test_calibrate_names_bad_input_with_an_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,slice,prompt,reference\ni,s,p,r\n")
    result = runner.invoke(app, ["judge", "calibrate", "--suite", str(bad)])
    assert result.exit_code == 3
    assert "missing column(s) human_grade" in result.output
    result = runner.invoke(app, ["judge", "calibrate", "--suite", str(bad), "--judge", "oracle"])
    assert result.exit_code == 3


def test_bench_judge_reports_throughput_latency_and_memory() -> None:
    result = runner.invoke(app, ["bench", "judge", "--backend", "embedding", "--rows", "40",
                                 "--batch-size", "16", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["rows"] == 40 and body["rows_per_s"] > 0 and body["tokens"] > 0
    assert body["latency_p50_ms"] <= body["latency_p95_ms"] <= body["latency_p99_ms"]
    assert body["peak_rss_mb"] > 0
