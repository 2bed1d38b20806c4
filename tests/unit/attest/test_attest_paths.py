"""Weight paths stay under the weights root; one request's work is bounded."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from relgate.attest.paths import Budget, check_budget, resolve_under
from relgate.errors import InvalidInputError, NotFoundError


def _st(path: Path, n_tensors: int, meta: int = 0) -> None:
    entries = [
        f'"t{i}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}' for i in range(n_tensors)
    ]
    if meta:
        entries.append('"__metadata__":{' + ",".join(f'"k{i}":"v"' for i in range(meta)) + "}")
    header = ("{" + ",".join(entries) + "}").encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def test_resolve_under(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "m").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    (root / "escape").symlink_to(tmp_path / "out")
    (root / "inside").symlink_to(root / "m")
    assert resolve_under(root, "m") == (root / "m").resolve()
    assert resolve_under(root, str(root / "m")) == (root / "m").resolve()
    assert resolve_under(root, "inside") == (root / "m").resolve()
    for bad in ("../out", "m/../../out", str(tmp_path / "out"), "escape", "/etc"):
        with pytest.raises(InvalidInputError):
            resolve_under(root, bad)
    with pytest.raises(NotFoundError):
        resolve_under(root, "nope")
    with pytest.raises(InvalidInputError, match="required"):
        resolve_under(root, " ")


def test_budget(tmp_path: Path) -> None:
    _st(tmp_path / "a.safetensors", 10, meta=3)
    check_budget(tmp_path)
    with pytest.raises(InvalidInputError, match="more than 5 tensors"):
        check_budget(tmp_path, Budget(max_tensors=5))
    with pytest.raises(InvalidInputError, match="more than 2 metadata"):
        check_budget(tmp_path, Budget(max_metadata=2))
    with pytest.raises(InvalidInputError, match="larger than the 100 bytes"):
        check_budget(tmp_path, Budget(max_bytes=100))
    with pytest.raises(InvalidInputError, match="header larger than the 16 bytes"):
        check_budget(tmp_path, Budget(max_header_bytes=16))
    _st(tmp_path / "b.safetensors", 1)
    with pytest.raises(InvalidInputError, match="more than 1 weight files"):
        check_budget(tmp_path, Budget(max_files=1))


def test_budget_reads_gguf_counts(tmp_path: Path) -> None:
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 10**9, 4))
    with pytest.raises(InvalidInputError, match="tensors"):
        check_budget(g)
    g.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 10**9))
    with pytest.raises(InvalidInputError, match="metadata"):
        check_budget(g)
