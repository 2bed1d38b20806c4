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
    live = _decide(store, registered.release.sha256, measure_weights="full")
    assert live["measured"]["root"] == root["root"] and live["mode"] == "full"
    assert live["matches_registered"] is True
    spot = _decide(store, registered.release.sha256)
    assert spot["mode"] == "spot_check" and spot["matches_registered"] is True
    assert spot["spot_check"]["tensors"] == ["embed.weight", "head.bias"]  # k=4 >= 2

    # Someone swaps the weights behind the endpoint: the next receipt says so.
    _write_checkpoint(store.data_dir / "models" / "tiny", 2.0)
    swapped = _decide(store, registered.release.sha256, measure_weights="full")
    assert swapped["matches_registered"] is False
    assert swapped["measured"]["root"] != root["root"]
    assert swapped["registered_root"] == root["root"]
    spotted = _decide(store, registered.release.sha256)
    assert spotted["matches_registered"] is False
    assert spotted["spot_check"]["mismatched"] == ["embed.weight", "head.bias"]

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


def _wide_checkpoint(path: Path, n: int, scale: float = 1.0) -> None:
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"t{i:02d}": np.full((4, 4), scale * i, dtype=np.float32) for i in range(n)}
    safetensors_numpy.save_file(tensors, str(path / "model.safetensors"))


def test_decisions_spot_check_k_tensors_with_proofs(
    store: Store, api_manifest: dict[str, Any]
) -> None:
    _wide_checkpoint(store.data_dir / "models" / "wide", 20)
    reg = store.register_release(_local(api_manifest, "models/wide"), actor="alice")
    w = _decide(store, reg.release.sha256)
    assert w["mode"] == "spot_check" and w["matches_registered"] is True
    assert w["spot_check"]["k"] == 4 and len(w["spot_check"]["tensors"]) == 4
    assert w["spot_check"]["of"] == 20 and w["checked_at"]
    assert "measured" not in w  # nothing claims a full measurement


def test_background_recheck_records_a_reattest_receipt(
    tmp_path: Path, api_manifest: dict[str, Any]
) -> None:
    with Store.open(data_dir=tmp_path / "d", recheck_weights=True) as store:
        _wide_checkpoint(store.data_dir / "models" / "wide", 6)
        reg = store.register_release(_local(api_manifest, "models/wide"), actor="alice")
        sha = reg.release.sha256
        _decide(store, sha)
        _decide(store, sha)  # at most one pending, then not again within the interval
        assert store.rechecker is not None and store.rechecker.wait(60)
        rechecks = [r for r in store.list_receipts(tenant="default") if r.kind == "reattest"]
        assert len(rechecks) == 1
        w = rechecks[0].evidence["weights"]
        assert w["mode"] == "full" and w["matches_registered"] is True
        assert w["measured"]["root"] == reg.release.manifest.weights_attestation["root"]
        assert rechecks[0].actor == "relgate-recheck"


def test_a_full_recheck_of_swapped_weights_says_so(
    tmp_path: Path, api_manifest: dict[str, Any]
) -> None:
    with Store.open(data_dir=tmp_path / "d", recheck_weights=True) as store:
        _wide_checkpoint(store.data_dir / "models" / "wide", 6)
        reg = store.register_release(_local(api_manifest, "models/wide"), actor="alice")
        _wide_checkpoint(store.data_dir / "models" / "wide", 6, scale=3.0)
        _decide(store, reg.release.sha256)
        assert store.rechecker is not None and store.rechecker.wait(60)
        (recheck,) = [r for r in store.list_receipts(tenant="default") if r.kind == "reattest"]
        assert recheck.evidence["weights"]["matches_registered"] is False


def test_bad_measure_weights_is_refused(store: Store, api_manifest: dict[str, Any]) -> None:
    m = ReleaseManifest.parse(api_manifest)
    store.register_release(m, actor="alice")
    with pytest.raises(Exception, match="measure_weights"):
        _decide(store, m.sha256, measure_weights="sometimes")
