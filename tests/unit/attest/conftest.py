"""Fixtures of the attestation tests: small checkpoints written with the reference
``safetensors`` package, and the malformed corpus of tests/data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data"))


def make_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    """A few tensors of mixed dtypes and shapes (including an empty and a scalar one)."""
    rng = np.random.default_rng(seed)
    return {
        "embed.weight": rng.standard_normal((16, 8)).astype(np.float32),
        "layer.0.bias": rng.standard_normal(8).astype(np.float16),
        "layer.0.weight": rng.integers(-100, 100, (8, 8)).astype(np.int64),
        "layer.1.mask": rng.integers(0, 2, (3, 5)).astype(np.bool_),
        "scale": np.array(1.5, dtype=np.float64),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "z.\u00e9t\u00e9": rng.integers(0, 255, 7).astype(np.uint8),
    }


@pytest.fixture
def tensors() -> dict[str, np.ndarray]:
    return make_tensors()


@pytest.fixture
def checkpoint(tmp_path: Path, tensors: dict[str, np.ndarray]) -> Path:
    """A single-file checkpoint."""
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


@pytest.fixture(autouse=True)
def _private_leaf_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI uses the default leaf cache: keep it out of the home directory."""
    monkeypatch.setenv("RELGATE_CACHE_DIR", str(tmp_path_factory.mktemp("leaf-cache")))
