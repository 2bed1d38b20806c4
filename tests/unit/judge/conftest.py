"""Fixtures of the judge tests."""

from __future__ import annotations

import pytest
from judge_doubles import WordOverlapJudge


@pytest.fixture
def overlap_judge() -> WordOverlapJudge:
    return WordOverlapJudge()
