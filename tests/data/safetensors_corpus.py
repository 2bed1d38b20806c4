"""A corpus of malformed safetensors checkpoints, each with the IntegrityError rule it must
produce. Generated on demand (``build_corpus(dir)``) rather than stored, so every case is
readable here; run ``python tests/data/safetensors_corpus.py OUT_DIR`` to write the files.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    """One malformed checkpoint: what to attest, the rule, and the file the error names."""

    name: str
    path: Path
    rule: str
    blamed: str  # file name the error's path must end with


def raw(header: bytes | str, data: bytes = b"", length: int | None = None) -> bytes:
    """Length field + header + data, with the length field overridable."""
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def entries(*items: tuple[str, str, list[int], int, int]) -> str:
    return json.dumps(
        {n: {"dtype": d, "shape": s, "data_offsets": [b, e]} for n, d, s, b, e in items}
    )


def valid(names: list[str]) -> bytes:
    """A valid file of U8[2] tensors."""
    items = [(n, "U8", [2], 2 * i, 2 * i + 2) for i, n in enumerate(names)]
    return raw(entries(*items), bytes(range(2 * len(names))))


def index(weight_map: dict[str, str]) -> str:
    return json.dumps({"metadata": {}, "weight_map": weight_map})


F32_1 = ("a", "F32", [1], 0, 4)

SINGLE: dict[str, tuple[bytes, str]] = {
    "truncated-length": (b"\x10\x00\x00", "file-too-small"),
    "length-over-limit": (struct.pack("<Q", 2**40) + b"{}", "header-length"),
    "length-beyond-file": (raw("{}", length=4096), "header-length"),
    "non-utf8": (raw(b'{"\xff\xfe":1}'), "header-utf8"),
    "non-object-json": (raw("[1, 2, 3]"), "header-not-object"),
    "broken-json": (raw('{"a": {"dtype": '), "header-json"),
    "missing-field": (raw('{"a": {"dtype": "F32", "shape": [1]}}', bytes(4)), "header-entry"),
    "unknown-field": (
        raw('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 0}}', bytes(4)),
        "header-entry",
    ),
    "negative-dim": (raw(entries(("a", "F32", [-1], 0, 4)), bytes(4)), "header-entry"),
    "bad-metadata": (raw('{"__metadata__": {"k": [1]}}'), "metadata"),
    "unknown-dtype": (raw(entries(("a", "Q4_K", [1], 0, 4)), bytes(4)), "unknown-dtype"),
    "shape-overflow": (
        raw(entries(("a", "F64", [2**32, 2**32, 2**10], 0, 8)), bytes(8)),
        "shape-overflow",
    ),
    "sub-byte-odd": (raw(entries(("a", "F4", [3], 0, 2)), bytes(2)), "sub-byte-alignment"),
    "size-mismatch": (raw(entries(("a", "F32", [2], 0, 4)), bytes(4)), "size-mismatch"),
    "offsets-backwards": (raw(entries(("a", "F32", [1], 4, 0)), bytes(4)), "offsets-order"),
    "offsets-out-of-bounds": (
        raw(entries(("a", "F32", [1], 4, 8)), bytes(4)),
        "offsets-out-of-bounds",
    ),
    "overlap": (raw(entries(F32_1, ("b", "F32", [1], 2, 6)), bytes(6)), "overlap"),
    "gap": (raw(entries(F32_1, ("b", "F32", [1], 8, 12)), bytes(12)), "gap"),
    "leading-gap": (raw(entries(("a", "F32", [1], 4, 8)), bytes(8)), "gap"),
    "trailing-bytes": (raw(entries(F32_1), bytes(5)), "trailing-bytes"),
    "duplicate-in-header": (
        raw(
            '{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},'
            ' "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}',
            bytes(2),
        ),
        "duplicate-name",
    ),
}

Builder = Callable[[Path], tuple[Path, str, str]]


def _dup_across_shards(d: Path) -> tuple[Path, str, str]:
    (d / "a.safetensors").write_bytes(valid(["x", "y"]))
    (d / "b.safetensors").write_bytes(valid(["y"]))
    return d, "duplicate-name", "b.safetensors"


def _sharded(d: Path, weight_map: dict[str, str]) -> None:
    (d / "s1.safetensors").write_bytes(valid(["x", "y"]))
    (d / "s2.safetensors").write_bytes(valid(["z", "w"]))
    (d / "model.safetensors.index.json").write_text(index(weight_map))


GOOD_MAP = {
    "x": "s1.safetensors",
    "y": "s1.safetensors",
    "z": "s2.safetensors",
    "w": "s2.safetensors",
}


def _index_missing_file(d: Path) -> tuple[Path, str, str]:
    _sharded(d, {**GOOD_MAP, "w": "s3.safetensors"})
    return d, "index-missing-file", "model.safetensors.index.json"


def _index_wrong_file(d: Path) -> tuple[Path, str, str]:
    _sharded(d, {**GOOD_MAP, "z": "s1.safetensors"})
    return d, "index-wrong-file", "s2.safetensors"


def _index_missing_tensor(d: Path) -> tuple[Path, str, str]:
    _sharded(d, {k: v for k, v in GOOD_MAP.items() if k != "w"})
    return d, "index-missing-tensor", "s2.safetensors"


def _index_unknown_tensor(d: Path) -> tuple[Path, str, str]:
    _sharded(d, {**GOOD_MAP, "ghost": "s1.safetensors"})
    return d, "index-unknown-tensor", "model.safetensors.index.json"


def _pickle_only(d: Path) -> tuple[Path, str, str]:
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04\x95not really a pickle")
    return d / "pytorch_model.bin", "not-attestable", "pytorch_model.bin"


SHARDED: dict[str, Builder] = {
    "duplicate-across-shards": _dup_across_shards,
    "index-missing-file": _index_missing_file,
    "index-wrong-file": _index_wrong_file,
    "index-missing-tensor": _index_missing_tensor,
    "index-unknown-tensor": _index_unknown_tensor,
    "pickle-only": _pickle_only,
}


def build_corpus(root: Path) -> list[Case]:
    """Write every case under ``root`` and describe it."""
    cases = []
    for name, (data, rule) in SINGLE.items():
        path = root / f"{name}.safetensors"
        path.write_bytes(data)
        cases.append(Case(name, path, rule, path.name))
    for name, build in SHARDED.items():
        d = root / name
        d.mkdir()
        path, rule, blamed = build(d)
        cases.append(Case(name, path, rule, blamed))
    return cases


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for case in build_corpus(out):
        print(f"{case.rule:24} {case.path}")
