"""Bounded work on hostile bundles: deep nesting, size, and the number of heads, proofs
and anchors give a clear InvalidInputError (one CLI line, exit 3), never a RecursionError
or a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from relgate.app.receipts import export_bundle, sign_tree_head
from relgate.cli import app
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.receipts import Limits, TreeHeadSigner, Trust, verify_bundle
from relgate.store import Store
from typer.testing import CliRunner


@pytest.fixture
def bundle(store: Store, api_manifest: dict[str, Any]) -> dict[str, Any]:
    manifest = ReleaseManifest.parse(api_manifest)
    store.register_release(manifest, actor="alice")
    for i in range(3):
        store.record_decision(
            tenant="default",
            release_sha=manifest.sha256,
            kind="checkpoint_hold",
            evidence={"i": i},
            actor="c",
            reason="",
        )
        sign_tree_head(store, TreeHeadSigner(store.data_dir))
    return export_bundle(store)


@pytest.fixture
def key(store: Store) -> str:
    return TreeHeadSigner(store.data_dir).public_key_b64


def _cli(path: Path, key: str, *extra: str) -> Any:
    return CliRunner().invoke(
        app, ["receipts", "verify", "--bundle", str(path), "--key", key, *extra]
    )


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000, "[" * 100_000 + "]" * 100_000])
def test_deeply_nested_bundle(tmp_path: Path, key: str, text: str) -> None:
    """The issue's RecursionError in `receipts verify`: now one clear line."""
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match="nests too deeply"):
        verify_bundle(path, trust=Trust.pinned([key]))
    res = _cli(path, key)
    assert res.exit_code == 3
    assert res.stderr.startswith("error: cannot read receipt bundle")
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.output


def test_deep_evidence_inside_a_receipt(bundle: dict[str, Any], key: str, tmp_path: Path) -> None:
    """Nesting the parser follows inside a receipt: that receipt is named, nothing crashes."""
    deep: list[Any] = []
    for _ in range(400):
        deep = [deep]
    bundle["receipts"][0]["evidence"]["x"] = deep
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(bundle))
    report = verify_bundle(path, trust=Trust.pinned([key]))
    assert report.first_error is not None
    assert (report.first_error.index, report.first_error.reason) == (0, "altered body")


def test_bundle_size_is_capped(bundle: dict[str, Any], key: str, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    size = path.stat().st_size
    with pytest.raises(InvalidInputError, match="over the limit"):
        verify_bundle(path, trust=Trust.pinned([key]), limits=Limits(max_bundle_bytes=size - 1))
    assert verify_bundle(path, trust=Trust.pinned([key]), limits=Limits(max_bundle_bytes=size)).ok
    res = _cli(path, key, "--max-bundle-bytes", str(size - 1))
    assert res.exit_code == 3 and "--max-bundle-bytes" in res.stderr


def test_heads_proofs_and_anchors_are_capped(
    bundle: dict[str, Any], key: str, tmp_path: Path
) -> None:
    trust = Trust.pinned([key])
    assert len(bundle["tree_heads"]) == 3
    with pytest.raises(InvalidInputError, match="3 tree heads; the limit is 2"):
        verify_bundle(bundle, trust=trust, limits=Limits(max_heads=2))
    many = {**bundle, "consistency_proofs": bundle["consistency_proofs"] * 10}
    with pytest.raises(InvalidInputError, match="consistency proofs"):
        verify_bundle(many, trust=trust, limits=Limits(max_consistency_proofs=5))
    junk = {**bundle, "anchors": [{}] * 10}
    with pytest.raises(InvalidInputError, match="anchor records"):
        verify_bundle(junk, trust=trust, limits=Limits(max_anchors=5))
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    res = _cli(path, key, "--max-heads", "2")
    assert res.exit_code == 3 and "--max-heads" in res.stderr
    with pytest.raises(InvalidInputError):
        Limits(max_heads=0)


def test_oversized_proofs_and_sizes(bundle: dict[str, Any], key: str) -> None:
    trust = Trust.pinned([key])
    bundle["receipts"][1]["inclusion_proof"] = "00" * 32 * 200
    report = verify_bundle(bundle, trust=trust)
    assert report.first_error is not None
    assert (report.first_error.index, report.first_error.reason) == (1, "bad inclusion proof")
    bundle["receipts"][1].pop("inclusion_proof")
    bundle["consistency_proofs"][0]["new_size"] = 2**70
    report = verify_bundle(bundle, trust=trust)
    assert report.first_error is not None and report.first_error.reason == "tree head mismatch"
