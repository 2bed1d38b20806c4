"""The demo's roll chapter tells its story on the demo's one server, after the gate chapter
has gated v0, v1 and v2 through RunGate with answers from their endpoints (slow: the real
judge on the demo suite, then a compressed rollout of about a minute)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from rich.console import Console

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.mark.slow
def test_roll_chapter_as_told(tmp_path: Path) -> None:
    from relgate.demo.gate import gate_chapter
    from relgate.demo.roll import DemoWorld, receipts_chapter, roll_chapter

    console = Console(width=140)
    with DemoWorld(tmp_path / "server", score_cache=tmp_path / "scores.db") as world:
        with contextlib.closing(world.gate_client()) as client:
            gates = gate_chapter(console, client, world.shas, endpoint=True)
        assert gates.passed
        result = roll_chapter(console, world, gates)
        receipts = receipts_chapter(console, world, tmp_path / "receipts.json")
        store = world.running.store
        v2_kinds = [r.kind for r in store.list_receipts(release_sha=world.shas["v2"])]
    assert result.v0_live and result.v1_live
    assert result.v2_rolled_back and result.caught_slice == "Law"
    assert result.caught_at_weight_bp == 500
    assert result.live_after == world.shas["v1"]
    assert result.passed
    # v2 rolled only through its gate override, recorded before its rollout started.
    assert v2_kinds.index("gate_override") < v2_kinds.index("rollout_start")
    assert "auto_rollback" in v2_kinds
    assert receipts.verified and receipts.receipts >= 15
