"""Every command's help says what its values are, their defaults and env vars; `-h` works
everywhere; the exit codes are in `relgate --help`; `--json` prints plain values; rollout spec
files are checked before anything reaches a server (`roll start --dry-run` needs none)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import typer
from relgate._proto.relgate.v1 import gate_pb2, rollout_pb2
from relgate.cli import app
from relgate.cli._common import EXIT_CODE_TABLE, plain
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[3]


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"RELGATE_API_KEY": ""})


def _commands() -> list[list[str]]:
    """The path of every command and group, from the assembled click tree."""
    root = typer.main.get_command(app)
    out: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        out.append(path)
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(root, [])
    return out


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "relgate")
def test_every_help_names_its_values(path: list[str]) -> None:
    for flag in ("-h", "--help"):
        result = _invoke(*path, flag)
        assert result.exit_code == 0, result.output
    text = result.output
    assert "<bool>" not in text and "<str>" not in text, text
    assert "Tenant ." not in text
    if "--tenant" in text:
        assert "--tenant TENANT" in text and "default: (the key's own)" in text
    if "--server" in text:
        assert "env var: RELGATE_SERVER" in text and "127.0.0.1:50051" in text


def test_root_help_lists_the_exit_codes() -> None:
    text = _invoke("--help").output
    assert "Exit codes:" in text
    for code, what in EXIT_CODE_TABLE:
        assert f"{code:>3}  {what}" in text
    doc = (ROOT / "docs" / "cli.md").read_text()
    for code, _ in EXIT_CODE_TABLE:
        assert f"| {code} |" in doc, f"docs/cli.md lacks exit code {code}"


def test_serve_help_shows_its_options_and_attest_its_path() -> None:
    text = _invoke("serve", "-h").output
    assert "COMMAND [ARGS]" not in text
    assert "--data-dir" in text and "RELGATE_GRPC_PORT" in text
    assert "relgate attest PATH" in _invoke("attest", "-h").output


def test_piped_output_is_not_wrapped() -> None:
    # The CliRunner's stdout is not a terminal: no line is folded at 80 columns.
    text = _invoke("roll", "start", "-h").output
    line = next(x for x in text.splitlines() if x.lstrip().startswith("--spec"))
    assert "docs/rollout-spec.md" in line and len(line) > 100


def test_dry_run_prints_the_defaults(tmp_path: Path) -> None:
    result = _invoke("roll", "start", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "shadow_s: 86400.0" in result.output and "weight_bp: 500" in result.output
    spec = tmp_path / "spec.yaml"
    spec.write_text("shadow_s: 60\nthresholds:\n  p95_ratio: 1.5\n")
    result = _invoke("roll", "start", "--dry-run", "--spec", str(spec), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["shadow_s"] == 60.0 and doc["thresholds"]["p95_ratio"] == 1.5
    assert doc["thresholds"]["error_ratio"] == 1.5 and len(doc["steps"]) == 3
    for example in sorted((ROOT / "examples" / "rollouts").glob("*.yaml")):
        assert _invoke("roll", "start", "--dry-run", "--spec", str(example)).exit_code == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shadow_seconds: 5\n", "unknown field(s) shadow_seconds"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("steps: [{weight_bp: 500}]\n", "the last step must reach 10000"),
        ("shadow_s: [\n", "not YAML/JSON"),
        ("shadow_s: -1\n", "shadow_s must be >= 0"),
    ],
)
def test_bad_spec_files_get_one_line(tmp_path: Path, text: str, message: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    # No server is reachable: the file is refused before any call.
    result = _invoke("roll", "start", "abcdef", "--spec", str(spec), "--server", "127.0.0.1:9")
    assert result.exit_code == 3, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def test_plain_json_values() -> None:
    st = rollout_pb2.RolloutStatus(requests_at_step=2**40, phase=2)
    doc = plain(st)
    assert doc["requests_at_step"] == 2**40  # a number, not MessageToDict's string
    assert doc["phase"] == "ROLLOUT_PHASE_PROGRESSING" and doc["readings"] == []
    out = plain(gate_pb2.SliceResult(slice="Law", rho=math.nan))
    assert out["rho"] is None  # never "NaN"
    assert out["previous_q"] is None  # optional and unset: null
    assert out["rho_ci"] is None  # an unset message: null
    assert plain({"x": math.inf, "y": (1, 2.5)}) == {"x": None, "y": [1, 2.5]}
    json.dumps(plain(st), allow_nan=False)
