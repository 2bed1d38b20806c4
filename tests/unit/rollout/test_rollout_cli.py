"""`relgate roll simulate` on the command line: receipts printed, exit codes for scripts."""

from __future__ import annotations

import json
from pathlib import Path

from relgate.cli import app
from typer.testing import CliRunner

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "timelines"


def test_cli_prints_receipts_and_exits_zero() -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["roll", "simulate", str(EXAMPLES / "latency-regression.yaml")])
    assert out.exit_code == 0, out.output
    assert "checkpoint_promote" in out.output and "auto_rollback" in out.output
    assert "as expected" in out.output
    out = runner.invoke(app, ["roll", "simulate", "--json", str(EXAMPLES / "healthy.yaml")])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [r["kind"] for r in doc["receipts"]] == ["checkpoint_promote", "checkpoint_promote"]


def test_cli_exit_codes_for_mismatch_and_bad_input(tmp_path: Path) -> None:
    timeline = (
        (EXAMPLES / "healthy.yaml")
        .read_text()
        .replace("expect: [checkpoint_promote, checkpoint_promote]", "expect: [auto_rollback]")
    )
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(timeline)
    runner = CliRunner()
    assert runner.invoke(app, ["roll", "simulate", str(wrong)]).exit_code == 10
    broken = tmp_path / "broken.yaml"
    broken.write_text("events: [{at: 5, requests: -1}]\n")
    out = runner.invoke(app, ["roll", "simulate", str(broken)])
    assert out.exit_code == 3
    assert "requests" in out.output
    assert runner.invoke(app, ["roll", "simulate", str(tmp_path / "nope.yaml")]).exit_code == 3
