"""The verifier's witness state: an older, cut-back or forked bundle is refused, and the
state only moves forward, atomically, after a verification that succeeded."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from relgate.app.receipts import export_bundle, sign_tree_head
from relgate.canonical import canonical_json, sha256_hex
from relgate.cli import app
from relgate.errors import InvalidInputError
from relgate.manifest import ReleaseManifest
from relgate.receipts import SignedTreeHead, TreeHeadSigner, Trust, WitnessState, verify_bundle
from relgate.receipts.bundle import assemble_bundle
from relgate.receipts.witness import open_state
from relgate.store import Store
from typer.testing import CliRunner


def _decide(store: Store, release: str, n: int, kind: str = "checkpoint_promote") -> None:
    for i in range(n):
        store.record_decision(
            tenant="default",
            release_sha=release,
            kind=kind,
            evidence={"i": i},
            actor="controller",
            reason="",
        )


@pytest.fixture
def release(store: Store, api_manifest: dict[str, Any]) -> str:
    manifest = ReleaseManifest.parse(api_manifest)
    store.register_release(manifest, actor="alice")
    return manifest.sha256


@pytest.fixture
def trust(store: Store) -> Trust:
    return Trust.pinned([TreeHeadSigner(store.data_dir).public_key_b64])


class _NoSigning:
    """Stands in for a signer where the attacker holds no key: assembling may only reuse
    heads signed before."""

    def __init__(self, public_key_b64: str) -> None:
        self.public_key_b64 = public_key_b64

    def sign(self, **_: Any) -> Any:
        raise AssertionError("the attacker cannot sign")


def cut_back(store: Store, k: int) -> dict[str, Any]:
    """Attack (b): the first ``k`` receipts and the genuine head of size ``k`` signed when
    the log had ``k`` receipts, reassembled into a bundle that is consistent on its own."""
    key = TreeHeadSigner(store.data_dir).public_key_b64
    heads = [h for h in store.audit.tree_heads() if h["tree_size"] <= k]
    assert heads and heads[-1]["tree_size"] == k
    bundle, fresh = assemble_bundle(
        tenant="default",
        rows=store.receipt_rows()[:k],
        signer=_NoSigning(key),  # type: ignore[arg-type]
        stored_heads=heads,
        anchors=[],
        timestamp="2026-11-26T13:00:00.000000Z",
    )
    assert fresh is None
    return bundle


def test_state_remembers_and_moves_forward(
    store: Store, release: str, trust: Trust, tmp_path: Path
) -> None:
    state = tmp_path / "witness.json"
    first = verify_bundle(export_bundle(store), trust=trust, state=state)
    assert first.ok and first.witness is not None
    assert (first.witness.outcome, first.witness.previous_size, first.witness.updated) == (
        "first head for tenant",
        None,
        True,
    )
    saved = WitnessState.load(state).log("default")
    assert saved is not None and saved.head.tree_size == 1
    assert saved.key_fingerprint == first.key_fingerprint
    again = verify_bundle(export_bundle(store), trust=trust, state=state)
    assert again.ok and again.witness is not None and again.witness.outcome == "same head"
    _decide(store, release, 3)
    grown = verify_bundle(export_bundle(store), trust=trust, state=state)
    assert grown.ok and grown.witness is not None
    assert (grown.witness.outcome, grown.witness.previous_size) == ("extends witnessed head", 1)
    assert ("witness", True) in {(c.source, c.ok) for c in grown.consistency}
    log = WitnessState.load(state).log("default")
    assert log is not None and log.head.tree_size == 4 and set(log.seen) == {1, 4}
    assert not list(tmp_path.glob(".witness.json.*"))  # no temporary file left


def test_cut_back_bundle_is_refused(
    store: Store, release: str, trust: Trust, tmp_path: Path
) -> None:
    """Attack (b): keeping the first k receipts and the genuine older head of size k
    verifies on its own, even with the key pinned; a verifier that saw the newer head
    refuses it, naming the first receipt the bundle lacks. Before: no state, it passed."""
    _decide(store, release, 2)
    sign_tree_head(store, TreeHeadSigner(store.data_dir))  # size 3: anchored, say
    _decide(store, release, 1, kind="gate_fail")
    _decide(store, release, 4, kind="manual_rollback")
    state = tmp_path / "witness.json"
    assert verify_bundle(export_bundle(store), trust=trust, state=state).ok
    before = state.read_bytes()

    cut = cut_back(store, 3)
    assert len(cut["receipts"]) == 3
    assert verify_bundle(cut, trust=trust).ok  # on its own, it is consistent and genuine
    report = verify_bundle(cut, trust=trust, state=state)
    assert not report.ok and report.first_error is not None
    assert (report.first_error.index, report.first_error.reason) == (3, "older than witnessed")
    assert "size 8" in report.first_error.detail and "3..7" in report.first_error.detail
    assert report.witness is not None and report.witness.outcome == "older than witnessed"
    assert state.read_bytes() == before  # a refused bundle never moves the state

    path = tmp_path / "cut.json"
    path.write_text(json.dumps(cut))
    key = trust.keys[0].public_key_b64
    args = ["receipts", "verify", "--bundle", str(path), "--key", key, "--state", str(state)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 7
    assert res.stderr.startswith("error: receipt #3 (no sha): older than witnessed")
    assert state.read_bytes() == before


def test_rewritten_history_is_a_fork(
    store: Store, release: str, trust: Trust, tmp_path: Path, bypass_append_only: Any
) -> None:
    """A database rewrite the server then signs: the witness saw the old root at that size
    (same size: the seen root differs) or a prefix that the new tree does not extend."""
    _decide(store, release, 3)
    state = tmp_path / "witness.json"
    assert verify_bundle(export_bundle(store), trust=trust, state=state).ok
    before = state.read_bytes()
    target = store.list_receipts()[-1]
    body = {**target.body(), "reason": "nothing to see"}
    forged = sha256_hex(canonical_json(body))
    with bypass_append_only(store, "receipts") as conn:
        conn.execute(
            sa.text("UPDATE receipts SET body = :b, receipt_sha256 = :f WHERE receipt_sha256 = :s"),
            {"b": canonical_json(body).decode(), "f": forged, "s": target.receipt_sha256},
        )
    doc = export_bundle(store)
    # Drop the older head the server kept, as a careful forger would: the witness still knows.
    doc["tree_heads"] = doc["tree_heads"][-1:]
    doc["consistency_proofs"] = []
    report = verify_bundle(doc, trust=trust, state=state)
    assert report.first_error is not None and report.first_error.reason == "fork"
    _decide(store, release, 2)  # and grown past it: the old prefix is not in the new tree
    doc = export_bundle(store)
    doc["tree_heads"] = doc["tree_heads"][-1:]
    doc["consistency_proofs"] = []
    report = verify_bundle(doc, trust=trust, state=state)
    assert report.first_error is not None and report.first_error.reason == "fork"
    assert "rewritten" in report.first_error.detail
    assert ("witness", False) in {(c.source, c.ok) for c in report.consistency}
    assert state.read_bytes() == before


def test_in_memory_state_is_read_only(store: Store, release: str, trust: Trust) -> None:
    report = verify_bundle(export_bundle(store), trust=trust, state=WitnessState())
    assert report.ok and report.witness is not None
    assert (report.witness.state, report.witness.updated) == ("in memory", False)


@pytest.mark.parametrize(
    "content",
    ["{nope", "[" * 100_000, '{"format": "x"}', '{"format": "relgate.witness.v1", "logs": 1}'],
)
def test_unreadable_state(
    store: Store, release: str, trust: Trust, tmp_path: Path, content: str
) -> None:
    state = tmp_path / "witness.json"
    state.write_text(content)
    with pytest.raises(InvalidInputError):
        verify_bundle(export_bundle(store), trust=trust, state=state)
    assert state.read_text() == content


def test_state_round_trip_and_cap(store: Store, release: str, trust: Trust) -> None:
    doc = export_bundle(store)
    report = verify_bundle(doc, trust=trust)
    assert report.ok
    head = SignedTreeHead.from_dict(doc["tree_heads"][-1])
    state = WitnessState().accepted(
        tenant="default", head=head, key_fingerprint="f", heads=[head], now="t"
    )
    assert WitnessState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    bad = copy.deepcopy(state.to_dict())
    bad["logs"]["default"]["seen"] = [["1", "x"]]
    with pytest.raises(InvalidInputError):
        WitnessState.from_dict(bad)


def test_state_is_locked_while_verifying(tmp_path: Path) -> None:
    """Two verifiers sharing a state file take turns: neither can move it backwards."""
    state = tmp_path / "witness.json"
    entered = threading.Event()
    with open_state(state):
        fd = os.open(tmp_path / "witness.json.lock", os.O_WRONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)

        def other() -> None:
            with open_state(state):
                entered.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not entered.wait(0.2)  # waits for the lock
    thread.join(timeout=30)
    assert entered.is_set()
    with pytest.raises(InvalidInputError), open_state(tmp_path):
        pass
