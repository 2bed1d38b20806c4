"""Fixtures of the judge tests."""

from __future__ import annotations

import pytest
from relgate.testing.judges import WordOverlapJudge


@pytest.fixture
def overlap_judge() -> WordOverlapJudge:
    return WordOverlapJudge()
