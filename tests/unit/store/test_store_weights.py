"""Decision receipts say which weights were live (docs/design.md §6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from relgate.manifest import ReleaseManifest
from relgate.store import Store

safetensors_numpy = pytest.importorskip("safetensors.numpy")


def _write_checkpoint(path: Path, scale: float) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tensors = {
        "embed.weight": np.full((8, 4), scale, dtype=np.float32),
        "head.bias": np.arange(4, dtype=np.float32) * scale,
    }
    safetensors_numpy.save_file(tensors, str(path / "model.safetensors"))


def _local(api_manifest: dict[str, Any], path: str) -> ReleaseManifest:
    api_manifest["model"] = {"kind": "local", "path": path, "endpoint": "http://127.0.0.1:8000/v1"}
    return ReleaseManifest.parse(api_manifest)


def _decide(store: Store, sha: str, **kw: Any) -> dict[str, Any]:
    receipt = store.record_decision(
        tenant="default",
        release_sha=sha,
        kind="checkpoint_promote",
        evidence={"step": 1},
        actor="controller",
        reason="monitors green",
        **kw,
    )
    assert receipt.evidence["step"] == 1
    weights: dict[str, Any] = receipt.evidence["weights"]
    return weights


def test_decision_measures_the_live_weights(store: Store, api_manifest: dict[str, Any]) -> None:
    _write_checkpoint(store.data_dir / "models" / "tiny", 1.0)
    registered = store.register_release(_local(api_manifest, "models/tiny"), actor="alice")
    root = registered.release.manifest.weights_attestation
    assert root is not None
    live = _decide(store, registered.release.sha256)
    assert live["measured"]["root"] == root["root"]
    assert live["matches_registered"] is True

    # Someone swaps the weights behind the endpoint: the next receipt says so.
    _write_checkpoint(store.data_dir / "models" / "tiny", 2.0)
    swapped = _decide(store, registered.release.sha256)
    assert swapped["matches_registered"] is False
    assert swapped["measured"]["root"] != root["root"]
    assert swapped["registered_root"] == root["root"]

    skipped = _decide(store, registered.release.sha256, measure_weights=False)
    assert skipped["measured"] is None
    assert "measure_weights=False" in skipped["why"]


def test_api_release_decisions_say_weights_cannot_be_attested(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    weights = _decide(store, m.sha256)
    assert weights["attestable"] is False
    assert "cannot be measured" in weights["why"]


def test_caller_supplied_weights_evidence_is_kept(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    receipt = store.record_decision(
        tenant="default",
        release_sha=m.sha256,
        kind="gate_pass",
        evidence={"weights": {"attestable": False, "why": "judged from recorded outputs"}},
        actor="gate",
        reason="",
    )
    assert receipt.evidence["weights"]["why"] == "judged from recorded outputs"
