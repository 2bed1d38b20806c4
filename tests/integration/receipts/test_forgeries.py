"""Issue 15's forgeries, built as an attacker would from a bundle a real server exported,
each refused by the verifier through the Python API and the CLI, with the first broken link
named. Every test here passed the forgery (or did not exist) before the verifier trusted
only what it holds."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from receipt_forgery import World, cut_back, forge_gate_pass, local_tsa
from relgate.cli import app
from relgate.errors import InvalidInputError
from relgate.receipts import (
    AnchorPolicy,
    BundleReport,
    SignedTreeHead,
    TreeHeadSigner,
    Trust,
    TrustedKey,
    verify_bundle,
)
from relgate.receipts.anchors import Rfc3161Sink
from relgate.receipts.trust import BUNDLE_KEY_TRUST, parse_time
from typer.testing import CliRunner, Result

OFFLINE = {"RELGATE_SERVER": "127.0.0.1:1", "RELGATE_API_KEY": ""}


def verify_cli(path: Path, *args: str) -> Result:
    """`relgate receipts verify --bundle PATH ...`, offline."""
    return CliRunner().invoke(
        app, ["receipts", "verify", "--bundle", str(path), *args], env=OFFLINE
    )


def write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc))
    return path


def broken(report: BundleReport) -> tuple[int, str]:
    assert not report.ok and report.first_error is not None, report
    return report.first_error.index, report.first_error.reason


def fingerprint(key: str) -> str:
    return hashlib.sha256(base64.b64decode(key)).hexdigest()


def test_genuine_bundle_verifies_with_everything_the_verifier_holds(
    world: World, tmp_path: Path
) -> None:
    state = tmp_path / "witness.json"
    everything = [
        "--key", world.key, "--state", str(state), "--anchor-dir", str(world.anchor_dir),
        "--tsa-root", str(world.tsa.root_pem), "--require-anchor", "dir",
        "--require-anchor", "tsa",
    ]  # fmt: skip
    res = verify_cli(world.bundle_path, *everything, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] and doc["receipts"] == 10 and doc["tree_size"] == 10
    assert doc["trust"] == "pinned"
    assert doc["key"] == {"fingerprint": fingerprint(world.key), "public_key_b64": world.key}
    assert [h["tree_size"] for h in doc["heads"]] == [5, 8, 10]
    assert all(h["key_fingerprint"] == fingerprint(world.key) for h in doc["heads"])
    bundle_proofs = [
        (c["old_size"], c["new_size"]) for c in doc["consistency"] if c["source"] == "bundle"
    ]
    assert bundle_proofs == [(5, 8), (8, 10)]
    assert all(c["ok"] for c in doc["consistency"])
    assert sorted((a["sink"], a["tree_size"], a["status"]) for a in doc["anchors"]) == [
        ("directory", 5, "verified"),
        ("directory", 8, "verified"),
        ("rfc3161", 5, "verified"),
        ("rfc3161", 8, "verified"),
    ]
    assert doc["witness"]["outcome"] == "first head for tenant" and doc["witness"]["updated"]
    # Text for people: the same facts, one line each.
    text = verify_cli(world.bundle_path, *everything)
    assert text.exit_code == 0, text.output
    assert "ok: 10 receipts verified" in text.stdout
    assert "anchors: 4 verified" in text.stdout
    assert "witness: same head" in text.stdout


def test_a_bundle_resigned_with_another_key(world: World, tmp_path: Path) -> None:
    """Attack (a): the gate_fail becomes a gate_pass, chains, hashes, tree, proofs and heads
    recomputed and signed with mallory's key. Before: `ok: 9 receipts verified`."""
    mallory = TreeHeadSigner(tmp_path / "mallory")
    forged = forge_gate_pass(world.bundle(), mallory)
    assert forged["receipts"][4]["kind"] == "gate_pass"
    path = write(forged, tmp_path / "forged.json")
    # Without a trust anchor the CLI refuses outright, and says how to get one.
    res = verify_cli(path)
    assert res.exit_code == 3 and res.stderr.startswith("error: no trust anchor")
    # With the server's key pinned: the first head (size 5) is signed by an unknown key.
    res = verify_cli(path, "--key", world.key)
    assert res.exit_code == 7
    assert res.stderr.startswith("error: receipt #4 ") and ": bad signature (" in res.stderr
    assert fingerprint(mallory.public_key_b64)[:16] in res.stderr
    report = verify_bundle(path, trust=Trust.pinned([world.key]))
    assert broken(report) == (4, "bad signature")
    assert [h.ok for h in report.heads] == [False, False, False]
    # The Python API without trust refuses; told to take the bundle's own key, it names it as
    # self-asserted, and that key is mallory's, not the server's.
    with pytest.raises(InvalidInputError, match="no trust anchor"):
        verify_bundle(path)
    selfish = verify_bundle(path, trust_bundle_key=True)
    assert selfish.trust == BUNDLE_KEY_TRUST
    assert selfish.key_fingerprint == fingerprint(mallory.public_key_b64) != fingerprint(world.key)
    loud = verify_cli(path, "--trust-bundle-key")
    assert loud.exit_code == 0 and "WARNING" in loud.stderr
    assert fingerprint(mallory.public_key_b64) in loud.stderr


def test_b_cut_back_bundle(world: World, tmp_path: Path) -> None:
    """Attack (b): the first 5 receipts (before the manual rollbacks) and the genuine head of
    size 5. Genuine and consistent on its own; refused by a verifier whose state saw the
    head of size 10, or whose copy of the anchor directory holds the head of size 8. Before:
    it verified, key pinned or not."""
    state = tmp_path / "witness.json"
    assert verify_cli(world.bundle_path, "--key", world.key, "--state", str(state)).exit_code == 0
    seen = state.read_bytes()
    cut = cut_back(world.bundle(), 5)
    path = write(cut, tmp_path / "cut.json")
    # What the key alone cannot tell: a head proves what the log held, not that it ended.
    assert verify_bundle(path, trust=Trust.pinned([world.key])).ok
    report = verify_bundle(path, trust=Trust.pinned([world.key]), state=state)
    assert broken(report) == (5, "older than witnessed")
    assert "size 10" in report.first_error.detail  # type: ignore[union-attr]
    res = verify_cli(path, "--key", world.key, "--state", str(state))
    assert res.exit_code == 7
    assert res.stderr.startswith("error: receipt #5 (no sha): older than witnessed")
    assert state.read_bytes() == seen
    # No state, but the verifier's copy of the anchor directory.
    policy = AnchorPolicy.build(dirs=[world.anchor_dir])
    anchored = verify_bundle(path, trust=Trust.pinned([world.key]), anchors=policy)
    assert broken(anchored) == (5, "older than witnessed")
    res = verify_cli(path, "--key", world.key, "--anchor-dir", str(world.anchor_dir))
    assert res.exit_code == 7 and "older than witnessed" in res.stderr


def test_c_anchors_replaced_by_bogus_records(world: World, tmp_path: Path) -> None:
    """Attack (c): `[{"bogus": true}]` for anchors, or no anchors at all where the verifier
    requires them. Before: the verifier never looked at the anchors."""
    doc = world.bundle()
    doc["anchors"] = [{"bogus": True}]
    path = write(doc, tmp_path / "bogus.json")
    assert broken(verify_bundle(path, trust=Trust.pinned([world.key]))) == (-1, "bad anchor")
    res = verify_cli(path, "--key", world.key)
    assert res.exit_code == 7 and res.stderr.startswith("error: bundle: bad anchor (anchors[0]")
    doc["anchors"] = []
    path = write(doc, tmp_path / "none.json")
    require = ["--anchor-dir", str(world.anchor_dir), "--require-anchor", "dir"]
    res = verify_cli(path, "--key", world.key, *require)
    assert res.exit_code == 7 and "missing anchor" in res.stderr
    policy = AnchorPolicy.build(tsa_root_files=[world.tsa.root_pem], require=["tsa"])
    assert broken(verify_bundle(path, trust=Trust.pinned([world.key]), anchors=policy)) == (
        -1,
        "missing anchor",
    )
    # A well-formed record whose file the verifier's copy does not hold.
    doc = world.bundle()
    directory = next(a for a in doc["anchors"] if a["sink"] == "directory")
    directory["ref"] = directory["ref"].replace(world.anchor_dir.name, "elsewhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    res = verify_cli(
        write(doc, tmp_path / "moved.json"), "--key", world.key, "--anchor-dir", str(empty)
    )
    assert res.exit_code == 7 and "bad anchor" in res.stderr and "is not in" in res.stderr


def test_d_tsa_token_that_does_not_chain_to_the_root(world: World, tmp_path: Path) -> None:
    """Attack (d): the tokens replaced by ones from another TSA (same head, same imprint,
    its own root), or altered. Before: only the imprint and nonce were ever checked, and
    only when anchoring."""
    doc = world.bundle()
    heads = {(h["tree_size"], h["root_hex"]): h for h in doc["tree_heads"]}
    with local_tsa(tmp_path / "evil", "evil TSA") as evil:
        for anchor in doc["anchors"]:
            if anchor["sink"] == "rfc3161":
                head = SignedTreeHead.from_dict(heads[(anchor["tree_size"], anchor["root_hex"])])
                anchor["ref"] = Rfc3161Sink(evil.url).anchor(head)
    path = write(doc, tmp_path / "evil.json")
    policy = AnchorPolicy.build(tsa_root_files=[world.tsa.root_pem])
    report = verify_bundle(path, trust=Trust.pinned([world.key]), anchors=policy)
    assert broken(report) == (-1, "bad anchor")
    assert "rfc3161" in report.first_error.detail and "does not verify" in report.first_error.detail  # type: ignore[union-attr]
    res = verify_cli(path, "--key", world.key, "--tsa-root", str(world.tsa.root_pem))
    assert res.exit_code == 7 and "bad anchor" in res.stderr and "certificate" in res.stderr
    # Against its own root the evil TSA's tokens do verify: the root is what the verifier holds.
    own = AnchorPolicy.build(tsa_root_files=[evil.root_pem])
    assert verify_bundle(path, trust=Trust.pinned([world.key]), anchors=own).ok
    # A genuine token with one byte of its signature flipped.
    doc = world.bundle()
    anchor = next(a for a in doc["anchors"] if a["sink"] == "rfc3161")
    token = bytearray(base64.b64decode(anchor["ref"]))
    token[-3] ^= 0x40
    anchor["ref"] = base64.b64encode(bytes(token)).decode()
    res = verify_cli(
        write(doc, tmp_path / "flipped.json"),
        "--key",
        world.key,
        "--tsa-root",
        str(world.tsa.root_pem),
    )
    assert res.exit_code == 7 and "bad anchor" in res.stderr


def test_e_head_signed_by_a_rotated_out_key(world: World, tmp_path: Path) -> None:
    """Attack (e): the key was rotated out when the head of size 5 was signed (its
    not_after); heads it signed later are refused. Before: there were no validity periods."""
    doc = world.bundle()
    rotated_at = doc["tree_heads"][0]["timestamp"]
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"public_key_b64": world.key, "not_after": rotated_at}]}))
    trust = Trust.pinned([TrustedKey(world.key, not_after=parse_time(rotated_at))])
    report = verify_bundle(world.bundle_path, trust=trust)
    assert broken(report) == (7, "key not valid")  # the head of size 8 is the first after
    assert [(h.tree_size, h.ok) for h in report.heads] == [(5, True), (8, False), (10, False)]
    res = verify_cli(world.bundle_path, "--keys", str(keys))
    assert res.exit_code == 7
    assert res.stderr.startswith("error: receipt #7 ") and "key not valid" in res.stderr


def test_server_side_verification_reports_consistency_and_anchors(world: World) -> None:
    """VerifyReceipts pins the server's own key and says what it checked."""
    res = CliRunner().invoke(app, ["receipts", "verify", "--json"], env=world.env)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["ok"] and doc["key"]["fingerprint"] == fingerprint(world.key)
    assert doc["format"] == "relgate.receipts.bundle.v2"
    assert [(c["old_size"], c["source"], c["ok"]) for c in doc["consistency"]][:2] == [
        (5, "bundle", True),
        (8, "bundle", True),
    ]
    # The server holds no TSA root and was given no anchor directory: not checked, never
    # verified.
    assert {a["status"] for a in doc["anchors"]} == {"not checked"}
    assert len(doc["anchors"]) == 4
    # With keys pinned, the server's key must be one of them.
    other = TreeHeadSigner(world.anchor_dir.parent / "other").public_key_b64
    res = CliRunner().invoke(app, ["receipts", "verify", "--key", other], env=world.env)
    assert res.exit_code == 7 and "not a pinned key" in res.stderr
