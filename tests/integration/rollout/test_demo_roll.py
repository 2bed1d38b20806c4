"""The demo's roll chapter tells its story (slow: it runs the real gate on the demo suite
first, about two minutes on 2 cores, then a compressed rollout of about a minute)."""

from __future__ import annotations

from pathlib import Path

import pytest
from relgate.demo_roll import roll_chapter
from rich.console import Console


@pytest.mark.slow
def test_roll_chapter_as_told(tmp_path: Path) -> None:
    result = roll_chapter(Console(width=140), tmp_path)
    assert result.v1_live
    assert result.v2_rolled_back and result.caught_slice == "Law"
    assert result.caught_at_weight_bp == 500
    assert result.receipts_verified and result.receipts >= 15
    assert result.passed
