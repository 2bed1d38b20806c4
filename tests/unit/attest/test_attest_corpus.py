"""Every malformed checkpoint of the corpus (tests/data/safetensors_corpus.py) is refused
with its rule and the file it concerns, through the API and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import relgate
from relgate.cli import app
from relgate.errors import IntegrityError
from safetensors_corpus import SHARDED, SINGLE, Case, build_corpus
from typer.testing import CliRunner

CASES = sorted([*SINGLE, *SHARDED])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return {c.name: c for c in build_corpus(tmp_path_factory.mktemp("corpus"))}


@pytest.mark.parametrize("name", CASES)
def test_rule(corpus: dict[str, Case], name: str) -> None:
    case = corpus[name]
    with pytest.raises(IntegrityError) as err:
        relgate.attest(case.path)
    assert err.value.rule == case.rule, str(err.value)
    assert err.value.path is not None and err.value.path.endswith(case.blamed)


def test_cli_reports_the_rule_with_exit_code_7(corpus: dict[str, Case]) -> None:
    case = corpus["overlap"]
    result = CliRunner().invoke(app, ["attest", str(case.path)])
    assert result.exit_code == 7
    assert "overlap" in result.output


def test_hostile_lengths_do_not_allocate(tmp_path: Path) -> None:
    # A length field claiming 2**63 bytes with an 8-byte file: refused before any read.
    p = tmp_path / "huge.safetensors"
    p.write_bytes((2**63).to_bytes(8, "little"))
    with pytest.raises(IntegrityError) as err:
        relgate.attest(p)
    assert err.value.rule == "header-length"
