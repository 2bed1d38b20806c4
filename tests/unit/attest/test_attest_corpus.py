"""Every malformed checkpoint of the corpus (tests/data/safetensors_corpus.py) is refused
with its rule and the file it concerns, through the API and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import relgate
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.binary(max_size=400), header=st.text(max_size=200))
def test_arbitrary_bytes_are_refused_cleanly(tmp_path: Path, data: bytes, header: str) -> None:
    """Whatever the bytes, attest returns or raises IntegrityError: never anything else."""
    for blob in (data, len(header.encode()).to_bytes(8, "little") + header.encode() + data):
        p = tmp_path / "f.safetensors"
        p.write_bytes(blob)
        try:
            att = relgate.attest(p)
        except IntegrityError as exc:
            assert exc.rule and exc.path and exc.path.endswith("f.safetensors")
        else:
            assert att.bytes == len(blob)
