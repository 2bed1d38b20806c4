"""`relgate reattest --ray` and `relgate judge batch --ray` on a local Ray instance give the
reports the in-process commands give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from relgate.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def _checkpoint(path: Path, seed: int) -> Path:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    save_file(
        {
            "embed.weight": rng.standard_normal((64, 32)).astype(np.float32),
            "head.bias": rng.standard_normal(32).astype(np.float32),
        },
        str(path),
    )
    return path


def _without_timing(report: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(report.read_text())
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_reattest_on_ray_reports_like_in_process(ray_local: Any, tmp_path: Path) -> None:
    a = _checkpoint(tmp_path / "a.safetensors", 1)
    b = _checkpoint(tmp_path / "b.safetensors", 2)
    first = runner.invoke(app, ["reattest", str(a), str(b), "--report", str(tmp_path / "e.json")])
    assert first.exit_code == 0, first.output
    # Expect a's root and a wrong root for b: one ok, one drift (exit 1) on both paths.
    expected = {e["path"]: e["root"] for e in json.loads((tmp_path / "e.json").read_text())}
    expected[str(b)] = "0" * 64
    (tmp_path / "expect.json").write_text(json.dumps(expected))
    reports = {}
    for name, extra in (("local", []), ("ray", ["--ray"])):
        out = tmp_path / f"{name}.json"
        args = ["reattest", *extra, str(a), str(b), "--expect", str(tmp_path / "expect.json")]
        result = runner.invoke(app, [*args, "--report", str(out)])
        assert result.exit_code == 1, result.output
        reports[name] = _without_timing(out)
    assert reports["ray"] == reports["local"]
    assert [r["status"] for r in reports["ray"]] == ["ok", "drift"]


@pytest.mark.usefixtures("ray_local")
def test_judge_batch_on_ray_scores_like_in_process(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import polars as pl
    from relgate.data import demo_answers_path, demo_suite_path

    suite = tmp_path / "suite.csv"
    pl.read_csv(demo_suite_path()).head(90).write_csv(suite)
    common = ["judge", "batch", "--suite", str(suite), "--answers", str(demo_answers_path("v1"))]
    common += ["--shard-rows", "30"]
    reports = {}
    for name, extra in (("local", []), ("ray", ["--ray", "local"])):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(app, [*common, *extra, "--report", str(out)])
        assert result.exit_code == 0, result.output
        reports[name] = json.loads(out.read_text())
    local, ray = reports["local"], reports["ray"]
    assert ray["judge_sha256"] == local["judge_sha256"]
    assert len(ray["rows"]) == len(local["rows"]) == 90
    for remote_row, local_row in zip(ray["rows"], local["rows"], strict=True):
        assert {k: v for k, v in remote_row.items() if k != "score"} == {
            k: v for k, v in local_row.items() if k != "score"
        }
    # The embedding is float32 and torch's reductions depend on the process's thread count
    # (Ray runs tasks with one): scores agree to float32 rounding, not bit for bit.
    np.testing.assert_allclose(
        [r["score"] for r in ray["rows"]], [r["score"] for r in local["rows"]], rtol=0, atol=1e-6
    )
