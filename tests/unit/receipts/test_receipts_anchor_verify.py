"""Anchors checked by the verifier: directory anchors against its copy of the directory,
records that do not parse, required kinds, and heads found anchored that the bundle lacks."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from relgate.app.receipts import anchor_now, export_bundle
from relgate.cli import app
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.receipts import AnchorPolicy, BundleReport, TreeHeadSigner, Trust, verify_bundle
from relgate.receipts.anchors import CommandSink, DirectorySink, anchor_file_name
from relgate.receipts.bundle import assemble_bundle
from relgate.store import Store
from typer.testing import CliRunner


@pytest.fixture
def world(store: Store, api_manifest: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Five receipts, heads anchored at sizes 2 and 4 to a directory (and a command)."""
    manifest = ReleaseManifest.parse(api_manifest)
    store.register_release(manifest, actor="alice")
    signer = TreeHeadSigner(store.data_dir)
    sinks = [DirectorySink(tmp_path / "anchors"), CommandSink([sys.executable, "-c", "print(1)"])]
    for i in range(4):
        store.record_decision(
            tenant="default",
            release_sha=manifest.sha256,
            kind="checkpoint_promote",
            evidence={"i": i},
            actor="c",
            reason="",
        )
        if i in (0, 2):
            anchor_now(store, signer, sinks)
    return {
        "store": store,
        "signer": signer,
        "trust": Trust.pinned([signer.public_key_b64]),
        "dir": tmp_path / "anchors",
        "bundle": export_bundle(store),
    }


def _reason(report: BundleReport) -> str:
    assert not report.ok and report.first_error is not None
    return report.first_error.reason


def test_directory_anchors_verified(world: dict[str, Any]) -> None:
    bundle, trust = world["bundle"], world["trust"]
    assert [(a["sink"], a["tree_size"]) for a in bundle["anchors"]] == [
        ("directory", 2),
        ("command", 2),
        ("directory", 4),
        ("command", 4),
    ]
    # Every anchored head travels in the bundle, with consecutive consistency proofs.
    assert [h["tree_size"] for h in bundle["tree_heads"]] == [2, 4, 5]
    unchecked = verify_bundle(bundle, trust=trust)
    assert unchecked.ok
    assert [a.status for a in unchecked.anchors] == ["not checked"] * 4
    policy = AnchorPolicy.build(dirs=[world["dir"]], require=["dir"])
    report = verify_bundle(bundle, trust=trust, anchors=policy)
    assert report.ok, report.first_error
    assert [a.status for a in report.anchors] == [
        "verified",
        "not checked",
        "verified",
        "not checked",
    ]
    assert "command anchor" in report.anchors[1].detail
    # The heads found in the directory are related to the bundle's tree too.
    assert {(c.old_size, c.source, c.ok) for c in report.consistency} >= {
        (2, "anchor directory", True),
        (4, "anchor directory", True),
    }


def test_bogus_anchor_records_are_refused(world: dict[str, Any], tmp_path: Path) -> None:
    """Attack (c): anchors replaced by records that are not anchors: an error, whatever the
    verifier holds, never skipped. Before: the verifier ignored the anchors."""
    bundle, trust = world["bundle"], world["trust"]
    bundle["anchors"] = [{"bogus": True}]
    report = verify_bundle(bundle, trust=trust)
    assert _reason(report) == "bad anchor" and "anchors[0]" in report.first_error.detail  # type: ignore[union-attr]
    # Self-asserted trust too.
    assert _reason(verify_bundle(bundle, trust_bundle_key=True)) == "bad anchor"
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle))
    key = world["signer"].public_key_b64
    res = CliRunner().invoke(app, ["receipts", "verify", "--bundle", str(path), "--key", key])
    assert res.exit_code == 7 and res.stderr.startswith("error: bundle: bad anchor")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tenant": "other"}, "bad anchor"),
        ({"tree_size": -1}, "bad anchor"),
        ({"root_hex": "AB" * 32}, "bad anchor"),
        ({"sink": "carrier-pigeon"}, "bad anchor"),
        ({"ref": 7}, "bad anchor"),
        ({"root_hex": "cd" * 32}, "fork"),
        ({"tree_size": 9}, "older than witnessed"),
    ],
)
def test_anchor_record_that_does_not_fit(
    world: dict[str, Any], change: dict[str, Any], reason: str
) -> None:
    bundle = world["bundle"]
    bundle["anchors"][2].update(change)
    assert _reason(verify_bundle(bundle, trust=world["trust"])) == reason


def test_directory_anchor_that_does_not_check_out(world: dict[str, Any], tmp_path: Path) -> None:
    bundle, trust, d = world["bundle"], world["trust"], world["dir"]
    policy = AnchorPolicy.build(dirs=[d])
    record = bundle["anchors"][2]
    name = anchor_file_name("default", record["tree_size"], record["root_hex"])
    # The file holds another head of that tree (signed by someone else).
    mallory = TreeHeadSigner(tmp_path / "mallory")
    other = mallory.sign(
        tenant="default",
        tree_size=record["tree_size"],
        root_hex=record["root_hex"],
        timestamp="2026-01-01T00:00:00.000000Z",
    )
    original = (d / name).read_bytes()
    (d / name).write_text(json.dumps(other.to_dict()))
    report = verify_bundle(bundle, trust=trust, anchors=policy)
    assert _reason(report) == "bad anchor" and "differs" in report.first_error.detail  # type: ignore[union-attr]
    (d / name).write_bytes(original)
    # The ref names a file the verifier never opens by that path.
    record["ref"] = "/etc/passwd"
    assert _reason(verify_bundle(bundle, trust=trust, anchors=policy)) == "bad anchor"
    record["ref"] = str(d / name)
    # The file is gone from the verifier's copy.
    (d / name).unlink()
    report = verify_bundle(bundle, trust=trust, anchors=policy)
    assert _reason(report) == "bad anchor" and "is not in" in report.first_error.detail  # type: ignore[union-attr]
    (d / name).write_text("[" * 100_000)
    assert _reason(verify_bundle(bundle, trust=trust, anchors=policy)) == "bad anchor"


def test_required_anchor(world: dict[str, Any], tmp_path: Path) -> None:
    bundle, trust = world["bundle"], world["trust"]
    empty = tmp_path / "empty"
    empty.mkdir()
    stripped = {**bundle, "anchors": []}
    report = verify_bundle(
        stripped, trust=trust, anchors=AnchorPolicy.build(dirs=[empty], require=["dir"])
    )
    assert _reason(report) == "missing anchor"
    with pytest.raises(InvalidInputError, match="needs --anchor-dir"):
        AnchorPolicy.build(require=["dir"])
    with pytest.raises(InvalidInputError, match="needs --tsa-root"):
        AnchorPolicy.build(require=["tsa"])
    with pytest.raises(InvalidInputError, match="unknown anchor kind"):
        AnchorPolicy.build(dirs=[empty], require=["blockchain"])
    with pytest.raises(InvalidInputError, match="does not exist"):
        AnchorPolicy.build(dirs=[tmp_path / "nowhere"])
    path = tmp_path / "b.json"
    path.write_text(json.dumps(stripped))
    key = world["signer"].public_key_b64
    args = ["receipts", "verify", "--bundle", str(path), "--key", key]
    res = CliRunner().invoke(app, [*args, "--anchor-dir", str(empty), "--require-anchor", "dir"])
    assert res.exit_code == 7 and "missing anchor" in res.stderr
    res = CliRunner().invoke(app, [*args, "--require-anchor", "tsa"])
    assert res.exit_code == 3 and "--tsa-root" in res.stderr


def test_anchor_directory_holds_a_newer_head(world: dict[str, Any], tmp_path: Path) -> None:
    """A bundle cut back below a head anchored in the verifier's copy of the directory is
    refused even without a state file, the anchor records stripped or not."""
    store, trust, d = world["store"], world["trust"], world["dir"]
    heads = [h for h in store.audit.tree_heads() if h["tree_size"] <= 2]
    signer = world["signer"]
    cut, _ = assemble_bundle(
        tenant="default",
        rows=store.receipt_rows()[:2],
        signer=signer,
        stored_heads=heads,
        anchors=[],
        timestamp="2026-11-26T13:00:00.000000Z",
    )
    assert verify_bundle(cut, trust=trust).ok
    report = verify_bundle(cut, trust=trust, anchors=AnchorPolicy.build(dirs=[d]))
    assert _reason(report) == "older than witnessed"
    assert report.first_error.index == 2 and "size 4" in report.first_error.detail  # type: ignore[union-attr]
    # A head in the directory that this deployment did not sign binds nothing.
    alone = tmp_path / "alone"
    alone.mkdir()
    mallory = TreeHeadSigner(tmp_path / "mallory")
    DirectorySink(alone).anchor(
        mallory.sign(tenant="default", tree_size=99, root_hex="ab" * 32, timestamp="t")
    )
    assert verify_bundle(cut, trust=trust, anchors=AnchorPolicy.build(dirs=[alone])).ok


def test_anchor_directory_holds_a_fork(world: dict[str, Any], tmp_path: Path) -> None:
    """A trusted head in the directory whose root is not this tree's prefix: a fork."""
    trust, signer = world["trust"], world["signer"]
    forked = tmp_path / "forked"
    shutil.copytree(world["dir"], forked)
    DirectorySink(forked).anchor(
        signer.sign(tenant="default", tree_size=3, root_hex="ab" * 32, timestamp="t")
    )
    report = verify_bundle(world["bundle"], trust=trust, anchors=AnchorPolicy.build(dirs=[forked]))
    assert _reason(report) == "fork" and "size 3" in report.first_error.detail  # type: ignore[union-attr]
